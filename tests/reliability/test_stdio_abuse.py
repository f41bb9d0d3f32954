"""A careless or hostile stdio client: 40 MB lines, huge argument objects, odd progress
tokens and cancellations. Each gets a clear answer (or none, for notifications), the process
stays up, serves the next request, and its memory stays under its bound."""

from __future__ import annotations

import re
from pathlib import Path

import anyio
import pytest

from tests.support import RawStdioPeer, running_gateway

pytestmark = [pytest.mark.anyio, pytest.mark.processes]

# The documented bound for the gateway process (docs/hardening.md).
RSS_BOUND_KB = 1024 * 1024


def rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert found, status
    return int(found.group(1))


async def test_huge_lines_odd_tokens_and_cancellations_leave_the_session_serving(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    async with running_gateway(gateway_env, tmp_path) as (process, _stderr):
        peer = RawStdioPeer(process)
        with anyio.fail_after(90):
            await peer.initialize()
            # 40 MB line, over the 32 MiB default: answered with its id, never held whole.
            head = b'{"jsonrpc":"2.0","id":501,"method":"tools/call",'
            head += b'"params":{"name":"x","arguments":{"a":"'
            await peer.send_raw(head)
            for _ in range(40):
                await peer.send_raw(b"x" * (1024 * 1024))
            await peer.send_raw(b'"}}}\n')
            oversized = await peer.receive()
            assert oversized["id"] == 501
            assert "byte limit" in oversized["error"]["message"]

            # A huge (but allowed) argument object to a tool that takes none.
            arguments = {f"k{i}": "v" * 100 for i in range(50_000)}
            reply = await peer.request(
                "tools/call", {"name": "gateway_info", "arguments": arguments}
            )
            assert "result" in reply or "error" in reply

            # Odd progress tokens: the call is still answered.
            for token in ({"a": 1}, True, 1.5, "t" * 10_000, None):
                params = {
                    "name": "gateway_info",
                    "arguments": {},
                    "_meta": {"progressToken": token},
                }
                answered = await peer.request("tools/call", params)
                assert "result" in answered or "error" in answered, token

            # Cancellations for unknown, odd and finished ids need no answer and break nothing.
            for request_id in (99_999, {"a": 1}, None, "nope", 501):
                await peer.send(
                    {
                        "jsonrpc": "2.0",
                        "method": "notifications/cancelled",
                        "params": {"requestId": request_id, "reason": "test"},
                    }
                )
            await peer.send({"jsonrpc": "2.0", "method": "notifications/cancelled"})
            await peer.send({"jsonrpc": "2.0", "method": "notifications/progress", "params": 5})
            malformed = await peer.receive()  # params must be an object: invalid request
            assert malformed["error"]["code"] == -32600

            after = await peer.request("tools/call", {"name": "gateway_info", "arguments": {}})
            assert after["result"]["isError"] is False
            assert rss_kb(process.pid) < RSS_BOUND_KB
        assert process.returncode is None
