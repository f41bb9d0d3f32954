"""The lean path for proxied calls (gateway/lane) through a real stdio gateway: it answers
exactly as the normal path does, in both protocol eras, keeps the middleware's limits and
counts, relays progress and server-to-client requests, and honours cancellation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.support import (
    URL_PATTERN,
    RawStdioPeer,
    running_gateway,
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


def lane_calls(metrics: str) -> float:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith('archon_lane_calls_total{transport="stdio"}'):
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
    # Every listed tool's call but the unknown one took the lane; none did with it off.
    assert lane_calls(on_metrics) == 6
    assert lane_calls(off_metrics) == 0
    # The middleware counted them alike (tool and outcome), timeouts included.
    assert tool_call_samples(on_metrics) == tool_call_samples(off_metrics)
    assert tool_call_samples(on_metrics)[("toolbox_hang", "timeout")] == 1

    echo, add, refused, slow, asked, hung, modern, unknown = (r["reply"] for r in on)
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
