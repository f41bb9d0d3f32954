"""The official suite's `dns-rebinding-protection` server scenario against the real gateway
(`archon-gateway serve --transport http`, as the README starts it, on a port chosen at bind):
a request with `Host: evil.example.com` and its Origin gets a 4xx, one with the gateway's own
loopback Host and Origin is served."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.conformance.conftest import ConformanceSuite
from tests.support import running_http_gateway

pytestmark = [pytest.mark.anyio, pytest.mark.processes]


@pytest.mark.parametrize("spec_version", ["2025-11-25", "2026-07-28"])
async def test_the_official_dns_rebinding_scenario_passes_in_both_protocol_eras(
    conformance_suite: ConformanceSuite,
    gateway_env: dict[str, str],
    tmp_path: Path,
    spec_version: str,
) -> None:
    with anyio.fail_after(120):
        async with running_http_gateway(gateway_env, tmp_path) as (_, url, _stderr):
            checks = await conformance_suite.run_server_scenario(
                url, "dns-rebinding-protection", tmp_path / "results", spec_version=spec_version
            )
    outcomes = {check["id"]: check["status"] for check in checks}
    assert outcomes == {
        "localhost-host-rebinding-rejected": "SUCCESS",
        "localhost-host-valid-accepted": "SUCCESS",
    }, checks
