"""Shared by the benchmarks: a raw newline-JSON-RPC stdio peer, percentile helpers, and
starting/stopping/measuring the processes under test.

A synchronous peer keeps the client's own cost out of the measurement as far as possible.
"""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

GATEWAY = str(Path(sys.executable).with_name("archon-gateway"))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

INITIALIZE = {
    "protocolVersion": "2025-06-18",
    "capabilities": {},
    "clientInfo": {"name": "archon-bench", "version": "0"},
}


class StdioPeer:
    """An MCP server process (`argv`), initialized, spoken to one JSON line at a time."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], *, quiet: bool = True) -> None:
        self.process = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL if quiet else None,
            env=env,
        )
        self.next_id = 0
        self.call("initialize", INITIALIZE)
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def request(self, method: str, params: dict[str, Any]) -> int:
        """Send without waiting; returns the request id."""
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        return self.next_id

    def receive(self) -> dict[str, Any]:
        """The next reply; notifications (list_changed, progress) are skipped."""
        assert self.process.stdout is not None
        while True:
            reply: dict[str, Any] = json.loads(self.process.stdout.readline())
            if "id" in reply:
                return reply

    def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        request_id = self.request(method, params)
        reply = self.receive()
        assert reply.get("id") == request_id, reply
        assert "error" not in reply, reply
        return reply

    def tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        reply = self.call("tools/call", {"name": name, "arguments": arguments})
        assert not reply["result"].get("isError"), reply
        return reply

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=20)


def pct(values: list[float], q: float) -> float:
    """The q-quantile of durations in seconds, in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def machine() -> str:
    return (
        f"nproc={os.cpu_count()} python={platform.python_version()} "
        f"{platform.system()} {platform.machine()}"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def bench_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """This environment without the caller's ARCHON_ settings, plus the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHON_")}
    env["ARCHON_DATA_DIR"] = str(data_dir)
    env |= {f"ARCHON_{name.upper()}": value for name, value in settings.items()}
    return env


def write_manifest(folder: Path, name: str, argv: Sequence[str]) -> None:
    """An upstream manifest `<folder>/<name>.toml` that runs `argv`."""
    folder.mkdir(parents=True, exist_ok=True)
    command, *args = argv
    (folder / f"{name}.toml").write_text(
        f'name = "{name}"\ncommand = {json.dumps(command)}\nargs = {json.dumps(args)}\n'
    )


def start_http_gateway(
    work: Path, manifests: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    """`archon-gateway serve --transport http` on a free port; returns it and its MCP URL."""
    log = work / "gateway-http.stderr"
    gateway = subprocess.Popen(
        [
            GATEWAY,
            "serve",
            "--transport",
            "http",
            "--port",
            "0",
            "--log-level",
            "info",
            "--manifests",
            str(manifests),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and gateway.poll() is None:
        found = re.search(r"streamable HTTP at (\S+)", log.read_text(errors="replace"))
        if found:
            return gateway, found.group(1)
        time.sleep(0.05)
    gateway.kill()
    raise SystemExit(f"the gateway did not start within 60 s; see {log}")


def start_bare_http(work: Path, script: str) -> tuple[subprocess.Popen[bytes], str]:
    """A bare FastMCP server (`script`, which takes its port as argv[1]) and its MCP URL."""
    port = free_port()
    path = work / "bare_server.py"
    path.write_text(script)
    bare = subprocess.Popen(
        [sys.executable, str(path), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and bare.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return bare, f"http://127.0.0.1:{port}/mcp"
        except OSError:
            time.sleep(0.05)
    bare.kill()
    raise SystemExit("the bare FastMCP server did not start within 60 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def child_pids(pid: int) -> list[int]:
    """The direct children of `pid`."""
    try:
        import psutil

        return [child.pid for child in psutil.Process(pid).children()]
    except ImportError:
        pass
    except Exception:  # the process is gone
        return []
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def tree_pids(pid: int) -> list[int]:
    """`pid` and its descendants (the gateway and its upstreams)."""
    found = [pid]
    for parent in found:
        found.extend(child_pids(parent))
    return found


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds used so far by `pids` (those still alive)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total
