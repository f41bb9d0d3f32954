"""tests/upstreams/fast_echo_server.py, the benchmarks' cheap stdio upstream, and the
benchmarks' raw HTTP client, both against a real gateway process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from fastmcp import Client

from tests.support import load_script, running_http_gateway
from tests.upstreams.conftest import WriteManifest

FAST_ECHO = Path(__file__).with_name("fast_echo_server.py")
LOADGEN = Path(__file__).parents[2] / "scripts" / "bench" / "loadgen.py"


def test_the_fast_echo_server_answers_each_method_it_offers_and_refuses_others() -> None:
    lines = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "x"}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "hi"}},
        },
        {"jsonrpc": "2.0", "id": 4, "method": "ping"},
        {"jsonrpc": "2.0", "id": 5, "method": "resources/list"},
    ]
    sent = "".join(json.dumps(line) + "\n" for line in lines) + "not json\n"
    done = subprocess.run(
        [sys.executable, str(FAST_ECHO)], input=sent, capture_output=True, text=True, timeout=20
    )
    replies = {reply["id"]: reply for reply in map(json.loads, done.stdout.splitlines())}

    assert sorted(replies) == [1, 2, 3, 4, 5]
    assert replies[1]["result"]["protocolVersion"] == "2025-11-25"
    assert [tool["name"] for tool in replies[2]["result"]["tools"]] == ["echo"]
    assert replies[3]["result"]["content"] == [{"type": "text", "text": "hi"}]
    assert replies[4]["result"] == {}
    assert replies[5]["error"]["code"] == -32601


@pytest.mark.anyio
@pytest.mark.processes
async def test_the_benchmark_client_gets_a_verified_proxied_echo_in_both_protocol_eras(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    loadgen = load_script(LOADGEN)
    write_manifest("fast", toolbox=False, command=sys.executable, args=[str(FAST_ECHO)])
    async with running_http_gateway(gateway_env, tmp_path) as (_, url, _):
        async with Client(url) as client:  # fastmcp's own client, as a cross-check
            assert (await client.call_tool("fast_echo", {"text": "hi"})).content[0].text == "hi"
        for era in loadgen.ERAS:
            good = loadgen.Call(url, "fast_echo", {"text": "bench"}, "bench", era)
            wrong = loadgen.Call(url, "fast_echo", {"text": "bench"}, "other", era)
            with anyio.fail_after(30):
                assert await anyio.to_thread.run_sync(loadgen.call_once, good) is None
                problem = await anyio.to_thread.run_sync(loadgen.call_once, wrong)
            assert problem is not None
            assert problem.startswith("wrong result")
