"""Serving a gateway over stdio, streamable HTTP, or both, from one process and one task group.

Both transports share the one FastMCP instance, so metrics, sessions to upstreams and every
other piece of state are shared. The gateway, not uvicorn, owns SIGINT/SIGTERM: the first
signal (or stdin EOF on the stdio transport) starts a graceful stop bounded by
`shutdown_grace`; a second signal stops at once.
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import signal
import socket
from dataclasses import dataclass

import anyio
import uvicorn
from anyio.abc import TaskStatus
from fastmcp import FastMCP
from fastmcp.server.middleware import Middleware

from archon_gateway.core import sdk_compat
from archon_gateway.core.connection_slots import ConnectionSlots
from archon_gateway.core.errors import FrontDoorFailed, ListenFailed, SettingsInvalid
from archon_gateway.gateway.call_pipeline import as_middleware
from archon_gateway.gateway.call_steps.drain import InFlightCalls
from archon_gateway.gateway.fd_limit import connection_room
from archon_gateway.gateway.http import RequestBounds, build_http_app
from archon_gateway.gateway.mcp_server import GatewayServer
from archon_gateway.gateway.stdio import StdioChannel, stdio_streams

log = logging.getLogger(__name__)


def bind_listener(host: str, port: int) -> socket.socket:
    """Bind the HTTP address before anything else starts, so a taken port fails fast."""
    where = f"{host}:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise ListenFailed(f"cannot listen on {where}: unknown host ({exc.strerror})") from exc
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ListenFailed(
                f"cannot listen on {where}: the port is already in use "
                "(is another gateway running? choose one with --port or ARCHON_PORT)"
            ) from exc
        raise ListenFailed(f"cannot listen on {where}: {exc.strerror}") from exc
    sock.setblocking(False)
    return sock


def http_url(listener: socket.socket, path: str) -> str:
    host, port = listener.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{path}"


async def serve(
    server: FastMCP,
    *,
    stdio: bool,
    listener: socket.socket | None,
    mcp_path: str = "/mcp",
    shutdown_grace: float = 1.0,
    max_message_bytes: int = 32 * 1024 * 1024,
    handle_signals: bool = True,
    stop: anyio.Event | None = None,
    stdio_fds: tuple[int, int] = (0, 1),
    http_limits: HttpLimits | None = None,
    own_process: bool = False,
) -> None:
    """Serve until a signal, stdin EOF (stdio), the HTTP server stopping, or `stop` is set
    (for hosts that embed the gateway) ends it. `own_process`: the gateway is the whole
    process (the CLI), so it may tune process-wide settings (the garbage collector).

    Stopping: tool calls in flight end with a "shutting down" error and new ones are
    refused; then stdin is closed (replies drain) and HTTP stops accepting; whatever still
    runs after `shutdown_grace` is cancelled.
    """
    if not stdio and listener is None:
        raise SettingsInvalid("nothing to serve: enable stdio, HTTP, or both")
    stop = stop or anyio.Event()
    http_limits = http_limits or HttpLimits()
    in_flight, added = _drain_step(server)
    sdk_compat.allow_sse_streams()  # process-global: a previous serve() here ended them
    try:
        # Entered once here so both transports share one lifespan (it is ref-counted inside).
        async with sdk_compat.lifespan(server), anyio.create_task_group() as tg:
            if own_process:
                _settle_garbage_collector()
            watcher = anyio.CancelScope()
            if handle_signals:
                tg.start_soon(_watch_signals, watcher, stop, tg.cancel_scope)
            http: uvicorn.Server | None = None
            if listener is not None:
                http = await tg.start(
                    _run_http,
                    _uvicorn_config(
                        server,
                        mcp_path,
                        shutdown_grace,
                        max_message_bytes,
                        http_limits,
                        bound=listener.getsockname()[:2],  # the real port, for Host checks
                    ),
                    listener,
                    stop,
                )
                log.info("serving MCP over streamable HTTP at %s", http_url(listener, mcp_path))
            channel: StdioChannel | None = None
            if stdio:
                if os.isatty(stdio_fds[0]):
                    log.info(
                        "stdin is a terminal: an MCP client normally launches this command; "
                        "for HTTP clients run `archon-gateway serve --transport http`"
                    )
                channel = await tg.start(
                    _run_stdio, server, max_message_bytes, stdio_fds, stop, shutdown_grace
                )
                log.info("serving MCP over stdio")
            await stop.wait()
            log.info("shutting down")
            # Whatever is still running after the grace period is cancelled.
            tg.cancel_scope.deadline = anyio.current_time() + shutdown_grace + 0.5
            await in_flight.drain(within=shutdown_grace / 2)
            if channel is not None:
                channel.close_input()
            if http is not None:
                # Open SSE streams (a session's GET stream) end only when sse-starlette is
                # told; they would otherwise hold shutdown until uvicorn's timeout cuts them.
                sdk_compat.stop_sse_streams()
                sdk_compat.stop_uvicorn(http)
                logging.getLogger("uvicorn.error").addFilter(sdk_compat.drop_cut_stream_errors)
            watcher.cancel()
    finally:
        if added is not None:
            server.middleware.remove(added)
        sdk_compat.allow_sse_streams()  # leave the process-global flag as we found it
        logging.getLogger("uvicorn.error").removeFilter(sdk_compat.drop_cut_stream_errors)
    log.info("stopped")


def _drain_step(server: FastMCP) -> tuple[InFlightCalls, Middleware | None]:
    """The gateway's pipeline has its drain step; a bare server gets one, outermost (the
    middleware added, to be removed when serving ends)."""
    front = server.front if isinstance(server, GatewayServer) else None
    added = None
    if front is not None and front.drain is not None:
        in_flight = front.drain
    else:
        in_flight = InFlightCalls()
        added = as_middleware(in_flight)
        server.middleware.insert(0, added)
    in_flight.restart()
    return in_flight, added


def _settle_garbage_collector() -> None:
    """Everything built to start (modules, the catalog, models) lives until exit: moved out
    of the collector's sight, so its full passes scan only what requests create; and young
    collections run less often than Python's default (every 700 allocations, hundreds of
    pauses a second at high request rates). Measured: p99 at 50 HTTP connections 128 ms ->
    40-47 ms (scripts/bench/http_load.py)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


@dataclass(frozen=True)
class HttpLimits:
    """How long a slow client may take, and how many connections, requests and sessions
    may be open (see docs/hardening.md): headers within `header_timeout` s, body stalls of
    at most `body_timeout` s, idle keep-alive connections closed after `keepalive_timeout`
    s; at `max_connections` a new connection displaces the longest-waiting one that has no
    request in flight; MCP requests beyond `max_requests` in flight are answered 503;
    sessions idle for `session_idle_s` are closed, and at `max_sessions` the least recently
    used idle one is."""

    header_timeout: float = 5.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 5.0
    max_connections: int = 4096
    max_requests: int = 512
    session_idle_s: float = 1800.0
    max_sessions: int = 1000
    # No handshake-era sessions kept between requests (replicas behind a load balancer).
    stateless: bool = False


def _uvicorn_config(
    server: FastMCP,
    mcp_path: str,
    shutdown_grace: float,
    max_message_bytes: int,
    limits: HttpLimits,
    *,
    bound: tuple[str, int] | None = None,
) -> uvicorn.Config:
    slots = ConnectionSlots(
        connection_room(limits.max_connections),
        f"too many open connections: all {limits.max_connections} (http_max_connections) "
        "are serving requests; retry shortly",
    )
    app = build_http_app(
        server,
        mcp_path,
        max_message_bytes,
        stateless=limits.stateless,
        bounds=RequestBounds(limits.max_requests, limits.session_idle_s, limits.max_sessions),
        bound=bound,
    )
    return uvicorn.Config(
        app,
        http=sdk_compat.slow_client_protocol(limits.header_timeout, limits.body_timeout, slots),
        timeout_keep_alive=limits.keepalive_timeout,  # type: ignore[arg-type]
        # Not uvicorn's limit_concurrency: it counts idle connections against requests
        # (600 idle sockets made /health answer 503); the slots and RequestBounds split them.
        limit_concurrency=None,
        log_config=None,
        lifespan="on",
        ws="none",
        server_header=False,
        # uvicorn annotates this as int but awaits it with asyncio.wait_for (floats ok).
        timeout_graceful_shutdown=shutdown_grace,  # type: ignore[arg-type]
    )


async def _watch_signals(
    scope: anyio.CancelScope, stop: anyio.Event, everything: anyio.CancelScope
) -> None:
    with scope, anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            if stop.is_set():
                log.warning("second %s: stopping now", signal.Signals(signum).name)
                everything.cancel()
                return
            log.info("received %s", signal.Signals(signum).name)
            stop.set()


async def _run_stdio(
    server: FastMCP,
    max_message_bytes: int,
    fds: tuple[int, int],
    stop: anyio.Event,
    grace: float,
    *,
    task_status: TaskStatus[StdioChannel] = anyio.TASK_STATUS_IGNORED,
) -> None:
    try:
        with sdk_compat.transport_set("stdio"):
            # The lane (gateway.lane), if any.
            tap = server.front.stdio_tap if isinstance(server, GatewayServer) else None
            streams = stdio_streams(max_message_bytes, *fds, eof_grace=grace, tap=tap)
            async with streams as channel:
                task_status.started(channel)
                await sdk_compat.run_session(server, channel.read, channel.write)
            if not stop.is_set():
                log.info("stdin closed by the client")
    finally:
        stop.set()


async def _run_http(
    config: uvicorn.Config,
    listener: socket.socket,
    stop: anyio.Event,
    *,
    task_status: TaskStatus[uvicorn.Server] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """uvicorn that leaves signals to the gateway; started once it listens."""
    http: uvicorn.Server | None = None

    def started() -> None:
        assert http is not None
        task_status.started(http)

    http = sdk_compat.embedded_uvicorn(config, started)
    try:
        if not await sdk_compat.serve_uvicorn(http, [listener]):
            # uvicorn exits the process when the app's startup fails; report it instead.
            raise FrontDoorFailed("the HTTP front door failed to start (see the log above)")
    finally:
        stop.set()
