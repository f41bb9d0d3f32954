"""One live MCP client session with an upstream: handshake, tools, resources, prompts and
calls; and starting a stdio upstream's process (`open_session`; remote ones open in
`remote/session.py`)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from archon_gateway.core.errors import (
    GatewayError,
    UpstreamStartTimeout,
    UpstreamUnavailable,
)
from archon_gateway.core.version import __version__
from archon_gateway.upstreams.connection import (
    NotificationHandler,
    ProgressCallback,
    RequestHandler,
    RpcConnection,
    answer_locally,
    serving,
)
from archon_gateway.upstreams.manifest import Manifest
from archon_gateway.upstreams.process import describe_exit, upstream_process
from archon_gateway.upstreams.stderr_log import LOG_BACKUPS, LOG_MAX_BYTES, StderrLog
from archon_gateway.upstreams.transport import StdioTransport

log = logging.getLogger(__name__)

# The newest handshake-era version: it carries URL-mode elicitation; older servers
# answer with the version they speak.
PROTOCOL_VERSION = "2025-11-25"
CLIENT_INFO = {"name": "archon-gateway", "version": __version__}
# What the gateway can forward to its own clients (server-to-client requests), declared to
# every upstream: servers such as server-everything only offer their sampling and
# elicitation tools to clients that declare these.
CLIENT_CAPABILITIES: dict[str, Any] = {
    "sampling": {},
    "elicitation": {"form": {}, "url": {}},
    "roots": {"listChanged": False},
}
_MAX_PAGES = 100
# After the process exits, how long the reader may still pass on what it wrote before
# every call still waiting fails (its stdout may stay open in a grandchild).
_DRAIN_AFTER_EXIT = 0.02
# After its stdout ends, how long to wait for the process's exit code to name in errors.
_EXIT_AFTER_EOF = 0.5


@dataclass
class UpstreamSession:
    """A started, initialized upstream. Calls may run concurrently."""

    manifest: Manifest
    connection: RpcConnection
    pid: int | None  # None for a remote upstream
    server_info: dict[str, Any]
    capabilities: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.manifest.name

    def offers(self, capability: str) -> bool:
        """Whether the upstream declared this server capability (tools, resources, ...)."""
        return isinstance(self.capabilities.get(capability), dict)

    async def list_tools(self) -> list[dict[str, Any]]:
        """Every tool the upstream offers (all pages), as raw MCP tool objects."""
        return await self._list_all("tools/list", "tools", "name")

    async def list_resources(self) -> list[dict[str, Any]]:
        if not self.offers("resources"):
            return []
        return await self._list_all("resources/list", "resources", "uri")

    async def list_resource_templates(self) -> list[dict[str, Any]]:
        if not self.offers("resources"):
            return []
        return await self._list_all("resources/templates/list", "resourceTemplates", "uriTemplate")

    async def list_prompts(self) -> list[dict[str, Any]]:
        if not self.offers("prompts"):
            return []
        return await self._list_all("prompts/list", "prompts", "name")

    async def _list_all(self, method: str, key: str, required: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(_MAX_PAGES):
            result = await self.connection.request(method, {"cursor": cursor} if cursor else None)
            page = result.get(key)
            if not isinstance(page, list):
                raise UpstreamUnavailable(f"upstream '{self.name}' sent a {method} without {key}")
            items.extend(item for item in page if isinstance(item, dict) and required in item)
            cursor = result.get("nextCursor")
            if not isinstance(cursor, str) or not cursor:
                break
        return items

    async def ping(self) -> float:
        """Round-trip an MCP ping; the latency in seconds (a dead upstream raises
        UpstreamUnavailable, a hung one waits: bound it with the caller's timeout)."""
        started = time.perf_counter()
        await self.connection.request("ping")
        return time.perf_counter() - started

    async def call_tool(
        self,
        tool: str,
        arguments: Mapping[str, Any],
        progress: ProgressCallback | None = None,
        *,
        origin: object = None,
    ) -> dict[str, Any]:
        """The raw CallToolResult object (content, structuredContent, isError)."""
        return await self.connection.request(
            "tools/call", {"name": tool, "arguments": dict(arguments)}, progress, origin=origin
        )

    async def request(
        self, method: str, params: dict[str, Any], *, origin: object = None
    ) -> dict[str, Any]:
        """Any other request (resources/read, prompts/get, completion/complete, ...)."""
        return await self.connection.request(method, params, origin=origin)


@asynccontextmanager
async def open_session(
    manifest: Manifest,
    command: str,
    *,
    gateway_env: Mapping[str, str],
    log_dir: Path,
    on_notification: NotificationHandler = lambda method, params, related: None,
    on_request: RequestHandler = answer_locally,
    log_max_bytes: int = LOG_MAX_BYTES,
    log_backups: int = LOG_BACKUPS,
) -> AsyncIterator[UpstreamSession]:
    """Start the upstream, initialize it within its startup timeout, and keep it running
    for the block. Failures to start raise UpstreamUnavailable with the reason (and the
    last line the upstream wrote to stderr, which usually says what is wrong). When the
    process ends, every call still waiting fails at once with how it ended, even if
    something it spawned keeps its stdout open. Its stderr goes to `<log_dir>/<name>.log`,
    rotated at `log_max_bytes` with `log_backups` older files."""
    stderr_log = StderrLog(log_dir, manifest.name, max_bytes=log_max_bytes, backups=log_backups)
    argv = [command, *manifest.args]
    async with upstream_process(
        manifest.name,
        argv,
        env=manifest.process_env(gateway_env),
        cwd=manifest.cwd,
        stderr_log=stderr_log,
    ) as process:
        assert process.stdin is not None
        assert process.stdout is not None

        async def how_it_ended() -> str:
            with anyio.move_on_after(_EXIT_AFTER_EOF):
                return describe_exit(await process.wait())
            return "closed its output"

        connection = RpcConnection(
            manifest.name,
            StdioTransport(
                manifest.name, process.stdin, process.stdout, manifest.max_message_bytes
            ),
            manifest.max_message_bytes,
            on_notification,
            on_request,
            reason_at_eof=how_it_ended,
        )

        async def close_on_exit() -> None:
            returncode = await process.wait()
            # Let the reader pass on replies written just before the end; then fail the
            # rest, since a grandchild holding stdout open would keep EOF from coming.
            await anyio.sleep(_DRAIN_AFTER_EXIT)
            connection.close(describe_exit(returncode))

        async with serving(connection, close_on_exit):
            try:
                with anyio.fail_after(manifest.startup_timeout):
                    server_info, capabilities = await _initialize(connection)
            except (GatewayError, TimeoutError) as exc:
                with anyio.move_on_after(0.5):  # let a dying process be reaped for its code
                    await process.wait()
                    await stderr_log.closed.wait()  # and its last words be read
                raise _start_failure(manifest, process.returncode, exc, stderr_log) from exc
            log.info(
                "upstream %s ready (pid %d, %s %s)",
                manifest.name,
                process.pid,
                server_info.get("name", "?"),
                server_info.get("version", "?"),
            )
            yield UpstreamSession(manifest, connection, process.pid, server_info, capabilities)


async def _initialize(connection: RpcConnection) -> tuple[dict[str, Any], dict[str, Any]]:
    """The upstream's serverInfo and capabilities."""
    result = await connection.request(
        "initialize",
        {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": CLIENT_CAPABILITIES,
            "clientInfo": CLIENT_INFO,
        },
    )
    await connection.notify("notifications/initialized")
    info, capabilities = result.get("serverInfo"), result.get("capabilities")
    return (
        info if isinstance(info, dict) else {},
        capabilities if isinstance(capabilities, dict) else {},
    )


def _start_failure(
    manifest: Manifest,
    returncode: int | None,
    exc: Exception,
    stderr_log: StderrLog,
) -> UpstreamUnavailable:
    said = stderr_log.last_line()
    hint = f" (its stderr: {said})" if said else " (it wrote nothing to stderr)"
    if isinstance(exc, TimeoutError):
        reason = f"did not answer initialize within {manifest.startup_timeout:g} s"
        return UpstreamStartTimeout(f"upstream '{manifest.name}' {reason}{hint}")
    if returncode is not None:
        reason = f"{describe_exit(returncode)} at start"
    else:
        reason = f"failed to initialize: {exc}"
    return UpstreamUnavailable(f"upstream '{manifest.name}' {reason}{hint}")
