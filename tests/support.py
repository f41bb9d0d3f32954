"""Helpers for tests that run the real `archon-gateway` command as a subprocess."""

from __future__ import annotations

import fcntl
import importlib.util
import inspect
import json
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import mcp_types as mt
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import ToolResult
from prometheus_client.parser import text_string_to_metric_families


def gateway_command() -> str:
    """The console script installed next to this interpreter (the project's own venv)."""
    beside = Path(sys.executable).with_name("archon-gateway")
    if beside.exists():
        return str(beside)
    found = shutil.which("archon-gateway")
    assert found, "archon-gateway is not installed; run `pip install -e .[dev]`"
    return found


@asynccontextmanager
async def running_gateway(
    env: dict[str, str], cwd: Path, *args: str, stdin: int = subprocess.PIPE
) -> AsyncIterator[tuple[Process, Path]]:
    """`archon-gateway serve ARGS` as a real process; yields it and its stderr log file.
    Stopped on exit if the test did not stop it: gracefully first, since its upstreams run
    in their own process groups and would outlive a killed gateway."""
    stderr_path = cwd / "gateway.stderr"
    with stderr_path.open("wb") as stderr:
        process = await anyio.open_process(
            [gateway_command(), "serve", *args],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
            cwd=cwd,
        )
        async with process:
            try:
                yield process, stderr_path
            finally:
                with anyio.CancelScope(shield=True):
                    await stop_gracefully(process)


async def stop_gracefully(process: Process, within: float = 10) -> None:
    """SIGTERM (the gateway stops its upstreams), then SIGKILL if it takes too long."""
    if process.returncode is not None:
        return
    process.terminate()
    with anyio.move_on_after(within):
        await process.wait()
    if process.returncode is None:
        process.kill()


@asynccontextmanager
async def running_http_gateway(
    env: dict[str, str], cwd: Path
) -> AsyncIterator[tuple[Process, str, Path]]:
    """An HTTP-only gateway on a free port; yields the process, its MCP URL and stderr log."""
    args = ("--transport", "http", "--port", "0")
    async with running_gateway(env, cwd, *args, stdin=subprocess.DEVNULL) as (process, stderr):
        url = (await wait_for_text(stderr, URL_PATTERN)).group(1)
        yield process, url, stderr


def admin_headers(env: dict[str, str]) -> dict[str, str]:
    """X-Service-Auth with the local admin token a gateway started with `env` wrote into
    its data dir (written before it listens): admin tools over HTTP need it."""
    token = (Path(env["ARCHON_DATA_DIR"]) / "admin-token").read_text().strip()
    return {"X-Service-Auth": token}


INITIALIZE = {
    "protocolVersion": "2025-06-18",
    "capabilities": {},
    "clientInfo": {"name": "archon-tests", "version": "0"},
}


@dataclass
class RawStdioPeer:
    """Speaks newline-delimited JSON-RPC to a gateway process byte for byte, so tests can
    send what a real client library never would (garbage, oversized lines)."""

    process: Process
    _reader: BufferedByteReceiveStream = field(init=False)
    _next_id: int = field(init=False, default=100)

    def __post_init__(self) -> None:
        assert self.process.stdout is not None
        self._reader = BufferedByteReceiveStream(self.process.stdout)

    async def send_raw(self, data: bytes) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(data)

    async def send(self, message: dict[str, Any]) -> None:
        await self.send_raw(json.dumps(message).encode() + b"\n")

    async def receive(self) -> dict[str, Any]:
        line = await self._reader.receive_until(b"\n", 64 * 1024 * 1024)
        decoded: dict[str, Any] = json.loads(line)
        return decoded

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            message["params"] = params
        await self.send(message)
        reply = await self.receive()
        while "id" not in reply:  # a notification (list_changed, progress) came first
            reply = await self.receive()
        assert reply.get("id") == self._next_id, reply
        return reply

    async def initialize(self) -> dict[str, Any]:
        reply = await self.request("initialize", INITIALIZE)
        await self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return reply


async def wait_for_text(path: Path, pattern: str, within: float = 20) -> re.Match[str]:
    """Poll a file (bounded) until `pattern` appears in it; a missing file counts as empty."""
    with anyio.fail_after(within):
        while True:
            try:
                text = await anyio.Path(path).read_text(errors="replace")
            except FileNotFoundError:
                text = ""
            found = re.search(pattern, text)
            if found:
                return found
            await anyio.sleep(0.05)


async def wait_until(
    check: Callable[[], bool | Awaitable[bool]], within: float = 20, every: float = 0.05
) -> None:
    """Poll `check` (plain or async) until it is true; TimeoutError after `within` seconds.
    For state held by another process or thread, where there is no event to wait on."""
    with anyio.fail_after(within):
        while True:
            done = check()
            if inspect.isawaitable(done):
                done = await done
            if done:
                return
            await anyio.sleep(every)


@contextmanager
def refusing_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections for the whole block: held bound but not
    listening, so no process running beside this test can take it meanwhile. A server
    that sets SO_REUSEPORT (the Qdrant stand-in) may still listen on it, and while it does,
    connections reach that server."""
    with socket.socket() as held:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        held.bind(("127.0.0.1", 0))
        port: int = held.getsockname()[1]
        yield port


URL_PATTERN = r"serving MCP over streamable HTTP at (http://\S+)"


def tool_call_samples(metrics_text: str) -> dict[tuple[str, str], float]:
    """`archon_tool_calls_total` from Prometheus text, keyed by (tool, outcome)."""
    return {
        (sample.labels["tool"], sample.labels["outcome"]): sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == "archon_tool_calls_total"
    }


class CallErrors(Middleware):
    """Records what tool calls raise, as a middleware outside them sees it (`seen`)."""

    def __init__(self) -> None:
        self.seen: list[BaseException] = []

    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        try:
            return await call_next(context)
        except Exception as exc:
            self.seen.append(exc)
            raise


def npm_installed(node_dir: Path, wanted: tuple[str, ...]) -> Path:
    """`node_dir`'s npm packages, installed once from its lockfile (`npm ci`); returns its
    node_modules/.bin. Skips the test when npm is missing or the install fails (offline,
    no cache). Test workers run side by side: one installs, the others wait for it."""
    bin_dir = node_dir / "node_modules" / ".bin"
    with (node_dir / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not all((bin_dir / name).exists() for name in wanted):
            npm = shutil.which("npm")
            if npm is None:
                pytest.skip(f"npm is not installed; the tests using {node_dir.name} need Node.js")
            command = [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(node_dir)]
            done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
            if done.returncode != 0:
                pytest.skip(f"npm ci failed in {node_dir}: {done.stderr.strip()[-300:]}")
    return bin_dir


def lane_call_samples(metrics_text: str) -> dict[str, float]:
    """`archon_lane_calls_total` (proxied calls the lane served) from Prometheus text, by
    transport."""
    return {
        sample.labels["transport"]: sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == "archon_lane_calls_total"
    }


def load_script(path: Path) -> ModuleType:
    """A script that is not in a package (scripts/bench/*.py) loaded as a module."""
    spec = importlib.util.spec_from_file_location(f"script_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@asynccontextmanager
async def served_over_http(server: Any, limits: Any = None) -> AsyncIterator[str]:
    """`server` (a built gateway) served in process over real HTTP on 127.0.0.1, port 0
    (the real one is chosen at bind), with `limits` (serve_loop.HttpLimits); yields its base
    URL once /health answers, and stops it on exit."""
    import httpx

    from archon_gateway.gateway.serve_loop import bind_listener, http_url, serve

    listener = bind_listener("127.0.0.1", 0)
    base = http_url(listener, "")
    stop = anyio.Event()

    async def healthy(web: httpx.AsyncClient) -> bool:
        try:
            return (await web.get(base + "/health")).status_code == 200
        except httpx.TransportError:
            return False

    async with anyio.create_task_group() as tg:
        tg.start_soon(
            lambda: serve(
                server,
                stdio=False,
                listener=listener,
                shutdown_grace=0.2,
                handle_signals=False,
                stop=stop,
                http_limits=limits,
            )
        )
        try:
            async with httpx.AsyncClient(timeout=10, trust_env=False) as web:
                await wait_until(lambda: healthy(web), within=20)
            yield base
        finally:
            stop.set()
