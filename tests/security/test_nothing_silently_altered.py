"""Nothing the client sends is silently altered: a non-finite number (which the SDK would
forward as null) is refused on stdio and HTTP with the same JSON-RPC error naming the
field, with the fast lane on and off; and one limit, `max_message_bytes`, governs every
path: a body over the SDK's own 4 MiB limit but under it reaches the tool, and one over it
gets a JSON-RPC error naming the setting and the size. Real gateway processes, real HTTP on
127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastmcp import Client

from archon_gateway.core.bounded_json import JsonRejected, parse_json
from tests.support import URL_PATTERN, RawStdioPeer, running_gateway, wait_for_text, wait_until
from tests.upstreams.conftest import WriteManifest

MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "archon-tests", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
HTTP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "Mcp-Protocol-Version": "2026-07-28",
    "Mcp-Method": "tools/call",
    "Mcp-Name": "toolbox_echo",
}
NON_FINITE = (
    "Parse error: message has a non-finite number at params.arguments.text: NaN, Infinity "
    "and numbers beyond ±1.8e308 are not JSON and are not allowed"
)
# What Python's json and the SDK's parser take and turn into inf/nan, then null on the wire.
LITERALS = ("1e400", "-1e400", "NaN", "Infinity", "-Infinity")
MiB = 1024 * 1024


def echo_call(request_id: int, text_literal: str, *, modern: bool = True) -> bytes:
    """A toolbox_echo call whose `text` argument is the raw JSON text `text_literal`, in
    the 2026-07-28 envelope (`modern`) or for a handshake-era session."""
    params: dict[str, Any] = {"name": "toolbox_echo", "arguments": {"text": "@"}}
    if modern:
        params["_meta"] = MODERN_META
    call = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}
    return json.dumps(call).replace('"@"', text_literal).encode()


async def reply_on(peer: RawStdioPeer) -> dict[str, Any]:
    """The next reply on stdio, past notifications (list_changed as the upstream starts)."""
    message = await peer.receive()
    while "id" not in message:
        message = await peer.receive()
    return message


def test_the_one_parser_refuses_non_finite_numbers_naming_the_field_and_alters_nothing() -> None:
    for literal in (*LITERALS, "1E+400", "1" + "0" * 400 + ".0"):
        with pytest.raises(JsonRejected, match=r"non-finite number at a\[1\]\.b") as refused:
            parse_json(f'{{"a": [0, {{"b": {literal}}}]}}', max_bytes=10_000)
        assert refused.value.limit == "non_finite"
    # In numeric arrays too, whatever their sum does (overflows, or meets a huge integer).
    for array in ("[1.0, 2, 1e400]", "[1e308, 1e308, NaN]", f"[1, {10**400}, -1e400]"):
        with pytest.raises(JsonRejected, match=r"non-finite number at \[2\]"):
            parse_json(array, max_bytes=10_000)
    # Finite numbers, huge integers and strings that merely look like numbers pass unchanged.
    kept = {
        "big": 1.7e308,
        "tiny": 5e-324,
        "int": 10**400,
        "text": "1e400 NaN Infinity",
        "sum_overflows": [1.7e308, 1.7e308],
        "mixed": [1.5, 10**400, True, "x", {"y": [0.5]}],
    }
    assert parse_json(json.dumps(kept), max_bytes=10_000) == kept


@pytest.mark.anyio
@pytest.mark.processes
@pytest.mark.parametrize("lane", ["true", "false"])
async def test_a_non_finite_number_gets_the_same_error_naming_the_field_on_stdio_and_http(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest, lane: str
) -> None:
    write_manifest("toolbox")
    env = gateway_env | {"ARCHON_FAST_LANE": lane}
    args = ("--transport", "both", "--port", "0")
    with anyio.fail_after(90):
        async with (
            running_gateway(env, tmp_path, *args) as (process, stderr),
            httpx.AsyncClient(headers=HTTP_HEADERS, timeout=30) as web,
        ):
            url = (await wait_for_text(stderr, URL_PATTERN)).group(1)
            peer = RawStdioPeer(process)
            await peer.initialize()

            async def echo_listed() -> bool:
                reply = await web.post(url, content=echo_call(1, '"ready"'))
                return reply.json().get("result", {}).get("isError") is False

            await wait_until(echo_listed)
            for n, literal in enumerate(LITERALS, start=10):
                await peer.send_raw(echo_call(n, literal, modern=False) + b"\n")
                on_stdio = await reply_on(peer)
                on_http = await web.post(url, content=echo_call(n, literal))
                expected = {"code": -32700, "message": NON_FINITE}
                assert on_stdio == {"jsonrpc": "2.0", "id": n, "error": expected}, literal
                assert on_http.status_code == 400, literal
                assert on_http.json() == on_stdio, literal

            # Both doors go on serving, and a finite value arrives as sent.
            echoed = await peer.request(
                "tools/call", {"name": "toolbox_echo", "arguments": {"text": "still here"}}
            )
            assert echoed["result"]["structuredContent"] == {"result": "still here"}
            reply = await web.post(url, content=echo_call(99, '"still here"'))
            assert reply.json()["result"]["structuredContent"] == {"result": "still here"}


@pytest.mark.anyio
@pytest.mark.processes
async def test_an_upstream_reply_with_a_non_finite_number_fails_its_call_at_once(
    gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    # A NaN reply was skipped as garbage (the call waited for its time limit); a 1e400 one
    # reached the client as null.
    write_manifest("hostile", faulty="hostile", tool_timeouts={"non_finite": 60})
    with anyio.fail_after(50):
        async with running_gateway(gateway_env, tmp_path) as (process, _):
            peer = RawStdioPeer(process)
            await peer.initialize()
            for literal in ("NaN", "1e400", "-Infinity"):
                arguments = {"literal": literal}
                reply = await peer.request(
                    "tools/call", {"name": "hostile_non_finite", "arguments": arguments}
                )
                result = reply["result"]
                assert result["isError"] is True, literal
                assert (
                    "upstream 'hostile' sent a reply the gateway cannot read: reply has a "
                    "non-finite number at result.structuredContent.value"
                ) in result["content"][0]["text"], literal
            echoed = await peer.request(
                "tools/call", {"name": "hostile_echo", "arguments": {"text": "still here"}}
            )
            assert echoed["result"]["content"][0]["text"] == "still here"


def pattern(i: int) -> dict[str, Any]:
    return {"id": f"big-{i}", "name": f"big pattern {i}", "text": f"{i} " + "y" * 199_990}


@pytest.mark.anyio
@pytest.mark.processes
async def test_max_message_bytes_is_the_one_body_limit_on_every_path(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    env = gateway_env | {"ARCHON_MAX_MESSAGE_BYTES": str(6 * MiB)}
    args = ("--transport", "both", "--port", "0")
    # 26 patterns of 200,000 characters: a ≈5.2 MB call, over the SDK's own 4 MiB limit.
    patterns = [pattern(i) for i in range(26)]
    pad = b"z" * (7 * MiB)
    too_big = b'{"jsonrpc":"2.0","id":7,"method":"ping","params":{"pad":"' + pad + b'"}}'
    with anyio.fail_after(120):
        async with running_gateway(env, tmp_path, *args) as (process, stderr):
            url = (await wait_for_text(stderr, URL_PATTERN)).group(1)
            async with Client(url, timeout=90) as client:
                result = await client.call_tool("pattern_index", {"patterns": patterns})
                assert result.structured_content is not None
                assert result.structured_content["indexed"] == [p["id"] for p in patterns]

            async with httpx.AsyncClient(headers=HTTP_HEADERS, timeout=30) as web:
                refused = await web.post(url, content=too_big)
                assert refused.status_code == 413
                error = refused.json()["error"]
                assert error["code"] == -32600
                assert error["message"] == (
                    f"Invalid Request: the body ({len(too_big)} bytes) is over "
                    f"max_message_bytes, the {6 * MiB}-byte limit"
                )
                # The same door serves the next request.
                served = await web.post(url, content=echo_call(8, '"x"'))
                assert served.status_code == 200
                assert "Unknown tool 'toolbox_echo'" in served.text  # no upstreams in this one

            peer = RawStdioPeer(process)
            await peer.send_raw(too_big + b"\n")
            on_stdio = await reply_on(peer)
            assert on_stdio["id"] == 7
            assert on_stdio["error"]["message"] == (
                f"Invalid Request: message of {len(too_big)} bytes exceeds the {6 * MiB} byte "
                "limit (max_message_bytes)"
            )
            await peer.initialize()
            assert "result" in await peer.request("ping")
