"""One supervised upstream: started (stdio) or connected (remote) on demand or at once,
pinged, restarted with backoff when it dies, loses its connection or stops answering,
marked crash-looping when it keeps dying, and stopped when idle. One `supervise` task per
upstream runs all of it. Its states are in `state.py`, the backoff rules in `restarts.py`,
what it lists in `catalog.py`."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskStatus

from archon_gateway.core.errors import (
    GatewayError,
    UpstreamRequestFailed,
    UpstreamRestarting,
    UpstreamUnavailable,
)
from archon_gateway.core.health import ComponentStatus
from archon_gateway.upstreams.callers import Caller, InFlight, forward_request
from archon_gateway.upstreams.catalog import (
    LIST_CHANGED,
    PROMPTS_CHANGED,
    RESOURCES_CHANGED,
    Passthrough,
    UpstreamTool,
    catalog_of,
    passthrough_of,
)
from archon_gateway.upstreams.connection import ProgressCallback
from archon_gateway.upstreams.manifest import Manifest
from archon_gateway.upstreams.opening import open_upstream
from archon_gateway.upstreams.restarts import CrashHistory, RestartPolicy
from archon_gateway.upstreams.session import UpstreamSession
from archon_gateway.upstreams.state import DOWN_STATES, UpstreamInfo, UpstreamState

log = logging.getLogger(__name__)
# How long a call waits for supervision to catch up with an upstream that has just ended.
_CATCH_UP = 2.0


# (upstream, old state, new state, its last error)
StateListener = Callable[[str, UpstreamState, UpstreamState, "str | None"], None]


@dataclass(frozen=True)
class UpstreamHooks:
    """What the rest of the gateway hears from a supervised upstream."""

    catalog_changed: Callable[[], None] = lambda: None
    pinged: Callable[[str, float], None] = lambda name, seconds: None
    # An upstream's notification for the gateway's clients (resources/updated, resources
    # or prompts list_changed, a log line of no single client's call): upstream, method, params.
    relay: Callable[[str, str, dict[str, Any]], None] = lambda upstream, method, params: None
    # (name, old, new, last error) on every change of state: connects and failures are
    # counted from it, lifecycle events announced. Must not block or raise.
    state_changed: StateListener = lambda name, old, new, error: None


@dataclass(frozen=True)
class _Ending:
    """Why a run ended: `crash` counts towards backoff; `idle` and `restart` do not."""

    kind: str
    reason: str
    noted: bool = False  # the crash is already counted and its restart scheduled


@dataclass
class Upstream:
    """One manifest at run time: its state, live session, tools and supervision."""

    manifest: Manifest
    command: str | None  # None when remote, or not found
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    history: CrashHistory = field(default_factory=lambda: CrashHistory(RestartPolicy()))
    hooks: UpstreamHooks = field(default_factory=UpstreamHooks)
    state: UpstreamState = UpstreamState.STOPPED
    last_error: str | None = None
    session: UpstreamSession | None = None
    tools: dict[str, UpstreamTool] = field(default_factory=dict)
    passthrough: Passthrough = field(default_factory=Passthrough)
    # How long a client may take to answer what the upstream asks it (sampling, ...).
    client_request_limit: float = 300.0
    in_flight: InFlight = field(default_factory=InFlight)
    log_level: str | None = None  # the last logging/setLevel of any client

    def __post_init__(self) -> None:
        self.in_flight.upstream = self.name

    restarts: int = 0
    runs: int = 0  # times the process was started
    last_ping: float | None = None
    retry_at: float | None = None
    _changed: anyio.Event = field(default_factory=anyio.Event)
    _wanted: anyio.Event = field(default_factory=anyio.Event)
    _restart: anyio.Event = field(default_factory=anyio.Event)
    _stale: anyio.Event = field(default_factory=anyio.Event)
    _passthrough_listed: anyio.Event = field(default_factory=anyio.Event)
    _in_flight: int = 0
    _failing: bool = False  # the last run crashed, and no run has been ready since
    _disabled_by_fault: bool = False  # disabled because it cannot run as configured
    _last_used: float = 0.0
    _started: float = 0.0  # when the current run began
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # remote; secret

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def pid(self) -> int | None:
        return self.session.pid if self.session is not None else None

    def disable(self, reason: str, *, fault: bool = False) -> None:
        """Off for `reason`; a `fault` (it cannot run as configured: its command or a
        header's variable is missing) makes the gateway degraded, unless the manifest is
        optional."""
        self.state, self.last_error = UpstreamState.DISABLED, reason
        self._disabled_by_fault = fault

    # -- what others see -------------------------------------------------------------------

    def status(self) -> ComponentStatus:
        state = self.state
        if state is UpstreamState.DISABLED:
            fault = self._disabled_by_fault and not self.manifest.optional
            detail = self.last_error or "disabled"
            return ComponentStatus("degraded" if fault else "disabled", detail)
        if state is UpstreamState.READY:
            return ComponentStatus("ok", f"{len(self.tools)} tools")
        if state is UpstreamState.STOPPED:
            # Not running by design (lazy or idle): healthy, it starts on the next call.
            return ComponentStatus("ok", "stopped; starts on first use")
        if state is UpstreamState.STARTING and not self._failing:
            return ComponentStatus("degraded", "starting")
        if state is UpstreamState.STARTING:
            return ComponentStatus("down", f"restarting; it {self.last_error}")
        return ComponentStatus("down", self.unavailable_reason())

    def info(self) -> UpstreamInfo:
        """Per-upstream details for /health, gateway_info and the restart tool."""
        return UpstreamInfo(
            state=str(self.state),
            transport=self.manifest.remote_transport if self.manifest.is_remote else "stdio",
            pid=self.pid,
            restarts=self.restarts,
            last_error=self.last_error,
            last_ping_ms=round(self.last_ping * 1000, 3) if self.last_ping is not None else None,
            tools=len(self.tools),
            retry_in_s=self._retry_in(),
        )

    def listed_tools(self) -> list[UpstreamTool]:
        """The tools to list now: live ones, or the last known ones while the upstream is
        stopped or (when the policy keeps them) restarting."""
        if self.state in DOWN_STATES:
            return list(self.tools.values()) if self.policy.keep_tools_when_down else []
        return list(self.tools.values())

    def unavailable_reason(self) -> str:
        state = self.state
        retry = self._retry_in()
        when = f"retry in {retry} s" if retry is not None else "retry shortly"
        if state is UpstreamState.DEGRADED:
            return (
                f"upstream '{self.name}' is restarting, {when} (it {self.last_error or 'stopped'})"
            )
        if state is UpstreamState.CRASH_LOOPING:
            return (
                f"upstream '{self.name}' is crash-looping ({self.history.in_a_row} crashes "
                f"without staying up {self.policy.crash_loop_window:g} s), next {when} "
                f"(last: it {self.last_error or 'stopped'}); see its log, or restart it with "
                "gateway_restart_upstream"
            )
        return f"upstream '{self.name}' is not running ({self.last_error or state})"

    def _retry_in(self) -> int | None:
        if self.retry_at is None or self.state not in DOWN_STATES:
            return None
        return max(0, math.ceil(self.retry_at - anyio.current_time()))

    # -- demand ----------------------------------------------------------------------------

    def want(self) -> None:
        """Start the upstream if it is stopped (lazy start, or idle)."""
        if self.state is not UpstreamState.DISABLED:
            self._wanted.set()

    def request_restart(self) -> None:
        """Restart now: a running upstream is stopped and started again; one waiting out a
        backoff or crash loop is started at once (its crash history is forgiven)."""
        if self.state is UpstreamState.DISABLED:
            raise UpstreamUnavailable(f"upstream '{self.name}' is disabled ({self.last_error})")
        self.history.reset()
        self._restart.set()
        self.want()

    async def restart(self) -> None:
        """Request a restart and wait until the new run has started (or failed to)."""
        target = self.runs + 1
        self.request_restart()
        while self.runs < target:
            await self.wait_changed()
        await self.wait_settled()

    async def wait_changed(self) -> None:
        """Wait for the next state change."""
        await self._changed.wait()

    async def wait_settled(self) -> None:
        """Wait while the upstream is starting (or about to start on demand)."""
        while self.state is UpstreamState.STARTING or (
            self.state is UpstreamState.STOPPED and self._wanted.is_set()
        ):
            await self.wait_changed()

    async def call(
        self,
        tool: UpstreamTool,
        arguments: Mapping[str, Any],
        progress: ProgressCallback | None,
        caller: Caller | None = None,
    ) -> dict[str, Any]:
        session = await self._live_session()
        self._in_flight += 1
        try:
            async with self.in_flight.calling(caller) as origin:
                return await session.call_tool(
                    tool.upstream_tool, arguments, progress, origin=origin
                )
        finally:
            self._in_flight -= 1
            self._last_used = anyio.current_time()

    async def request(
        self, method: str, params: dict[str, Any], caller: Caller | None = None
    ) -> dict[str, Any]:
        """Any other request a client makes of this upstream (resources/read, prompts/get,
        completion/complete, ...), started on demand like a call."""
        session = await self._live_session()
        self._in_flight += 1
        try:
            async with self.in_flight.calling(caller) as origin:
                return await session.request(method, params, origin=origin)
        finally:
            self._in_flight -= 1
            self._last_used = anyio.current_time()

    def live_session(self) -> UpstreamSession | None:
        return self.session

    async def _live_session(self) -> UpstreamSession:
        ended = self.session
        if ended is not None and ended.connection.closed:
            # It has just ended and supervision has not caught up: a call now gets the
            # same answer as one a moment later ("restarting, retry in N s").
            with anyio.move_on_after(_CATCH_UP):
                while self.session is ended:
                    await self.wait_changed()
        if self.session is None:
            self.want()
            await self.wait_settled()
        session = self.session
        if session is None:
            down = self.state in DOWN_STATES
            raise (UpstreamRestarting if down else UpstreamUnavailable)(self.unavailable_reason())
        return session

    # -- live configuration ----------------------------------------------------------------

    def reconfigure(self, manifest: Manifest, policy: RestartPolicy) -> None:
        """Take a manifest that differs only in what is read per call or per listing
        (timeouts, allow/deny lists, roots, ...): the session and calls in flight are kept.
        Tools it no longer exposes go at once; a running upstream re-lists its tools so
        newly allowed ones appear."""
        filters_changed = (manifest.allow_tools, manifest.deny_tools) != (
            self.manifest.allow_tools,
            self.manifest.deny_tools,
        )
        self.manifest, self.policy = manifest, policy
        if not filters_changed:
            return
        kept = {
            name: tool for name, tool in self.tools.items() if manifest.exposes(tool.upstream_tool)
        }
        if kept != self.tools:
            self.tools = kept
            self.hooks.catalog_changed()
        if self.session is not None:
            self._stale.set()  # re-list: tools now allowed were filtered out before

    def end_calls(self, reason: str) -> None:
        """Fail the calls in flight at once with `reason` (the upstream is being stopped
        for good: removed, or replaced by a new configuration)."""
        if self.session is not None:
            self.session.connection.close(reason)

    def retired(self, reason: str) -> None:
        """Stopped for good: calls still waiting for it to start learn why."""
        self.session = None
        self._disabled_by_fault = False
        self._set_state(UpstreamState.DISABLED, reason)

    # -- supervision -----------------------------------------------------------------------

    def _set_state(self, state: UpstreamState, error: str | None = None) -> None:
        listed_before = bool(self.listed_tools())
        old, self.state = self.state, state
        if error is not None:
            self.last_error = error
        changed, self._changed = self._changed, anyio.Event()
        changed.set()
        if old is not state:
            self.hooks.state_changed(self.name, old, state, self.last_error)
        if bool(self.listed_tools()) != listed_before:
            self.hooks.catalog_changed()  # tools hidden while down, or shown again

    async def supervise(
        self,
        gateway_env: Mapping[str, str],
        log_dir: Path,
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run (and re-run) the upstream until cancelled."""
        assert self.command is not None or self.manifest.is_remote
        if not self.policy.lazy:
            self._wanted.set()
        async with anyio.create_task_group() as relays:
            # Log relays of calls in flight run here, not in a task group per call.
            self.in_flight.spawn = relays.start_soon
            try:
                task_status.started()
                await self._supervise_forever(gateway_env, log_dir)
            finally:
                self.in_flight.spawn = None
                relays.cancel_scope.cancel()

    async def _supervise_forever(self, gateway_env: Mapping[str, str], log_dir: Path) -> None:
        while True:
            await self._wanted.wait()
            self._restart = anyio.Event()
            self._started = anyio.current_time()
            ending = await self._run_once(gateway_env, log_dir)
            self.session = None
            if ending.kind == "idle":
                log.info("upstream %s stopped after %s", self.name, ending.reason)
                continue
            self.restarts += 1
            if ending.kind == "restart":
                log.info("upstream %s restarting on request", self.name)
                continue
            if not ending.noted:
                self._crashed(ending.reason)
            assert self.retry_at is not None
            with anyio.move_on_after(self.retry_at - anyio.current_time()):
                await self._restart.wait()

    def _crashed(self, reason: str) -> None:
        """Count the crash and schedule the restart; calls are told when to retry."""
        self._failing = True
        delay = self.history.crashed(anyio.current_time() - self._started)
        self.retry_at = anyio.current_time() + delay
        looping = self.history.looping
        self._set_state(UpstreamState.CRASH_LOOPING if looping else UpstreamState.DEGRADED, reason)
        log.error(
            "upstream %s %s; %s in %.1f s",
            self.name,
            reason,
            "crash-looping, next try" if looping else "restarting",
            delay,
        )

    async def _run_once(self, gateway_env: Mapping[str, str], log_dir: Path) -> _Ending:
        self.runs += 1
        self._set_state(UpstreamState.STARTING)
        self._stale = anyio.Event()
        self._passthrough_listed = anyio.Event()
        try:
            async with open_upstream(
                self.manifest,
                self.command,
                self.headers,
                gateway_env=gateway_env,
                log_dir=log_dir,
                on_notification=self._on_notification,
                on_request=self._on_request,
            ) as session:
                with anyio.fail_after(self.manifest.startup_timeout):
                    definitions = await session.list_tools()
                    await self._apply_log_level(session)
                # Ready with its tools; resources and prompts are listed right after (see
                # _refresh_catalog), so calls need not wait for them.
                self._update_catalog(definitions, self.passthrough)
                self.session, self.last_ping, self.retry_at = session, None, None
                self._failing = False
                self._last_used = anyio.current_time()
                self._set_state(UpstreamState.READY)
                ending = await self._watch(session)
                self.session = None
                if ending.kind == "crash":
                    self._crashed(ending.reason)  # before the stop: calls hear it at once
                    ending = replace(ending, noted=True)
                elif ending.kind == "idle":
                    self._wanted = anyio.Event()  # the next call starts it again
                    self._set_state(UpstreamState.STOPPED)
                else:
                    self._set_state(UpstreamState.STARTING)  # restarting on request
                # Calls still waiting learn why at once, not when the process has exited.
                session.connection.close(f"was stopped: {ending.reason}")
                return ending
        except TimeoutError:
            return _Ending("crash", "did not list its tools in time")
        except UpstreamUnavailable as exc:
            return _Ending("crash", _without_name(str(exc), self.name))
        except GatewayError as exc:
            return _Ending("crash", f"failed to start: {exc}")
        except Exception as exc:  # a bug must cost one upstream a restart, not the gateway
            log.exception("upstream %s: unexpected failure", self.name)
            return _Ending("crash", f"failed: {exc!r}")
        finally:
            self.session = None

    async def _watch(self, session: UpstreamSession) -> _Ending:
        """Serve until the process dies, stops answering pings, idles out, or a restart
        is requested; meanwhile rebuild the catalog when the upstream says it changed."""
        endings: list[_Ending] = []
        async with anyio.create_task_group() as tg:

            def end(kind: str, reason: str) -> None:
                endings.append(_Ending(kind, reason))
                tg.cancel_scope.cancel()

            tg.start_soon(self._watch_closed, session, end)
            tg.start_soon(self._watch_pings, session, end)
            tg.start_soon(self._watch_restart, end)
            if self.policy.idle_shutdown is not None:
                tg.start_soon(self._watch_idle, self.policy.idle_shutdown, end)
            tg.start_soon(self._refresh_catalog, session)
        return endings[0]

    async def _watch_closed(self, session: UpstreamSession, end: _End) -> None:
        end("crash", await session.connection.wait_closed())

    async def _watch_restart(self, end: _End) -> None:
        await self._restart.wait()
        end("restart", "a restart was requested")

    async def _watch_pings(self, session: UpstreamSession, end: _End) -> None:
        missed = 0
        while True:
            await anyio.sleep(self.policy.ping_interval)
            try:
                with anyio.fail_after(self.policy.ping_timeout):
                    self.last_ping = await session.ping()
                missed = 0
                self.hooks.pinged(self.name, self.last_ping)
            except UpstreamRequestFailed:
                missed = 0  # it answered, if only with an error: it is alive
            except TimeoutError:
                if self._in_flight:
                    # Busy, not dead: many servers cannot answer while a tool runs. A call
                    # that hangs is ended by its own time limit; then pings count again.
                    log.info("upstream %s missed a ping while serving a call", self.name)
                    continue
                missed += 1
                log.warning("upstream %s missed a ping (%d in a row)", self.name, missed)
                if missed >= self.policy.missed_pings:
                    end("crash", f"stopped answering pings ({missed} missed)")
                    return
            except UpstreamUnavailable:
                return  # _watch_closed reports it

    async def _watch_idle(self, idle: float, end: _End) -> None:
        while True:
            quiet = anyio.current_time() - self._last_used
            if self._in_flight == 0 and quiet >= idle:
                end("idle", f"{idle / 60:g} min without calls")
                return
            await anyio.sleep(max(idle - quiet, 0.05))

    def _on_notification(self, method: str, params: dict[str, Any], related: int | None) -> None:
        if method in (LIST_CHANGED, RESOURCES_CHANGED, PROMPTS_CHANGED):
            self._stale.set()
        elif method == "notifications/message":
            origin = self.session.connection.origin_of(related) if self.session else None
            if not self.in_flight.log(origin, params):
                self.hooks.relay(self.name, method, params)
        elif method == "notifications/resources/updated":
            self.hooks.relay(self.name, method, params)

    async def _on_request(
        self, method: str, params: dict[str, Any], related: int | None
    ) -> dict[str, Any]:
        origin = self.session.connection.origin_of(related) if self.session else None
        return await forward_request(
            self.name,
            self.in_flight,
            method,
            params,
            origin,
            time_limit=self.client_request_limit,
            roots=self.manifest.root_objects(),
        )

    async def _list_passthrough(self, session: UpstreamSession) -> Passthrough:
        """Its resources, templates and prompts; an upstream that fails to list them keeps
        its tools (they are listed without them, with a warning)."""
        try:
            return passthrough_of(
                self.manifest,
                await session.list_resources(),
                await session.list_resource_templates(),
                await session.list_prompts(),
            )
        except GatewayError as exc:
            log.warning("upstream %s: could not list resources or prompts: %s", self.name, exc)
            return Passthrough()

    async def _apply_log_level(self, session: UpstreamSession) -> None:
        """A level a client set before this run started applies to it too."""
        if self.log_level is not None and session.offers("logging"):
            try:
                await session.request("logging/setLevel", {"level": self.log_level})
            except GatewayError as exc:
                log.info("upstream %s refused log level %s: %s", self.name, self.log_level, exc)

    async def passthrough_listed(self) -> None:
        """Wait until this run has listed its resources, templates and prompts."""
        await self._passthrough_listed.wait()

    async def _refresh_catalog(self, session: UpstreamSession) -> None:
        try:
            with anyio.fail_after(self.manifest.startup_timeout):
                passthrough = await self._list_passthrough(session)
            self._update_catalog([t.definition for t in self.tools.values()], passthrough)
        except TimeoutError:
            log.warning("upstream %s did not list its resources and prompts in time", self.name)
        finally:
            self._passthrough_listed.set()
        while True:
            await self._stale.wait()
            await anyio.sleep(self.policy.list_changed_debounce)
            self._stale = anyio.Event()
            log.debug("upstream %s said its tools changed; re-listing", self.name)
            try:
                with anyio.fail_after(self.manifest.startup_timeout):
                    definitions = await session.list_tools()
                    passthrough = await self._list_passthrough(session)
            except (GatewayError, TimeoutError) as exc:
                log.warning("upstream %s: could not re-list its tools: %s", self.name, exc)
                continue
            self._update_catalog(definitions, passthrough)

    def _update_catalog(
        self, definitions: Sequence[dict[str, Any]], passthrough: Passthrough
    ) -> None:
        tools = catalog_of(self.manifest, definitions)
        resources_changed = (passthrough.resources, passthrough.templates) != (
            self.passthrough.resources,
            self.passthrough.templates,
        )
        prompts_changed = passthrough.prompts != self.passthrough.prompts
        changed = tools != self.tools
        self.tools, self.passthrough = tools, passthrough
        if changed:
            self.hooks.catalog_changed()
        if resources_changed:
            self.hooks.relay(self.name, RESOURCES_CHANGED, {})
        if prompts_changed:
            self.hooks.relay(self.name, PROMPTS_CHANGED, {})


_End = Callable[[str, str], None]


def _without_name(message: str, name: str) -> str:
    """ "upstream 'x' exited ..." -> "exited ...": the state line already names it."""
    return message.removeprefix(f"upstream '{name}' ")
