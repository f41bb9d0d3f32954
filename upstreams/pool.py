"""The set of supervised upstreams (stdio and remote) and their combined tool catalog."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from archon_gateway.core.errors import MissingVariable, NotFound
from archon_gateway.upstreams.catalog import UpstreamTool
from archon_gateway.upstreams.manifest import Manifest
from archon_gateway.upstreams.naming import split_uri
from archon_gateway.upstreams.restarts import CrashHistory, RestartPolicy
from archon_gateway.upstreams.state import DOWN_STATES, UpstreamState
from archon_gateway.upstreams.supervisor import StateListener, Upstream, UpstreamHooks

log = logging.getLogger(__name__)

_ANY_INPUT = {"type": "object"}
# Notifications for clients waiting to be relayed; beyond this they are dropped (counted).
_RELAY_BACKLOG = 256

# (upstream, method, params) of a notification for the gateway's clients
Relay = tuple[str, str, dict[str, Any]]
RelayListener = Callable[[str, str, dict[str, Any]], Awaitable[None]]


@dataclass
class _Supervision:
    """One upstream's supervising task: cancelled to stop it; `done` once it has ended."""

    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    done: anyio.Event = field(default_factory=anyio.Event)


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
        client_request_limit: float = 300.0,
        state_changed: StateListener = lambda name, old, new, error: None,
    ) -> None:
        self._gateway_env = dict(gateway_env)
        self._log_dir = log_dir
        self.default_timeout = default_timeout
        self.client_request_limit = client_request_limit
        self.list_wait = list_wait
        self.policy = policy or RestartPolicy()
        self.upstreams: dict[str, Upstream] = {}
        self._catalog_changed = anyio.Event()
        self._listeners: list[Callable[[], Awaitable[None]]] = []
        self._relay_listeners: list[RelayListener] = []
        self._relays, self._relayed = anyio.create_memory_object_stream[Relay](_RELAY_BACKLOG)
        self.relays_dropped = 0
        self._clock = clock
        self._hooks = UpstreamHooks(
            catalog_changed=self._note_catalog_change,
            pinged=pinged,
            relay=self._note_relay,
            state_changed=state_changed,
        )
        for manifest in manifests:
            self.upstreams[manifest.name] = self._upstream_for(manifest)
        # Set while the pool runs: where upstreams added later are supervised.
        self._group: TaskGroup | None = None
        self._supervisions: dict[int, _Supervision] = {}  # by id() of the Upstream
        self._held = 0  # reloads under way: catalog changes wait for their one notice

    def _upstream_for(self, manifest: Manifest) -> Upstream:
        """A new Upstream for `manifest`, disabled (with the reason) when it cannot run."""
        path = self._gateway_env.get("PATH")
        command = manifest.resolve_command(path) if manifest.enabled else None
        policy = policy_for(manifest, self.policy)
        history = CrashHistory(policy, clock=self._clock)
        upstream = Upstream(manifest, command, policy, history, self._hooks)
        upstream.client_request_limit = self.client_request_limit
        if not manifest.enabled:
            upstream.disable("disabled in manifest")
        elif manifest.is_remote:
            try:
                upstream.headers = manifest.resolve_headers(self._gateway_env)
            except MissingVariable as exc:
                upstream.disable(str(exc), fault=True)
        elif command is None:
            hint = f" ({manifest.install_hint})" if manifest.install_hint else ""
            upstream.disable(f"command not found: {manifest.command}{hint}", fault=True)
        return upstream

    def on_tools_changed(self, listener: Callable[[], Awaitable[None]]) -> None:
        """Call `listener` (debounced) whenever the exposed upstream catalog changes."""
        self._listeners.append(listener)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[UpstreamPool]:
        async with anyio.create_task_group() as tg:
            self._group = tg
            for upstream in list(self.upstreams.values()):
                await self._start(upstream)
            tg.start_soon(self._forward_catalog_changes)
            tg.start_soon(self._forward_relays)
            try:
                yield self
            finally:
                self._group = None
                tg.cancel_scope.cancel()

    async def _start(self, upstream: Upstream) -> None:
        """Supervise `upstream` in its own cancel scope (so it can be stopped alone)."""
        if self._group is None or upstream.state is UpstreamState.DISABLED:
            return
        supervision = self._supervisions[id(upstream)] = _Supervision()
        await self._group.start(self._supervise, upstream, supervision)

    async def _supervise(
        self,
        upstream: Upstream,
        supervision: _Supervision,
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        try:
            with supervision.scope:
                await upstream.supervise(self._gateway_env, self._log_dir, task_status=task_status)
        finally:
            supervision.done.set()

    async def _stop(self, upstream: Upstream, reason: str) -> None:
        """Stop one upstream for good: its calls in flight end with `reason` at once, then
        its process or connection is closed (the usual stop: stdin, grace, SIGTERM, ...)."""
        upstream.end_calls(reason)
        supervision = self._supervisions.pop(id(upstream), None)
        if supervision is not None:
            supervision.scope.cancel()
            await supervision.done.wait()
        upstream.retired(reason)

    # -- live configuration ----------------------------------------------------------------

    async def add(self, manifest: Manifest) -> None:
        """Start serving a new upstream (started now, or on first use when lazy)."""
        upstream = self.upstreams[manifest.name] = self._upstream_for(manifest)
        self._note_catalog_change()
        await self._start(upstream)

    async def remove(self, name: str, reason: str) -> None:
        """Stop serving an upstream: its tools go, calls in flight end with `reason`."""
        upstream = self.upstreams.pop(name)
        self._note_catalog_change()
        await self._stop(upstream, reason)

    async def replace(self, manifest: Manifest, reason: str) -> None:
        """Restart an upstream under a new manifest (a new run: new process or connection)."""
        old = self.upstreams[manifest.name]
        await self._stop(old, reason)
        new = self._upstream_for(manifest)
        new.log_level = old.log_level  # what clients asked for still applies
        self.upstreams[manifest.name] = new
        self._note_catalog_change()
        await self._start(new)

    def reconfigure(self, manifest: Manifest) -> None:
        """Update an upstream in place (timeouts, tool lists, ...): nothing is restarted."""
        self.upstreams[manifest.name].reconfigure(manifest, policy_for(manifest, self.policy))
        self._note_catalog_change()

    @asynccontextmanager
    async def one_notice(self) -> AsyncIterator[None]:
        """Hold catalog-change notices while the block runs (a reload); then, if anything
        changed meanwhile, tell the listeners once."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
        pending, self._catalog_changed = self._catalog_changed.is_set(), anyio.Event()
        if pending:
            await self._tell_listeners()

    def installed(self, manifests: Mapping[str, Manifest]) -> list[str]:
        """Upstreams disabled because their command was missing whose command (in
        `manifests`, the configuration about to run) is found now."""
        path = self._gateway_env.get("PATH")
        return [
            name
            for name, upstream in self.upstreams.items()
            if upstream.state is UpstreamState.DISABLED
            and upstream.command is None
            and not upstream.manifest.is_remote
            and (manifest := manifests.get(name)) is not None
            and manifest.enabled
            and manifest.resolve_command(path) is not None
        ]

    def note_catalog_change(self) -> None:
        """Something outside the pool changed what clients see (a profile, say)."""
        self._note_catalog_change()

    def _note_catalog_change(self) -> None:
        self._catalog_changed.set()

    def on_relay(self, listener: RelayListener) -> None:
        """Call `listener` for each upstream notification meant for the gateway's clients
        (resource updates, log messages, resource and prompt list changes)."""
        self._relay_listeners.append(listener)

    def _note_relay(self, upstream: str, method: str, params: dict[str, Any]) -> None:
        try:
            self._relays.send_nowait((upstream, method, params))
        except anyio.WouldBlock:
            self.relays_dropped += 1  # clients too slow: drop rather than stall the reader

    async def _forward_relays(self) -> None:
        async for upstream, method, params in self._relayed:
            for listener in self._relay_listeners:
                try:
                    await listener(upstream, method, params)
                except Exception:
                    log.exception("relaying %s from %s failed", method, upstream)

    async def _forward_catalog_changes(self) -> None:
        while True:
            await self._catalog_changed.wait()
            await anyio.sleep(self.policy.list_changed_debounce)
            if self._held or not self._catalog_changed.is_set():
                continue  # a reload is under way (or has told them): one notice per reload
            self._catalog_changed = anyio.Event()
            await self._tell_listeners()

    async def _tell_listeners(self) -> None:
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
        for upstream in list(self.upstreams.values()):  # a reload may change the set meanwhile
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

    async def _wanted_all(self) -> None:
        for upstream in self.upstreams.values():
            if not upstream.tools:
                upstream.want()
        with anyio.move_on_after(self.list_wait):
            await self.settled()

    async def passthrough(self) -> list[Upstream]:
        """The upstreams whose resources and prompts to list (started as for tools; those
        ready get up to `list_wait` seconds in all to list them)."""
        await self._wanted_all()
        with anyio.move_on_after(self.list_wait):
            for upstream in list(self.upstreams.values()):
                if upstream.state is UpstreamState.READY:
                    await upstream.passthrough_listed()
        return [u for u in self.upstreams.values() if u.state not in DOWN_STATES]

    async def listed_once(self, upstream: Upstream) -> None:
        """Start an upstream that never listed what it serves; wait at most `list_wait`."""
        if not upstream.tools and not upstream.passthrough:
            upstream.want()
            with anyio.move_on_after(self.list_wait):
                await upstream.wait_settled()
                if upstream.state is UpstreamState.READY:
                    await upstream.passthrough_listed()

    def owner_of_uri(self, uri: str) -> tuple[Upstream, str] | None:
        """The upstream behind a namespaced resource URI, and the upstream's own URI."""
        split = split_uri(uri)
        upstream = self.upstreams.get(split[0]) if split else None
        if split is None or upstream is None or upstream.state is UpstreamState.DISABLED:
            return None
        return upstream, split[1]

    def owner_of_prompt(self, exposed_name: str) -> tuple[Upstream, str] | None:
        """The upstream behind a namespaced prompt name, and its own prompt name."""
        for upstream in self.upstreams.values():
            prompt = upstream.passthrough.prompts.get(exposed_name)
            if prompt is not None:
                return upstream, str(prompt["name"])
        return None

    def _owner(self, exposed_name: str) -> tuple[Upstream, str] | None:
        """Which upstream serves this name, and its upstream tool name. Before an upstream
        has listed its tools (not started yet, or starting), its namespace prefix decides,
        so the first call already gets the right breaker and time limit."""
        listed = self.listed_tool(exposed_name)
        if listed is not None:
            return listed[0], listed[1].upstream_tool
        for upstream in self.upstreams.values():
            prefix = f"{upstream.name}_"
            unlisted = not upstream.tools and upstream.state is not UpstreamState.DISABLED
            if unlisted and exposed_name.startswith(prefix):
                return upstream, exposed_name.removeprefix(prefix)
        return None

    def listed_tool(self, exposed_name: str) -> tuple[Upstream, UpstreamTool] | None:
        """The upstream tool behind a name among the tools upstreams have listed (none is
        started or waited for)."""
        for upstream in self.upstreams.values():
            tool = upstream.tools.get(exposed_name)
            if tool is not None:
                return upstream, tool
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


def policy_for(manifest: Manifest, policy: RestartPolicy) -> RestartPolicy:
    """The gateway's policy with the manifest's own lazy start and idle time, if it has them."""
    overrides: dict[str, Any] = {}
    if manifest.lazy_start is not None:
        overrides["lazy"] = manifest.lazy_start
    if manifest.idle_minutes is not None:
        overrides["idle_shutdown"] = manifest.idle_minutes * 60
    return replace(policy, **overrides) if overrides else policy
