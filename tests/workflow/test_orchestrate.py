"""orchestrate_pattern_workflow against a real coordinator-like HTTP server on 127.0.0.1
(uvicorn serving tests/workflow/coordinator.py), through the assembled gateway and a real
MCP client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from fastmcp import Client

from archon_gateway.core.circuit_breaker import BreakerRegistry
from archon_gateway.core.health import ComponentRegistry
from archon_gateway.gateway.app import add_tool_families, build_gateway
from archon_gateway.gateway.call_pipeline import as_middleware
from archon_gateway.gateway.call_steps.error_translation import TranslateErrors
from archon_gateway.gateway.mcp_server import GatewayServer
from archon_gateway.gateway.settings import Settings
from archon_gateway.tools.workflow import WorkflowTools
from tests.support import running_http_gateway
from tests.workflow.coordinator import Coordinator, serving

pytestmark = [pytest.mark.anyio, pytest.mark.processes]

TOOL = "orchestrate_pattern_workflow"


def gateway(tmp_path: Path, url: str | None, **settings: Any) -> GatewayServer:
    return build_gateway(
        Settings(
            data_dir=tmp_path,
            enable_external_gateway=False,
            workflow_coordinator_url=url,
            **settings,
        )
    )


async def call_error(client: Client[Any], arguments: dict[str, Any]) -> str:
    result = await client.call_tool(TOOL, arguments, raise_on_error=False)
    assert result.is_error
    text: str = result.content[0].text  # type: ignore[union-attr]
    return text


async def component(client: Client[Any]) -> dict[str, str]:
    info = await client.call_tool("gateway_info", {})
    assert info.structured_content is not None
    status: dict[str, str] = info.structured_content["components"]["workflow_coordinator"]
    return status


async def test_a_run_succeeds_and_its_progress_reaches_the_mcp_client(tmp_path: Path) -> None:
    coordinator = Coordinator()
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    with anyio.fail_after(30):
        async with serving(coordinator) as url, Client(gateway(tmp_path, url)) as client:
            inputs = {"steps": 4, "step_seconds": 0.15, "pattern": "retry-with-backoff"}
            result = await client.call_tool(
                TOOL, {"workflow": "echo", "inputs": inputs}, progress_handler=on_progress
            )
    assert result.structured_content == {
        "workflow": "echo",
        "run_id": "run-1",
        "status": "succeeded",
        "result": {"echo": inputs},
    }
    assert len(seen) >= 2
    assert [p for p, _, _ in seen] == sorted(p for p, _, _ in seen)
    assert {total for _, total, _ in seen} == {4}
    assert all(message and message.startswith("step ") for _, _, message in seen)
    assert coordinator.cancels == []


async def test_the_tool_timeout_cancels_the_remote_run(tmp_path: Path) -> None:
    coordinator = Coordinator()
    with anyio.fail_after(30):
        async with (
            serving(coordinator) as url,
            Client(gateway(tmp_path, url, workflow_timeout=0.6)) as client,
        ):
            text = await call_error(client, {"workflow": "hang"})
            assert text == f"{TOOL} timed out after 0.6 s"
            await coordinator.cancelled.wait()
            assert coordinator.cancels == ["run-1"]
            # The gateway and the coordinator connection still work afterwards.
            ok = await client.call_tool(TOOL, {"workflow": "echo", "inputs": {"steps": 1}})
            assert ok.structured_content is not None
            assert ok.structured_content["run_id"] == "run-2"


async def test_cancelling_the_call_cancels_the_remote_run(tmp_path: Path) -> None:
    coordinator = Coordinator()
    with anyio.fail_after(30):
        async with serving(coordinator) as url, Client(gateway(tmp_path, url)) as client:
            async with anyio.create_task_group() as group:
                group.start_soon(client.call_tool, TOOL, {"workflow": "hang"})
                await coordinator.polled.wait()
                group.cancel_scope.cancel()
            await coordinator.cancelled.wait()
            assert coordinator.cancels == ["run-1"]


async def test_failed_polls_and_a_dropped_connection_are_ridden_out(tmp_path: Path) -> None:
    coordinator = Coordinator()
    coordinator.fail_polls = 1
    coordinator.drop_polls = 1
    with anyio.fail_after(30):
        async with serving(coordinator) as url, Client(gateway(tmp_path, url)) as client:
            result = await client.call_tool(
                TOOL, {"workflow": "echo", "inputs": {"steps": 2, "step_seconds": 0.05}}
            )
            assert result.structured_content is not None
            assert result.structured_content["status"] == "succeeded"
            assert coordinator.fail_polls == coordinator.drop_polls == 0
            assert await component(client) == {"status": "ok", "detail": "127.0.0.1"}


async def test_repeated_5xx_open_the_breaker_and_calls_then_fail_fast(tmp_path: Path) -> None:
    coordinator = Coordinator()
    coordinator.always_500 = True
    with anyio.fail_after(30):
        async with serving(coordinator) as url, Client(gateway(tmp_path, url)) as client:
            for _ in range(5):
                text = await call_error(client, {"workflow": "echo"})
                assert text == (
                    "workflow coordinator failed: HTTP 500 Internal Server Error "
                    "for POST /workflows/echo/runs"
                )
            assert len(coordinator.requests) == 5
            text = await call_error(client, {"workflow": "echo"})
            assert text == "workflow coordinator unavailable (circuit open, retry in 30 s)"
            assert len(coordinator.requests) == 5  # failed fast, never sent
            status = await component(client)
            assert status["status"] == "degraded"
            assert status["detail"].startswith("circuit open")


async def test_a_failed_run_and_an_unknown_workflow_are_clear_and_do_not_trip_the_breaker(
    tmp_path: Path,
) -> None:
    coordinator = Coordinator()
    with anyio.fail_after(30):
        async with serving(coordinator) as url, Client(gateway(tmp_path, url)) as client:
            for _ in range(6):
                text = await call_error(client, {"workflow": "nope"})
                assert text == "workflow: 'nope' is not known to the workflow coordinator"
            text = await call_error(client, {"workflow": "fail", "inputs": {"step_seconds": 0.05}})
            assert text == "workflow 'fail' run run-1 failed: step 2: boom"
            text = await call_error(client, {"workflow": "bad name/../x"})
            assert "workflow" in text
            assert "pattern" in text
            assert await component(client) == {"status": "ok", "detail": "127.0.0.1"}


async def test_an_unreachable_or_unconfigured_coordinator_is_a_one_line_error(
    tmp_path: Path, refused_port: int
) -> None:
    port = refused_port
    with anyio.fail_after(30):
        async with Client(gateway(tmp_path, f"http://127.0.0.1:{port}")) as client:
            text = await call_error(client, {"workflow": "echo"})
            assert text == (
                f"workflow coordinator is unreachable (ConnectError on POST "
                f"http://127.0.0.1:{port}); is it running?"
            )
        async with Client(gateway(tmp_path, None)) as client:
            text = await call_error(client, {"workflow": "echo"})
            assert text == (
                "the workflow coordinator is not configured; set ARCHON_WORKFLOW_COORDINATOR_URL"
            )
            assert await component(client) == {
                "status": "disabled",
                "detail": "set ARCHON_WORKFLOW_COORDINATOR_URL",
            }


async def test_a_gateway_process_runs_a_workflow_for_an_http_client_with_progress(
    tmp_path: Path, gateway_env: dict[str, str]
) -> None:
    coordinator = Coordinator()
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    with anyio.fail_after(60):
        async with serving(coordinator) as coordinator_url:
            env = {**gateway_env, "ARCHON_WORKFLOW_COORDINATOR_URL": coordinator_url}
            async with (
                running_http_gateway(env, tmp_path) as (_, url, _),
                Client(url) as client,
            ):
                result = await client.call_tool(
                    TOOL,
                    {"workflow": "echo", "inputs": {"steps": 3, "step_seconds": 0.2}},
                    progress_handler=on_progress,
                )
    assert result.structured_content is not None
    assert result.structured_content["result"] == {"echo": {"steps": 3, "step_seconds": 0.2}}
    assert seen
    assert seen == sorted(seen)


async def test_the_remote_run_is_cancelled_even_when_the_breaker_opens_mid_run(
    tmp_path: Path,
) -> None:
    coordinator = Coordinator()
    breakers = BreakerRegistry(fail_max=1)
    with anyio.fail_after(30):
        async with serving(coordinator) as url:
            server = GatewayServer("t", middleware=[as_middleware(TranslateErrors())])
            add_tool_families(server, ComponentRegistry(), [WorkflowTools(url, breakers=breakers)])
            async with Client(server) as client:
                async with anyio.create_task_group() as group:

                    async def run() -> None:
                        text = await call_error(client, {"workflow": "hang"})
                        assert text.startswith("workflow coordinator unavailable (circuit open")

                    group.start_soon(run)
                    await coordinator.polled.wait()
                    coordinator.fail_polls = 1_000
                await coordinator.cancelled.wait()
    assert breakers.get_or_create("workflow coordinator").current_state == "open"
    assert coordinator.cancels == ["run-1"]
