"""HTTP load generators for MCP tool calls that are not themselves the bottleneck.

`wrk` (with a generated Lua script) when it is on PATH, else several OS processes, each
running blocking `http.client` keep-alive loops in threads. Both speak the two MCP
protocol eras, accept `application/json` and `text/event-stream` replies, verify every
reply (an error or a wrong result counts as an error, never as a call), and report their
own CPU time.

Eras:
- `2026-07-28`: session-less; every POST carries the headers and `_meta` that fastmcp
  4.2.3's `Client` sends by default (captured from the wire).
- `2025-11-25`: handshake; `initialize` + `notifications/initialized` once per
  connection, then `Mcp-Session-Id` on every call.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

SESSIONLESS = "2026-07-28"
HANDSHAKE = "2025-11-25"
ERAS = (SESSIONLESS, HANDSHAKE)
CLIENT_INFO = {"name": "archon-bench", "version": "0"}


@dataclass(frozen=True)
class Call:
    """One tool call to repeat against `url`; a reply is correct when it is a result
    (not `isError`) whose text contains `marker`."""

    url: str
    tool: str
    arguments: dict[str, Any]
    marker: str
    era: str

    def body(self, request_id: int = 1) -> bytes:
        meta: dict[str, Any] = {"progressToken": request_id}
        if self.era == SESSIONLESS:
            meta = {
                f"io.modelcontextprotocol/{key}": value
                for key, value in (
                    ("protocolVersion", SESSIONLESS),
                    ("clientInfo", CLIENT_INFO),
                    ("clientCapabilities", {}),
                    ("logLevel", "debug"),
                )
            } | meta
        params = {"name": self.tool, "arguments": self.arguments, "_meta": meta}
        message = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}
        return json.dumps(message, separators=(",", ":")).encode()

    def headers(self, session: str | None) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": self.era,
        }
        if self.era == SESSIONLESS:
            headers |= {"Mcp-Method": "tools/call", "Mcp-Name": self.tool}
        if session is not None:
            headers["Mcp-Session-Id"] = session
        return headers


@dataclass
class Measured:
    calls: int = 0  # correct replies inside the measuring window
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    seconds: float = 0.0
    client_cpu_s: float = 0.0
    server_cpu_s: float = 0.0  # filled in by the caller, who knows the server's processes
    generator: str = ""

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    def finish(self) -> Measured:
        if self.latencies_ms:
            ordered = sorted(self.latencies_ms)
            last = len(ordered) - 1
            self.p50_ms = ordered[round(0.5 * last)]
            self.p99_ms = ordered[round(0.99 * last)]
            self.latencies_ms = []
        return self


def reply_message(content_type: str, body: bytes) -> dict[str, Any]:
    """The JSON-RPC reply in a response body, plain JSON or SSE `data:` lines."""
    if "text/event-stream" in content_type:
        for line in body.decode().splitlines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if isinstance(message, dict) and "id" in message:
                    return message
        raise ValueError("no JSON-RPC reply in the event stream")
    message = json.loads(body)
    if not isinstance(message, dict):
        raise ValueError("the reply is not a JSON object")
    return message


def problem(call: Call, status: int, content_type: str, body: bytes) -> str | None:
    """Why this response is not a correct result of `call`, or None when it is."""
    if status != 200:
        return f"HTTP {status}: {body[:120]!r}"
    try:
        message = reply_message(content_type, body)
    except ValueError as exc:
        return f"unreadable reply ({exc}): {body[:120]!r}"
    result = message.get("result")
    if not isinstance(result, dict):
        return f"not a result: {str(message)[:160]}"
    text = " ".join(str(block.get("text", "")) for block in result.get("content") or [])
    if result.get("isError") or call.marker not in text:
        return f"wrong result: {text[:160]}"
    return None


# --- the multi-process Python generator ------------------------------------------------


def connect(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)


def post(
    conn: http.client.HTTPConnection, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, str, bytes, str | None]:
    conn.request("POST", path, body, headers)
    response = conn.getresponse()
    data = response.read()
    content_type = response.getheader("Content-Type") or ""
    return response.status, content_type, data, response.getheader("Mcp-Session-Id")


def open_session(conn: http.client.HTTPConnection, path: str) -> str:
    """A handshake-era session on `conn`: initialize, then notifications/initialized."""
    initialize = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {"protocolVersion": HANDSHAKE, "capabilities": {}, "clientInfo": CLIENT_INFO},
    }
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    status, _, body, session = post(conn, path, json.dumps(initialize).encode(), headers)
    if status != 200 or session is None:
        raise RuntimeError(f"initialize failed: HTTP {status} {body[:200]!r}")
    headers |= {"Mcp-Session-Id": session, "MCP-Protocol-Version": HANDSHAKE}
    done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    status, _, body, _ = post(conn, path, json.dumps(done).encode(), headers)
    if status not in (200, 202):
        raise RuntimeError(f"notifications/initialized failed: HTTP {status} {body[:200]!r}")
    return session


def close_session(conn: http.client.HTTPConnection, path: str, session: str) -> None:
    conn.request("DELETE", path, headers={"Mcp-Session-Id": session})
    conn.getresponse().read()


def connection_loop(call: Call, start_at: float, end_at: float, into: Measured) -> None:
    """One keep-alive connection calling as fast as replies come, between two wall times."""
    parts = urlsplit(call.url)
    conn = connect(call.url)
    session = open_session(conn, parts.path) if call.era == HANDSHAKE else None
    headers = call.headers(session)
    request_id = 0
    while time.time() < start_at:
        time.sleep(min(0.01, max(0.0, start_at - time.time())))
    calls, errors, latencies, samples = 0, 0, [], []
    while (now := time.time()) < end_at:
        request_id += 1
        started = time.perf_counter()
        try:
            reply = post(conn, parts.path, call.body(request_id), headers)
            wrong = problem(call, *reply[:3])
        except (OSError, http.client.HTTPException) as exc:
            wrong = f"client: {type(exc).__name__}: {exc}"
            conn.close()
        took = time.perf_counter() - started
        if wrong is None:
            calls += 1
            latencies.append(took * 1000)
        else:
            errors += 1
            if len(samples) < 3:
                samples.append(wrong)
    del now
    if session is not None:
        with contextlib.suppress(OSError, http.client.HTTPException):
            close_session(conn, parts.path, session)
    conn.close()
    with LOCK:
        into.calls += calls
        into.errors += errors
        into.latencies_ms.extend(latencies)
        into.error_samples.extend(samples[: 3 - len(into.error_samples)])


LOCK = threading.Lock()


def process_worker(call: Call, connections: int, start_at: float, end_at: float) -> Measured:
    """One OS process of the generator: `connections` threads, one connection each."""
    measured = Measured()
    cpu = time.process_time()
    threads = [
        threading.Thread(target=connection_loop, args=(call, start_at, end_at, measured))
        for _ in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    measured.client_cpu_s = time.process_time() - cpu
    return measured


def python_load(call: Call, connections: int, seconds: float, processes: int) -> Measured:
    processes = max(1, min(processes, connections))
    shares = [connections // processes + (i < connections % processes) for i in range(processes)]
    start_at = time.time() + 1.0  # every connection (and session) set up first
    end_at = start_at + seconds
    total = Measured(generator=f"python x{processes} processes")
    with ProcessPoolExecutor(processes, mp_context=get_context("fork")) as pool:
        futures = [pool.submit(process_worker, call, n, start_at, end_at) for n in shares]
        parts = [future.result() for future in futures]
    for part in parts:
        total.calls += part.calls
        total.errors += part.errors
        total.latencies_ms.extend(part.latencies_ms)
        total.error_samples.extend(part.error_samples[: 3 - len(total.error_samples)])
        total.client_cpu_s += part.client_cpu_s
    total.seconds = seconds
    return total.finish()


def call_once(call: Call) -> str | None:
    """One call on a fresh connection (and session): why it was wrong, or None."""
    parts = urlsplit(call.url)
    conn = connect(call.url)
    try:
        session = open_session(conn, parts.path) if call.era == HANDSHAKE else None
        wrong = problem(call, *post(conn, parts.path, call.body(), call.headers(session))[:3])
        if session is not None:
            close_session(conn, parts.path, session)
        return wrong
    except (OSError, http.client.HTTPException, RuntimeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()


# --- wrk -------------------------------------------------------------------------------

WRK_SCRIPT = """
local body = %(body)s
local headers = %(headers)s
local sessions = %(sessions)s
local marker = %(marker)s
local threads = {}
local turn = 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  good = 0
  bad = 0
  sample = ""
end

function request()
  if #sessions > 0 then
    turn = turn + 1
    headers["Mcp-Session-Id"] = sessions[(turn %% #sessions) + 1]
  end
  return wrk.format("POST", nil, headers, body)
end

function response(status, hdrs, reply)
  if status == 200 and string.find(reply, marker, 1, true)
      and string.find(reply, '"isError":false', 1, true) then
    good = good + 1
  else
    bad = bad + 1
    if sample == "" then
      sample = string.gsub(status .. " " .. string.sub(reply, 1, 160), '[%%c"\\\\]', " ")
    end
  end
end

function done(summary, latency, requests)
  local g, b, s = 0, 0, ""
  for _, thread in ipairs(threads) do
    g = g + thread:get("good")
    b = b + thread:get("bad")
    if s == "" then s = thread:get("sample") end
  end
  local e = summary.errors
  io.write(string.format(
    'WRK-RESULT {"good":%%d,"bad":%%d,"socket_errors":%%d,"duration_us":%%d,' ..
    '"p50_us":%%d,"p99_us":%%d,"sample":"%%s"}\\n',
    g, b, e.connect + e.read + e.write + e.timeout, summary.duration,
    latency:percentile(50), latency:percentile(99), s))
end
"""


def lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def lua_table(values: dict[str, str] | list[str]) -> str:
    if isinstance(values, list):
        return "{" + ", ".join(lua_string(v) for v in values) + "}"
    pairs = (f"[ {lua_string(k)} ] = {lua_string(v)}" for k, v in values.items())
    return "{" + ", ".join(pairs) + "}"


def wrk_load(call: Call, connections: int, seconds: float) -> Measured:
    """`wrk` on `connections` connections; handshake-era calls rotate over as many
    sessions, opened beforehand (sessions belong to no connection in streamable HTTP)."""
    parts = urlsplit(call.url)
    sessions: list[str] = []
    if call.era == HANDSHAKE:
        with contextlib.closing(connect(call.url)) as conn:
            sessions = [open_session(conn, parts.path) for _ in range(connections)]
    headers = call.headers(None)
    script = WRK_SCRIPT % {
        "body": lua_string(call.body().decode()),
        "headers": lua_table(headers),
        "sessions": lua_table(sessions),
        "marker": lua_string(call.marker),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    threads = min(connections, os.cpu_count() or 1)
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
    argv += ["--timeout", "10s", "-s", handle.name, call.url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        run = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    finally:
        Path(handle.name).unlink()
        with contextlib.closing(connect(call.url)) as conn:  # the first one idled out
            for session in sessions:
                close_session(conn, parts.path, session)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    found = [line for line in run.stdout.splitlines() if line.startswith("WRK-RESULT ")]
    if run.returncode != 0 or not found:
        raise RuntimeError(f"wrk failed ({run.returncode}): {run.stderr.strip()[:300]}")
    raw = json.loads(found[0].removeprefix("WRK-RESULT "))
    measured = Measured(
        calls=raw["good"],
        errors=raw["bad"] + raw["socket_errors"],
        error_samples=[raw["sample"]] if raw["sample"] else [],
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        seconds=raw["duration_us"] / 1e6,
        client_cpu_s=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        generator=f"wrk -t{threads}",
    )
    return measured


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def load(call: Call, connections: int, seconds: float, *, generator: str = "auto") -> Measured:
    """Drive `call` over `connections` keep-alive connections for `seconds`."""
    if generator == "wrk" or (generator == "auto" and have_wrk()):
        return wrk_load(call, connections, seconds)
    return python_load(call, connections, seconds, processes=min(connections, 4))
