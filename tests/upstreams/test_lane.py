"""The lane for proxied calls (gateway/lane) through a real stdio gateway: it answers
exactly as the normal path does, in both protocol eras, keeps the middleware's limits and
counts, relays progress and server-to-client requests, and honours cancellation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastmcp import Client

from tests.support import (
    URL_PATTERN,
    RawStdioPeer,
    running_gateway,
    running_http_gateway,
    tool_call_samples,
    wait_for_text,
    wait_until,
)
from tests.upstreams.conftest import WriteManifest

pytestmark = [pytest.mark.anyio, pytest.mark.processes]

MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "archon-tests", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
ROOTS = [{"uri": "file:///work/lane-root", "name": "lane"}]


class Peer(RawStdioPeer):
    """A raw client that declares roots, answers the gateway's roots/list, and keeps the
    notifications that arrive before each reply."""

    async def call(self, name: str, arguments: dict[str, Any], **meta: Any) -> dict[str, Any]:
        params: dict[str, Any] = {"name": name, "arguments": arguments}
        if meta:
            params["_meta"] = meta
        return await self.exchange("tools/call", params)

    async def exchange(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        request_id = self._next_id
        await self.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        notes: list[dict[str, Any]] = []
        while True:
            message = await self.receive()
            if message.get("method") == "roots/list" and "id" in message:
                answer = {"jsonrpc": "2.0", "id": message["id"], "result": {"roots": ROOTS}}
                await self.send(answer)
            elif "id" not in message:
                if message.get("method") != "notifications/tools/list_changed":
                    notes.append(message)
            elif message["id"] == request_id:
                return {"reply": message, "notifications": notes}


async def script(peer: Peer) -> list[dict[str, Any]]:
    """The same calls, whichever path serves them."""
    handshake = {"protocolVersion": "2025-11-25", "clientInfo": {"name": "t", "version": "0"}}
    await peer.request("initialize", {**handshake, "capabilities": {"roots": {}}})
    await peer.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    await peer.request("tools/list")  # starts the upstream and lists its tools
    return [
        await peer.call("toolbox_echo", {"text": "ping"}),
        await peer.call("toolbox_add", {"a": 2, "b": 3}),
        await peer.call("toolbox_add", {"a": "x"}),  # the upstream refuses the arguments
        await peer.call("toolbox_slow", {"steps": 2, "delay": 0.01}, progressToken="p1"),
        await peer.call("toolbox_ask_client", {}),  # the upstream asks the client for roots
        await peer.call("toolbox_hang", {"tag": "limit"}),  # its limit is 0.5 s
        # A 2026-07-28 envelope on a handshake-era session: refused, whichever path.
        await peer.call("toolbox_echo", {"text": "modern"}, **MODERN_META),
        await peer.call("toolbox_nope", {}),  # unknown: the normal path's answer
        # Native tools that take only arguments run on the lane too.
        await peer.call("code_analyze", {"code": "import os\n\n\ndef f(x):\n    return x\n"}),
        await peer.call("code_analyze", {}),  # missing argument: FastMCP's validation error
        await peer.call("code_analyze", {"code": "fn main() {}", "language": "rust"}),
    ]


async def run_script(
    env: dict[str, str], cwd: Path, *, lane: bool
) -> tuple[list[dict[str, Any]], str]:
    env = {**env, "ARCHON_FAST_LANE": "true" if lane else "false"}
    args = ("--transport", "both", "--port", "0")
    async with running_gateway(env, cwd, *args) as (process, stderr):
        url = (await wait_for_text(stderr, URL_PATTERN)).group(1)
        with anyio.fail_after(60):
            replies = await script(Peer(process))
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(url.replace("/mcp", "/metrics"))).text
    return replies, metrics


def lane_calls(metrics: str, transport: str = "stdio") -> float:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith(f'archon_lane_calls_total{{transport="{transport}"}}'):
            total += float(line.split()[-1])
    return total


async def test_the_lane_answers_every_call_exactly_as_the_normal_path_does(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("toolbox", tool_timeouts={"hang": 0.5})
    (tmp_path / "on").mkdir()
    (tmp_path / "off").mkdir()
    on, on_metrics = await run_script(gateway_env, tmp_path / "on", lane=True)
    off, off_metrics = await run_script(gateway_env, tmp_path / "off", lane=False)

    assert on == off
    # Every call but the unknown tool's and the refused envelope took the lane; none did
    # with it off.
    assert lane_calls(on_metrics) == 9
    assert lane_calls(off_metrics) == 0
    # The middleware counted them alike (tool and outcome), timeouts included.
    assert tool_call_samples(on_metrics) == tool_call_samples(off_metrics)
    assert tool_call_samples(on_metrics)[("toolbox_hang", "timeout")] == 1

    echo, add, refused, slow, asked, hung, modern, unknown, *native = (r["reply"] for r in on)
    assert echo["result"]["structuredContent"] == {"result": "ping"}
    assert add["result"]["structuredContent"] == {"result": 5}
    assert refused["result"]["isError"] is True
    assert slow["result"]["structuredContent"] == {"result": "done after 2 steps"}
    progress = [n["params"] for n in on[3]["notifications"]]
    assert [(p["progressToken"], p["progress"], p["total"]) for p in progress] == [
        ("p1", 1, 2),
        ("p1", 2, 2),
    ]
    assert asked["result"]["structuredContent"]["roots"] == ["file:///work/lane-root"]
    assert hung["result"]["isError"] is True
    assert "timed out after 0.5 s" in hung["result"]["content"][0]["text"]
    assert modern["error"]["code"] == -32600
    assert unknown["result"]["isError"] is True
    analyzed, missing, wrong_language = (reply["result"] for reply in native)
    assert analyzed["isError"] is False
    assert analyzed["structuredContent"]["functions"][0]["name"] == "f"
    assert missing["isError"] is True
    assert wrong_language["isError"] is True


# The same calls over HTTP, in each era: upstream tools (results, refusals, a time limit),
# an unknown tool, and native tools with structured output (and a validation error).
HTTP_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("toolbox_echo", {"text": "ping"}),
    ("toolbox_add", {"a": 2, "b": 3}),
    ("toolbox_add", {"a": "x"}),
    ("toolbox_hang", {"tag": "limit"}),
    ("toolbox_nope", {}),
    ("code_analyze", {"code": "import os\n\n\ndef f(x):\n    return x\n"}),
    ("code_analyze", {}),
]
ACCEPT = {"Accept": "application/json, text/event-stream"}


def _message(reply: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC reply, whether it came as JSON or as the last event of an SSE stream."""
    if reply.headers["content-type"].startswith("application/json"):
        return dict(reply.json())
    data = [line[5:].strip() for line in reply.text.splitlines() if line.startswith("data:")]
    return dict(json.loads(data[-1]))


async def http_script(http: httpx.AsyncClient, url: str) -> list[dict[str, Any]]:
    replies = []
    for name, arguments in HTTP_CALLS:  # 2026-07-28: each request stands alone
        replies.append(_message(await http.post(url, **modern_post(name, arguments))))
    handshake = {"protocolVersion": "2025-11-25", "clientInfo": {"name": "t", "version": "0"}}
    initialize = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": handshake}
    initialize["params"] = {**handshake, "capabilities": {}}
    opened = await http.post(url, headers=ACCEPT, json=initialize)
    session = {
        **ACCEPT,
        "Mcp-Session-Id": opened.headers["mcp-session-id"],
        "Mcp-Protocol-Version": "2025-11-25",
    }
    ready = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    await http.post(url, headers=session, json=ready)
    # Answered after the session took the notification: the session is initialized now.
    await http.post(url, headers=session, json={"jsonrpc": "2.0", "id": 0, "method": "ping"})
    for number, (name, arguments) in enumerate(HTTP_CALLS, start=1):
        body = {
            "jsonrpc": "2.0",
            "id": number,
            "method": "tools/call",
            "params": {"name": name, "arguments": arguments},
        }
        replies.append(_message(await http.post(url, headers=session, json=body)))
    return replies


def _grown(before: str, after: str) -> tuple[dict[tuple[str, str], float], float]:
    """Tool-call samples and lane calls counted between two scrapes."""
    old = tool_call_samples(before)
    calls = {key: value - old.get(key, 0) for key, value in tool_call_samples(after).items()}
    lane = lane_calls(after, "streamable-http") - lane_calls(before, "streamable-http")
    return {key: value for key, value in calls.items() if value}, lane


async def run_http_script(
    env: dict[str, str], cwd: Path, *, lane: bool
) -> tuple[list[dict[str, Any]], dict[tuple[str, str], float], float]:
    env = {**env, "ARCHON_FAST_LANE": "true" if lane else "false"}
    async with running_http_gateway(env, cwd) as (_, url, _stderr):
        metrics_url = url.replace("/mcp", "/metrics")
        with anyio.fail_after(90):
            async with httpx.AsyncClient(timeout=30) as http:
                await wait_until(lambda: _echoes(http, url))  # the upstream is listed
                before = (await http.get(metrics_url)).text
                replies = await http_script(http, url)
                after = (await http.get(metrics_url)).text
    return replies, *_grown(before, after)


async def test_over_http_the_lane_answers_every_call_in_both_eras_as_the_normal_path_does(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("toolbox", tool_timeouts={"hang": 0.5})
    (tmp_path / "on").mkdir()
    (tmp_path / "off").mkdir()
    on, on_counted, on_lane = await run_http_script(gateway_env, tmp_path / "on", lane=True)
    off, off_counted, off_lane = await run_http_script(gateway_env, tmp_path / "off", lane=False)

    assert on == off
    # Both eras, every call but the unknown tool's took the lane; none did with it off.
    assert on_lane == 2 * (len(HTTP_CALLS) - 1)
    assert off_lane == 0
    # The pipeline counted them alike (tool and outcome), timeouts included.
    assert on_counted == off_counted
    assert on_counted["toolbox_hang", "timeout"] == 2
    modern, handshake = on[: len(HTTP_CALLS)], on[len(HTTP_CALLS) :]
    for era in (modern, handshake):
        echo, add, refused, hung, unknown, analyzed, missing = (r["result"] for r in era)
        assert echo["structuredContent"] == {"result": "ping"}
        assert add["structuredContent"] == {"result": 5}
        assert refused["isError"] is True
        assert "timed out after 0.5 s" in hung["content"][0]["text"]
        assert "Unknown tool" in unknown["content"][0]["text"]
        assert analyzed["isError"] is False
        assert analyzed["structuredContent"]["functions"][0]["name"] == "f"
        assert missing["isError"] is True
    assert modern[0]["result"]["resultType"] == "complete"
    assert "resultType" not in handshake[0]["result"]


async def test_a_lane_call_the_client_cancels_is_cancelled_upstream_and_never_answered(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    """Over a 2026-07-28 stdio stream (no handshake): results carry that era's stamp."""
    record = tmp_path / "record.txt"
    write_manifest("toolbox", env={"RECORD_FILE": str(record)})
    args = ("--transport", "both", "--port", "0")
    async with running_gateway(gateway_env, tmp_path, *args) as (process, stderr):
        url = (await wait_for_text(stderr, URL_PATTERN)).group(1)
        peer = Peer(process)
        with anyio.fail_after(60):
            await peer.exchange("server/discover", {"_meta": MODERN_META})
            first = await peer.call("toolbox_echo", {"text": "first"}, **MODERN_META)
            await peer.send(
                {
                    "jsonrpc": "2.0",
                    "id": "hang-1",
                    "method": "tools/call",
                    "params": {
                        "name": "toolbox_hang",
                        "arguments": {"tag": "lane"},
                        "_meta": MODERN_META,
                    },
                }
            )
            await wait_until(lambda: record.exists() and "started lane" in record.read_text())
            await peer.send(
                {
                    "jsonrpc": "2.0",
                    "method": "notifications/cancelled",
                    "params": {"requestId": "hang-1", "reason": "the user gave up"},
                }
            )
            await wait_until(lambda: "cancelled lane" in record.read_text())
            # The next reply is the next call's: the cancelled one is never answered.
            after = await peer.call("toolbox_echo", {"text": "after"}, **MODERN_META)
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(url.replace("/mcp", "/metrics"))).text
    assert lane_calls(metrics) == 2  # the hung call and the last (the first started it)
    for outcome, text in ((first, "first"), (after, "after")):
        result = outcome["reply"]["result"]
        assert result["structuredContent"] == {"result": text}
        assert result["resultType"] == "complete"
        assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "archon"
        assert result["_meta"]["fastmcp"] == {"wrap_result": True}  # the upstream's own


HTTP_PROFILES = """
[profiles.limited]
include = ["toolbox_*"]
exclude = ["toolbox_add"]
"""


def modern_post(name: str, arguments: dict[str, Any], **headers: str) -> dict[str, Any]:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments, "_meta": MODERN_META},
    }
    return {
        "json": body,
        "headers": {
            "Accept": "application/json, text/event-stream",
            "Mcp-Protocol-Version": "2026-07-28",
            "Mcp-Method": "tools/call",
            "Mcp-Name": name,
            **headers,
        },
    }


async def test_over_http_the_lane_answers_json_streams_progress_and_keeps_profiles(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("toolbox")
    (tmp_path / "archon.toml").write_text(HTTP_PROFILES)
    async with running_http_gateway(gateway_env, tmp_path) as (_, url, _stderr):
        metrics_url = url.replace("/mcp", "/metrics")
        with anyio.fail_after(60):
            async with httpx.AsyncClient(timeout=30) as http:

                async def listed() -> bool:
                    reply = await http.post(url, **modern_post("toolbox_echo", {"text": "?"}))
                    result = reply.json().get("result") or {}
                    return result.get("isError") is False

                await wait_until(listed)
                before = lane_calls((await http.get(metrics_url)).text, "streamable-http")

                # 2026-07-28: a plain JSON reply, stamped for its era.
                reply = await http.post(url, **modern_post("toolbox_echo", {"text": "json"}))
                assert reply.headers["content-type"] == "application/json"
                result = reply.json()["result"]
                assert result["structuredContent"] == {"result": "json"}
                assert result["resultType"] == "complete"

                # A profile that hides the tool: the lane does not serve it either.
                hidden = await http.post(url + "/limited", **modern_post("toolbox_add", {}))
                assert "Unknown tool" in hidden.text

                # Headers that disagree with the body are the SDK's to refuse.
                wrong = await http.post(
                    url, **modern_post("toolbox_echo", {"text": "x"}, **{"Mcp-Name": "other"})
                )
                assert wrong.status_code >= 400 or "error" in wrong.json()

                # Handshake era, a client asking for progress: an SSE reply carrying it.
                progress: list[tuple[float, float | None]] = []

                async def on_progress(done: float, total: float | None, _: str | None) -> None:
                    progress.append((done, total))

                async with Client(url, mode="legacy", progress_handler=on_progress) as client:
                    # A round trip first: the session is known to the gateway (its
                    # `initialized` notification handled) before the calls that must take the lane.
                    await client.ping()
                    slow = await client.call_tool("toolbox_slow", {"steps": 2, "delay": 0.01})
                    echoed = await client.call_tool("toolbox_echo", {"text": "legacy"})
                assert slow.data == "done after 2 steps"
                assert progress == [(1, 2), (2, 2)]
                assert echoed.data == "legacy"

                after = lane_calls((await http.get(metrics_url)).text, "streamable-http")
    assert after - before == 3  # json, slow and legacy echo; not the hidden or the refused


async def test_a_stateless_http_gateway_serves_both_eras_without_sessions(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("toolbox")
    env = {**gateway_env, "ARCHON_HTTP_STATELESS": "true"}
    async with running_http_gateway(env, tmp_path) as (_, url, _stderr):
        with anyio.fail_after(60):
            for mode in ("legacy", "auto"):
                async with Client(url, mode=mode) as client:
                    result = await client.call_tool("toolbox_echo", {"text": mode})
                assert result.data == mode


async def test_over_http_a_lane_call_ends_upstream_when_cancelled_or_abandoned(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    """Handshake era: `notifications/cancelled` POSTed on the session stops the call.
    2026-07-28: the client closing its connection does."""
    record = tmp_path / "record.txt"
    write_manifest("toolbox", env={"RECORD_FILE": str(record)})
    accept = {"Accept": "application/json, text/event-stream"}
    async with running_http_gateway(gateway_env, tmp_path) as (_, url, _stderr):
        metrics_url = url.replace("/mcp", "/metrics")
        with anyio.fail_after(60):
            async with httpx.AsyncClient(timeout=30) as http:
                await wait_until(
                    lambda: _echoes(http, url),  # the upstream is listed: the lane serves it
                )
                opened = await http.post(
                    url,
                    headers=accept,
                    json={
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "initialize",
                        "params": {
                            "protocolVersion": "2025-11-25",
                            "capabilities": {},
                            "clientInfo": {"name": "t", "version": "0"},
                        },
                    },
                )
                session = {**accept, "Mcp-Session-Id": opened.headers["mcp-session-id"]}
                await http.post(
                    url,
                    headers=session,
                    json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                )
                # Answered once the session took the notification (the lane serves it now).
                await http.post(
                    url, headers=session, json={"jsonrpc": "2.0", "id": 0, "method": "ping"}
                )
                hang = {
                    "jsonrpc": "2.0",
                    "id": 7,
                    "method": "tools/call",
                    "params": {"name": "toolbox_hang", "arguments": {"tag": "session"}},
                }
                async with anyio.create_task_group() as tasks:
                    replies: list[httpx.Response] = []

                    async def call() -> None:
                        replies.append(await http.post(url, headers=session, json=hang))

                    tasks.start_soon(call)
                    await wait_until(
                        lambda: record.exists() and "started session" in record.read_text()
                    )
                    await http.post(
                        url,
                        headers=session,
                        json={
                            "jsonrpc": "2.0",
                            "method": "notifications/cancelled",
                            "params": {"requestId": 7, "reason": "the user gave up"},
                        },
                    )
                    await wait_until(lambda: "cancelled session" in record.read_text())
                # Answered as the SDK's path answers a cancelled POST.
                assert '"code":-32800' in replies[0].text.replace(" ", "")

                # 2026-07-28: the client gives up on the request by closing its connection.
                body = modern_post("toolbox_hang", {"tag": "gone"})
                async with (
                    httpx.AsyncClient(timeout=30) as leaving,
                    anyio.create_task_group() as tasks,
                ):
                    tasks.start_soon(lambda: leaving.post(url, **body))
                    await wait_until(lambda: "started gone" in record.read_text())
                    tasks.cancel_scope.cancel()
                await wait_until(lambda: "cancelled gone" in record.read_text())

                async def both_counted() -> bool:
                    # The lane counts a call when it has finished unwinding, which may come
                    # just after the upstream saw the cancel.
                    metrics = (await http.get(metrics_url)).text
                    return lane_calls(metrics, "streamable-http") >= 2

                await wait_until(both_counted)


async def _echoes(http: httpx.AsyncClient, url: str) -> bool:
    reply = await http.post(url, **modern_post("toolbox_echo", {"text": "?"}))
    result = reply.json().get("result") or {}
    return result.get("isError") is False


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""
