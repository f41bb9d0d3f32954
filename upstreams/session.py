"""One live MCP client session with a stdio upstream: process, handshake, tools, calls."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from gateway import __version__
from gateway.errors import GatewayError, UpstreamUnavailable
from upstreams.connection import (
    NotificationHandler,
    ProgressCallback,
    RpcConnection,
    serving,
)
from upstreams.manifest import Manifest
from upstreams.process import last_stderr_line, upstream_process

log = logging.getLogger(__name__)

PROTOCOL_VERSION = "2025-06-18"
CLIENT_INFO = {"name": "archon-gateway", "version": __version__}
_MAX_TOOL_PAGES = 100


@dataclass
class UpstreamSession:
    """A started, initialized upstream. Calls may run concurrently."""

    manifest: Manifest
    connection: RpcConnection
    pid: int
    server_info: dict[str, Any]

    @property
    def name(self) -> str:
        return self.manifest.name

    async def list_tools(self) -> list[dict[str, Any]]:
        """Every tool the upstream offers (all pages), as raw MCP tool objects."""
        tools: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(_MAX_TOOL_PAGES):
            result = await self.connection.request(
                "tools/list", {"cursor": cursor} if cursor else None
            )
            page = result.get("tools")
            if not isinstance(page, list):
                raise UpstreamUnavailable(f"upstream '{self.name}' sent a tools/list without tools")
            tools.extend(tool for tool in page if isinstance(tool, dict) and "name" in tool)
            cursor = result.get("nextCursor")
            if not isinstance(cursor, str) or not cursor:
                break
        return tools

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
    ) -> dict[str, Any]:
        """The raw CallToolResult object (content, structuredContent, isError)."""
        return await self.connection.request(
            "tools/call", {"name": tool, "arguments": dict(arguments)}, progress
        )


@asynccontextmanager
async def open_session(
    manifest: Manifest,
    command: str,
    *,
    gateway_env: Mapping[str, str],
    log_dir: Path,
    on_notification: NotificationHandler = lambda method, params: None,
) -> AsyncIterator[UpstreamSession]:
    """Start the upstream, initialize it within its startup timeout, and keep it running
    for the block. Failures to start raise UpstreamUnavailable with the reason (and the
    last line the upstream wrote to stderr, which usually says what is wrong)."""
    stderr_log = log_dir / f"{manifest.name}.log"
    offset = stderr_log.stat().st_size if stderr_log.exists() else 0
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
        connection = RpcConnection(
            manifest.name,
            process.stdin,
            process.stdout,
            manifest.max_message_bytes,
            on_notification,
        )
        async with serving(connection):
            try:
                with anyio.fail_after(manifest.startup_timeout):
                    server_info = await _initialize(connection)
            except (GatewayError, TimeoutError) as exc:
                with anyio.move_on_after(0.5):  # let a dying process be reaped for its code
                    await process.wait()
                raise _start_failure(
                    manifest, process.returncode, exc, stderr_log, offset
                ) from None
            log.info(
                "upstream %s ready (pid %d, %s %s)",
                manifest.name,
                process.pid,
                server_info.get("name", "?"),
                server_info.get("version", "?"),
            )
            yield UpstreamSession(manifest, connection, process.pid, server_info)


async def _initialize(connection: RpcConnection) -> dict[str, Any]:
    result = await connection.request(
        "initialize",
        {"protocolVersion": PROTOCOL_VERSION, "capabilities": {}, "clientInfo": CLIENT_INFO},
    )
    await connection.notify("notifications/initialized")
    info = result.get("serverInfo")
    return info if isinstance(info, dict) else {}


def _start_failure(
    manifest: Manifest,
    returncode: int | None,
    exc: Exception,
    stderr_log: Path,
    offset: int,
) -> UpstreamUnavailable:
    if isinstance(exc, TimeoutError):
        reason = f"did not answer initialize within {manifest.startup_timeout:g} s"
    elif returncode is not None:
        reason = f"exited with code {returncode} at start"
    else:
        reason = f"failed to initialize: {exc}"
    said = last_stderr_line(stderr_log, since=offset)
    hint = f" (its stderr: {said})" if said else f" (see {stderr_log})"
    return UpstreamUnavailable(f"upstream '{manifest.name}' {reason}{hint}")
