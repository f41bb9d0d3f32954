"""An HTTP client that cancels an in-flight proxied call: the upstream must see the cancel,
whichever path served the call. The official Python SDK's `mcp.Client` cancels as each era
says: a handshake-era session POSTs `notifications/cancelled`, a 2026-07-28 client aborts
the request's own stream."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client as SdkClient

from tests.support import lane_call_samples, running_http_gateway, tool_call_samples, wait_until
from tests.upstreams.conftest import WriteManifest

pytestmark = [pytest.mark.anyio, pytest.mark.processes]

# Long enough that a cancel seen within CANCEL_SEEN_WITHIN is the client's, not the limit's.
HANG_LIMIT = 5
CANCEL_SEEN_WITHIN = 2


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_an_http_client_cancelling_a_lane_call_cancels_it_upstream(
    mode: str, gateway_env: dict[str, str], tmp_path: Path, write_manifest: WriteManifest
) -> None:
    record = tmp_path / "record.txt"
    write_manifest("toolbox", env={"RECORD_FILE": str(record)}, tool_timeouts={"hang": HANG_LIMIT})

    def recorded(line: str) -> bool:
        return record.exists() and line in record.read_text().splitlines()

    async with running_http_gateway(gateway_env, tmp_path) as (_, url, _stderr):
        with anyio.fail_after(60):
            async with SdkClient(url, mode=mode) as session:
                await session.list_tools()  # the upstream is listed: the lane takes its calls
                async with anyio.create_task_group() as tg:
                    tg.start_soon(session.call_tool, "toolbox_hang", {"tag": mode})
                    await wait_until(lambda: recorded(f"started {mode}"))
                    tg.cancel_scope.cancel()  # the SDK sends notifications/cancelled
                try:
                    await wait_until(lambda: recorded(f"cancelled {mode}"), CANCEL_SEEN_WITHIN)
                    upstream_heard = True
                except TimeoutError:
                    upstream_heard = False
            async with httpx.AsyncClient() as http:
                metrics = (await http.get(url.replace("/mcp", "/metrics"))).text

    assert lane_call_samples(metrics)["streamable-http"] == 1
    assert upstream_heard, f"the upstream did not see the cancel within {CANCEL_SEEN_WITHIN} s"
    # The client's cancel, not the time limit, ended it; cancellations never count as faults.
    assert ("toolbox_hang", "timeout") not in tool_call_samples(metrics)
