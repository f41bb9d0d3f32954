"""The running set of stdio upstreams: one long-lived session each, and their tool catalog."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import anyio

from gateway.components import ComponentStatus
from gateway.errors import UpstreamUnavailable
from upstreams.connection import ProgressCallback
from upstreams.manifest import Manifest
from upstreams.naming import namespaced
from upstreams.session import UpstreamSession, open_session

log = logging.getLogger(__name__)


class UpstreamState(StrEnum):
    DISABLED = "disabled"
    STARTING = "starting"
    READY = "ready"
    STOPPED = "stopped"


@dataclass(frozen=True)
class UpstreamTool:
    """One upstream tool as the gateway exposes it."""

    exposed_name: str
    upstream_tool: str
    definition: dict[str, Any]


@dataclass
class Upstream:
    """One manifest at run time: its state, live session and tools."""

    manifest: Manifest
    command: str | None
    state: UpstreamState = UpstreamState.STARTING
    last_error: str | None = None
    session: UpstreamSession | None = None
    tools: dict[str, UpstreamTool] = field(default_factory=dict)
    settled: anyio.Event = field(default_factory=anyio.Event)

    @property
    def name(self) -> str:
        return self.manifest.name

    def status(self) -> ComponentStatus:
        if self.state is UpstreamState.DISABLED:
            return ComponentStatus("disabled", self.last_error or "disabled")
        if self.state is UpstreamState.READY:
            return ComponentStatus("ok", f"{len(self.tools)} tools")
        if self.state is UpstreamState.STARTING:
            return ComponentStatus("degraded", "starting")
        return ComponentStatus("down", self.last_error or "stopped")

    async def run(self, gateway_env: Mapping[str, str], log_dir: Path) -> None:
        """Start the upstream and keep its session until it ends or we are cancelled."""
        assert self.command is not None
        try:
            async with open_session(
                self.manifest, self.command, gateway_env=gateway_env, log_dir=log_dir
            ) as session:
                with anyio.fail_after(self.manifest.startup_timeout):
                    definitions = await session.list_tools()
                self.tools = self._catalog(definitions)
                self.session, self.state = session, UpstreamState.READY
                self.settled.set()
                reason = await session.connection.wait_closed()
                raise UpstreamUnavailable(f"upstream '{self.name}' {reason}; it is not running")
        except TimeoutError:
            self._stopped(f"upstream '{self.name}' did not list its tools in time")
        except UpstreamUnavailable as exc:
            self._stopped(str(exc))
        finally:
            self.session = None
            if self.state is not UpstreamState.STOPPED:
                self.state = UpstreamState.STOPPED
                self.last_error = self.last_error or "stopped"
            self.settled.set()

    def _stopped(self, reason: str) -> None:
        self.state, self.last_error = UpstreamState.STOPPED, reason
        log.error("%s", reason)

    def _catalog(self, definitions: Sequence[dict[str, Any]]) -> dict[str, UpstreamTool]:
        tools: dict[str, UpstreamTool] = {}
        for definition in definitions:
            upstream_tool = str(definition["name"])
            if not self.manifest.exposes(upstream_tool):
                continue
            exposed = namespaced(self.name, upstream_tool)
            tools[exposed] = UpstreamTool(exposed, upstream_tool, definition)
        return tools

    async def call(
        self,
        tool: UpstreamTool,
        arguments: Mapping[str, Any],
        progress: ProgressCallback | None,
    ) -> dict[str, Any]:
        session = self.session
        if session is None:
            raise UpstreamUnavailable(
                f"upstream '{self.name}' is not running ({self.last_error or self.state})"
            )
        return await session.call_tool(tool.upstream_tool, arguments, progress)


class UpstreamPool:
    """Starts every enabled upstream at once, in the background, and owns them until exit.
    Listing tools waits (at most `list_wait` seconds) for upstreams still starting."""

    def __init__(
        self,
        manifests: Sequence[Manifest],
        *,
        gateway_env: Mapping[str, str],
        log_dir: Path,
        default_timeout: float,
        list_wait: float = 10.0,
    ) -> None:
        self._gateway_env = dict(gateway_env)
        self._log_dir = log_dir
        self.default_timeout = default_timeout
        self.list_wait = list_wait
        self.upstreams: dict[str, Upstream] = {}
        search_path = self._gateway_env.get("PATH")
        for manifest in manifests:
            command = manifest.resolve_command(search_path) if manifest.enabled else None
            upstream = Upstream(manifest, command)
            if not manifest.enabled:
                upstream.state, upstream.last_error = UpstreamState.DISABLED, "disabled in manifest"
            elif command is None:
                hint = f" ({manifest.install_hint})" if manifest.install_hint else ""
                upstream.state = UpstreamState.DISABLED
                upstream.last_error = f"command not found: {manifest.command}{hint}"
            if upstream.state is UpstreamState.DISABLED:
                upstream.settled.set()
            self.upstreams[manifest.name] = upstream

    @asynccontextmanager
    async def running(self) -> AsyncIterator[UpstreamPool]:
        async with anyio.create_task_group() as tg:
            for upstream in self.upstreams.values():
                if upstream.state is UpstreamState.STARTING:
                    tg.start_soon(upstream.run, self._gateway_env, self._log_dir)
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()

    async def settled(self) -> None:
        """Wait until no upstream is still starting (each is bounded by its startup timeout)."""
        for upstream in self.upstreams.values():
            await upstream.settled.wait()

    async def tools(self) -> list[tuple[Upstream, UpstreamTool]]:
        """The tools of every upstream that is ready (or was: last known tools stay listed).
        Upstreams still starting get up to `list_wait` seconds in all to join the list."""
        with anyio.move_on_after(self.list_wait):
            await self.settled()
        return [
            (upstream, tool)
            for upstream in self.upstreams.values()
            for tool in upstream.tools.values()
        ]

    async def find(self, exposed_name: str) -> tuple[Upstream, UpstreamTool] | None:
        """The upstream tool behind a name; waits for its upstream if that is still starting."""
        owner = self._owner(exposed_name)
        if owner is None:
            return None
        upstream = owner[0]
        await upstream.settled.wait()
        tool = upstream.tools.get(exposed_name)
        return (upstream, tool) if tool is not None else None

    def _owner(self, exposed_name: str) -> tuple[Upstream, str] | None:
        """Which upstream serves this name, and its upstream tool name. Before an upstream
        has listed its tools (still starting), its namespace prefix decides, so the first
        call already gets the right breaker and time limit."""
        for upstream in self.upstreams.values():
            tool = upstream.tools.get(exposed_name)
            if tool is not None:
                return upstream, tool.upstream_tool
        for upstream in self.upstreams.values():
            prefix = f"{upstream.name}_"
            if upstream.state is UpstreamState.STARTING and exposed_name.startswith(prefix):
                return upstream, exposed_name.removeprefix(prefix)
        return None

    def upstream_of(self, exposed_name: str) -> str | None:
        """The upstream serving this tool name, or None for a native or unknown tool."""
        owner = self._owner(exposed_name)
        return owner[0].name if owner else None

    def timeout_for(self, exposed_name: str) -> float | None:
        """The tool's limit from its manifest, or None when it is not an upstream tool."""
        owner = self._owner(exposed_name)
        if owner is None:
            return None
        upstream, tool = owner
        return upstream.manifest.timeout_for(tool, self.default_timeout)
