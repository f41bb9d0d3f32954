"""The set of supervised upstreams (stdio and remote) and their combined tool catalog."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio

from archon_gateway.gateway.core.errors import MissingVariable, NotFound
from archon_gateway.upstreams.catalog import UpstreamTool
from archon_gateway.upstreams.manifest import Manifest
from archon_gateway.upstreams.restarts import CrashHistory, RestartPolicy
from archon_gateway.upstreams.state import DOWN_STATES, UpstreamState
from archon_gateway.upstreams.supervisor import Upstream, UpstreamHooks

log = logging.getLogger(__name__)

_ANY_INPUT = {"type": "object"}


class UpstreamPool:
    """Supervises every enabled upstream (one task each) and owns them until exit.
    Listing tools starts upstreams that never listed theirs (lazy start) and waits at most
    `list_wait` seconds for those still starting."""

    def __init__(
        self,
        manifests: Sequence[Manifest],
        *,
        gateway_env: Mapping[str, str],
        log_dir: Path,
        default_timeout: float,
        list_wait: float = 10.0,
        policy: RestartPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        pinged: Callable[[str, float], None] = lambda name, seconds: None,
    ) -> None:
        self._gateway_env = dict(gateway_env)
        self._log_dir = log_dir
        self.default_timeout = default_timeout
        self.list_wait = list_wait
        self.policy = policy or RestartPolicy()
        self.upstreams: dict[str, Upstream] = {}
        self._catalog_changed = anyio.Event()
        self._listeners: list[Callable[[], Awaitable[None]]] = []
        hooks = UpstreamHooks(catalog_changed=self._note_catalog_change, pinged=pinged)
        search_path = self._gateway_env.get("PATH")
        for manifest in manifests:
            command = manifest.resolve_command(search_path) if manifest.enabled else None
            policy = _policy_for(manifest, self.policy)
            history = CrashHistory(policy, clock=clock)
            upstream = Upstream(manifest, command, policy, history, hooks)
            if not manifest.enabled:
                upstream.disable("disabled in manifest")
            elif manifest.is_remote:
                try:
                    upstream.headers = manifest.resolve_headers(self._gateway_env)
                except MissingVariable as exc:
                    upstream.disable(str(exc))
            elif command is None:
                hint = f" ({manifest.install_hint})" if manifest.install_hint else ""
                upstream.disable(f"command not found: {manifest.command}{hint}")
            self.upstreams[manifest.name] = upstream

    def on_tools_changed(self, listener: Callable[[], Awaitable[None]]) -> None:
        """Call `listener` (debounced) whenever the exposed upstream catalog changes."""
        self._listeners.append(listener)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[UpstreamPool]:
        async with anyio.create_task_group() as tg:
            for upstream in self.upstreams.values():
                if upstream.state is not UpstreamState.DISABLED:
                    await tg.start(upstream.supervise, self._gateway_env, self._log_dir)
            tg.start_soon(self._forward_catalog_changes)
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()

    def _note_catalog_change(self) -> None:
        self._catalog_changed.set()

    async def _forward_catalog_changes(self) -> None:
        while True:
            await self._catalog_changed.wait()
            await anyio.sleep(self.policy.list_changed_debounce)
            self._catalog_changed = anyio.Event()
            for listener in self._listeners:
                try:
                    await listener()
                except Exception:
                    log.exception("a tools/list_changed listener failed")

    def get(self, name: str) -> Upstream:
        """The upstream of that name; NotFound names the ones there are."""
        upstream = self.upstreams.get(name)
        if upstream is None:
            known = ", ".join(self.upstreams) or "none"
            raise NotFound(f"no upstream named '{name}' (upstreams: {known})")
        return upstream

    async def settled(self) -> None:
        """Wait until no upstream is starting (each is bounded by its startup timeout)."""
        for upstream in self.upstreams.values():
            await upstream.wait_settled()

    async def tools(self) -> list[tuple[Upstream, UpstreamTool]]:
        """The tools of every upstream that is ready, or was (last known tools stay listed
        while it is stopped or restarting). Upstreams that never listed their tools are
        started now and get up to `list_wait` seconds in all to join the list."""
        for upstream in self.upstreams.values():
            if not upstream.tools:
                upstream.want()
        with anyio.move_on_after(self.list_wait):
            await self.settled()
        return self.listed()

    def listed(self) -> list[tuple[Upstream, UpstreamTool]]:
        """What a tools/list shows now, without starting or waiting for anything."""
        return [
            (upstream, tool)
            for upstream in self.upstreams.values()
            for tool in upstream.listed_tools()
        ]

    async def find(self, exposed_name: str) -> tuple[Upstream, UpstreamTool] | None:
        """The upstream tool behind a name. An upstream that never listed its tools is
        started (or waited for) first; a known tool is returned at once, even while its
        upstream is down, so calling it gets the clear "restarting" error."""
        owner = self._owner(exposed_name)
        if owner is None:
            return None
        upstream = owner[0]
        if not upstream.tools:
            upstream.want()
            await upstream.wait_settled()
        tool = upstream.tools.get(exposed_name)
        if tool is None and not upstream.tools and upstream.state in DOWN_STATES:
            # Its tools are unknown because it never came up. A stand-in lets the call
            # reach the upstream, whose error says why (not "unknown tool").
            name = owner[1]
            tool = UpstreamTool(exposed_name, name, {"name": name, "inputSchema": _ANY_INPUT})
        return (upstream, tool) if tool is not None else None

    def _owner(self, exposed_name: str) -> tuple[Upstream, str] | None:
        """Which upstream serves this name, and its upstream tool name. Before an upstream
        has listed its tools (not started yet, or starting), its namespace prefix decides,
        so the first call already gets the right breaker and time limit."""
        for upstream in self.upstreams.values():
            tool = upstream.tools.get(exposed_name)
            if tool is not None:
                return upstream, tool.upstream_tool
        for upstream in self.upstreams.values():
            prefix = f"{upstream.name}_"
            unlisted = not upstream.tools and upstream.state is not UpstreamState.DISABLED
            if unlisted and exposed_name.startswith(prefix):
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


def _policy_for(manifest: Manifest, policy: RestartPolicy) -> RestartPolicy:
    """The gateway's policy with the manifest's own lazy start and idle time, if it has them."""
    overrides: dict[str, Any] = {}
    if manifest.lazy_start is not None:
        overrides["lazy"] = manifest.lazy_start
    if manifest.idle_minutes is not None:
        overrides["idle_shutdown"] = manifest.idle_minutes * 60
    return replace(policy, **overrides) if overrides else policy
