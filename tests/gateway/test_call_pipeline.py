"""The call pipeline, declared once (gateway/call_pipeline.py), the time-limit policy and
the session registry: the parts both the lane and FastMCP's path read."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastmcp import Client, FastMCP

from archon_gateway.gateway.app import build_gateway
from archon_gateway.gateway.call_context import CallContext, Next
from archon_gateway.gateway.call_pipeline import (
    LAYERS,
    CallPipeline,
    PipelineMiddleware,
)
from archon_gateway.gateway.call_steps.timeout import TimeLimits
from archon_gateway.gateway.session_registry import ClientSession, SessionRegistry
from archon_gateway.gateway.settings import Settings
from tests.support import wait_until

pytestmark = pytest.mark.anyio


def test_the_gateway_runs_every_layer_in_the_order_the_pipeline_module_declares(
    tmp_path: Path,
) -> None:
    server = build_gateway(Settings(enable_external_gateway=False, data_dir=tmp_path))
    (adapter,) = [m for m in server.middleware if isinstance(m, PipelineMiddleware)]
    # Without upstreams there is no upstream call log; every other layer is there, in order.
    assert adapter.pipeline.layers == tuple(name for name in LAYERS if name != "upstream_log")
    kinds = [type(step).__name__ for step in adapter.pipeline.steps]
    assert kinds == [
        "InFlightCalls",
        "TranslateErrors",
        "CountCalls",
        "SessionLog",
        "StdioAuth",
        "AdminCalls",
        "BreakerGuard",
        "Admission",
        "TimeLimit",
    ]
    # The serve loop drains the pipeline's own drain step.
    assert server.front.drain is adapter.pipeline.steps[0]


async def test_steps_nest_outermost_first_and_the_tool_runs_last() -> None:
    order: list[str] = []

    class Record:
        def __init__(self, name: str) -> None:
            self.name = name

        async def __call__(self, call: CallContext, call_next: Next) -> Any:
            order.append(f"{self.name} in")
            result = await call_next(call)
            order.append(f"{self.name} out")
            return result

    async def tool(call: CallContext) -> str:
        order.append(f"tool {call.tool}")
        return "done"

    pipeline = CallPipeline((Record("a"), Record("b")))
    assert await pipeline.run(CallContext("t", {}, tool)) == "done"
    assert order == ["a in", "b in", "tool t", "b out", "a out"]


def test_a_tool_limit_follows_the_precedence_and_a_reload_moves_only_the_live_one() -> None:
    manifest = {"zen_chat": 30.0, "zen_other": 90.0}  # per-tool override, manifest's own
    limits = TimeLimits(60.0, manifest.get)
    limits.add_native({"code_correct": 20.0, "zen_chat": 5.0})
    assert limits.limit_for("code_correct") == 20.0  # native family
    assert limits.limit_for("zen_chat") == 5.0  # native beats the manifest
    assert limits.limit_for("zen_other") == 90.0  # the manifest
    assert limits.limit_for("gateway_info") == 60.0  # the default
    limits.reloaded(12.0)
    assert limits.limit_for("gateway_info") == 12.0  # the live tool_timeout
    assert limits.limit_for("zen_other") == 90.0


async def test_the_registry_resolves_a_session_once_and_tells_its_close_once() -> None:
    registry = SessionRegistry()
    server: FastMCP[Any] = FastMCP("sessions", middleware=[registry])
    opened: list[ClientSession] = []
    closed: list[ClientSession] = []
    registry.on_open(opened.append)
    registry.on_close(closed.append)

    @server.tool
    def echo(text: str) -> str:
        return text

    with anyio.fail_after(30):
        async with Client(server, mode="legacy") as client:
            await client.call_tool("echo", {"text": "hi"})
            (session,) = opened
            assert list(registry) == [session]
            assert session.principal == "local"  # not over HTTP
            assert session.client_name
            assert session.session_id is not None
            assert registry.by_id(session.session_id) is session
            assert session.ready() is not None
            registry.close(session)  # e.g. expired: listeners hear it at once
            assert closed == [session]
            assert registry.by_id(session.session_id) is None
            assert list(registry) == []
        del client
        gc.collect()
        assert closed == [session]  # the connection going away tells no one again


async def test_each_call_on_a_session_marks_it_used_and_carries_who_calls() -> None:
    registry = SessionRegistry()
    seen: list[CallContext] = []

    async def record(call: CallContext, call_next: Next) -> Any:
        seen.append(call)
        return await call_next(call)

    adapter = PipelineMiddleware(CallPipeline((record,)), sessions=registry)
    server: FastMCP[Any] = FastMCP("used", middleware=[registry, adapter])

    @server.tool
    def echo(text: str) -> str:
        return text

    with anyio.fail_after(30):
        async with Client(server, mode="legacy") as client:
            (session,) = list(registry)
            opened = session.last_used
            await client.call_tool("echo", {"text": "hi"})
    assert session.last_used > opened
    (call,) = seen
    assert (call.tool, call.arguments) == ("echo", {"text": "hi"})
    assert call.session_id == session.session_id
    assert call.principal == "local"
    assert call.upstream is None


async def test_a_session_leaves_the_registry_when_its_connection_goes() -> None:
    registry = SessionRegistry()
    server: FastMCP[Any] = FastMCP("sessions", middleware=[registry])
    closed: list[ClientSession] = []
    registry.on_close(closed.append)
    with anyio.fail_after(30):
        async with Client(server, mode="legacy") as client:
            await client.ping()
            assert len(registry) == 1
        del client

        def gone() -> bool:
            gc.collect()
            return len(closed) == 1

        await wait_until(gone)
    assert len(registry) == 0
