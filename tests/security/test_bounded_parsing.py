"""Every parser of outside input bounds size and depth and answers a clear error naming the
limit; the process stays up and serves the next request."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest

from archon_gateway.core.bounded_json import MAX_JSON_DEPTH, JsonRejected, parse_json
from archon_gateway.core.config_files import read_json, read_toml
from archon_gateway.core.errors import UnusableFile
from tests.support import INITIALIZE, RawStdioPeer, running_gateway, wait_for_text

DEEP = b"[" * 1000 + b"]" * 1000


def test_the_bounded_parser_names_the_depth_and_size_limits() -> None:
    assert parse_json(b"[" * 10 + b"]" * 10, max_bytes=100) == [[[[[[[[[[]]]]]]]]]]
    with pytest.raises(JsonRejected, match=f"nested deeper than the {MAX_JSON_DEPTH}-level"):
        parse_json(DEEP, max_bytes=10_000)
    with pytest.raises(JsonRejected, match="2001 bytes, over the 2000-byte limit"):
        parse_json(b" " * 2001, max_bytes=2000)
    for bad in (b"\xff\xfe", b'"\\ud800"', b"not json"):
        with pytest.raises(JsonRejected, match="is not valid JSON"):
            parse_json(bad, max_bytes=100)


def test_deep_or_oversized_config_files_are_refused_naming_the_problem(tmp_path: Path) -> None:
    deep_json, deep_toml, huge = (tmp_path / n for n in ("d.json", "d.toml", "h.json"))
    deep_json.write_bytes(DEEP)
    deep_toml.write_text("a = " + "[" * 5000 + "]" * 5000)
    huge.write_bytes(b" " * (5 * 1024 * 1024))
    with pytest.raises(UnusableFile, match="depth limit"):
        read_json(deep_json)
    with pytest.raises(UnusableFile, match="nested too deeply"):
        read_toml(deep_toml)
    with pytest.raises(UnusableFile, match="byte limit for a config file"):
        read_json(huge)


@pytest.mark.anyio
@pytest.mark.processes
async def test_a_deep_stdio_line_is_answered_and_both_transports_keep_serving(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    args = ("--transport", "both", "--port", "0")
    async with running_gateway(gateway_env, tmp_path, *args) as (process, stderr):
        url = (await wait_for_text(stderr, r"streamable HTTP at (http://\S+)/mcp")).group(1)
        peer = RawStdioPeer(process)
        with anyio.fail_after(30):
            await peer.send_raw(DEEP + b"\n")
            reply = await peer.receive()
            assert reply["error"]["code"] == -32700
            assert "nested deeper than the 200-level JSON depth limit" in reply["error"]["message"]
            # A deep request whose id shows is answered with its id.
            await peer.send_raw(
                b'{"jsonrpc":"2.0","id":41,"method":"ping","params":' + DEEP + b"}\n"
            )
            assert (await peer.receive())["id"] == 41
            for junk in (b"\xff\xfe\x80\n", b'{"jsonrpc":"2.0","id":42,"method":"x\\ud800"}\n'):
                await peer.send_raw(junk)
                assert (await peer.receive())["error"]["code"] in (-32700, -32600)
            await peer.initialize()
            assert "result" in await peer.request("tools/list")
            async with httpx.AsyncClient() as web:
                assert (await web.get(url + "/health")).status_code == 200
        assert process.returncode is None


@pytest.mark.anyio
@pytest.mark.processes
async def test_bad_ids_and_requests_before_initialize_are_answered_clearly_on_stdio(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    async with running_gateway(gateway_env, tmp_path) as (process, _stderr):
        peer = RawStdioPeer(process)
        with anyio.fail_after(30):
            before = await peer.request("tools/list")
            assert before["error"]["code"] == -32600
            assert "not initialized" in before["error"]["message"]
            for bad_id in ('{"a": 1}', "1.5", "true", "null"):
                line = f'{{"jsonrpc":"2.0","id":{bad_id},"method":"tools/list"}}\n'
                await peer.send_raw(line.encode())
                reply = await peer.receive()
                assert reply["error"] == {
                    "code": -32600,
                    "message": "Invalid Request: id must be a string or an integer",
                }, bad_id
            await peer.initialize()
            assert "result" in await peer.request("tools/list")


@pytest.mark.anyio
@pytest.mark.processes
async def test_http_bodies_are_bounded_and_bad_ids_answered(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    gateway_env["ARCHON_MAX_MESSAGE_BYTES"] = str(1024 * 1024)
    args = ("--transport", "http", "--port", "0")
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    async with running_gateway(gateway_env, tmp_path, *args) as (_process, stderr):
        url = (await wait_for_text(stderr, r"streamable HTTP at (http://\S+/mcp)")).group(1)
        async with httpx.AsyncClient(headers=headers, timeout=30) as web:
            deep = await web.post(url, content=DEEP)
            assert deep.status_code == 400
            assert "200-level JSON depth limit" in deep.json()["error"]["message"]
            huge = await web.post(url, content=b"[" + b" " * (2 * 1024 * 1024) + b"]")
            assert huge.status_code == 413
            assert "1048576-byte limit" in huge.json()["error"]["message"]
            for bad_id in ({"a": 1}, 1.5, True, None):
                body = {"jsonrpc": "2.0", "id": bad_id, "method": "initialize"}
                answer = await web.post(url, json={**body, "params": INITIALIZE})
                assert answer.status_code == 400, bad_id
                assert answer.json()["error"]["code"] == -32600
            good = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INITIALIZE}
            assert (await web.post(url, json=good)).status_code == 200
