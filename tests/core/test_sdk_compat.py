"""The SDK seam's contract: every entry of core/sdk_compat.py works against the
installed fastmcp, mcp, uvicorn and sse-starlette, and no other module of the gateway uses
their private or undocumented parts. An upgrade that moves one of them fails here."""

from __future__ import annotations

import ast
import inspect
import logging
import signal
import socket
import sys
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import mcp_types as mt
import pytest
import uvicorn
from fastmcp import Client, Context, FastMCP
from fastmcp.client.messages import MessageHandler
from fastmcp.exceptions import ToolError
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.server.providers.base import Provider
from fastmcp.tools.base import Tool
from mcp import Client as SdkClient
from mcp.server.connection import Connection
from mcp.shared.message import SessionMessage
from mcp.shared.subscriptions import (
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated,
    ToolsListChanged,
)
from starlette.applications import Starlette

from archon_gateway.core import sdk_compat
from archon_gateway.core.connection_slots import ConnectionSlots
from tests.support import INITIALIZE, CallErrors, wait_until

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]
SEAM = REPO / "core" / "sdk_compat.py"
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}

# Every entry of the seam, and the test that exercises it (kept complete by a test below).
COVERED: dict[str, str] = {
    "LifespanHookServer": "test_the_lifespan_hook_wraps_every_way_of_running_the_server",
    "lifespan": "test_the_lifespan_hook_wraps_every_way_of_running_the_server",
    "run_session": "test_a_session_runs_over_our_own_streams_with_its_transport_set",
    "transport_set": "test_a_session_runs_over_our_own_streams_with_its_transport_set",
    "session_connection": "test_a_session_connection_outlives_the_request_and_notifies",
    "serve_subscriptions_listen": "test_listen_streams_hear_published_tool_list_changes",
    "new_subscription_bus": "test_listen_streams_hear_published_tool_list_changes",
    "publish_tools_changed": "test_listen_streams_hear_published_tool_list_changes",
    "publish_list_changed": "test_listen_streams_hear_resource_and_prompt_changes_they_asked_for",
    "publish_resource_updated": (
        "test_listen_streams_hear_resource_and_prompt_changes_they_asked_for"
    ),
    "serve_resource_subscriptions": "test_handshake_era_resource_subscriptions_reach_the_handlers",
    "search_tokens": "test_search_tokens_are_fastmcp_bm25_words",
    "tool_error_cause": "test_middleware_sees_a_tool_exception_as_the_cause_of_a_tool_error",
    "http_session_counter": "test_embedded_uvicorn_serves_counts_sessions_and_stops_sse_streams",
    "lift_http_body_limit": "test_the_sdk_http_body_limit_is_raised_to_the_one_given",
    "refuse_before_initialize": "test_a_request_before_initialize_is_told_to_initialize",
    "slow_client_protocol": "test_the_slow_client_guard_closes_a_connection_that_sends_nothing",
    "HttpSessionRegistry": "test_the_session_registry_closes_a_session_and_its_teardown_runs",
    "when_connection_closes": "test_the_session_registry_closes_a_session_and_its_teardown_runs",
    "embedded_uvicorn": "test_embedded_uvicorn_serves_counts_sessions_and_stops_sse_streams",
    "stop_uvicorn": "test_embedded_uvicorn_serves_counts_sessions_and_stops_sse_streams",
    "allow_sse_streams": "test_embedded_uvicorn_serves_counts_sessions_and_stops_sse_streams",
    "stop_sse_streams": "test_embedded_uvicorn_serves_counts_sessions_and_stops_sse_streams",
    "serve_uvicorn": "test_uvicorn_reports_a_failed_startup_instead_of_exiting",
    "drop_cut_stream_errors": "test_the_cut_stream_error_is_the_message_uvicorn_logs",
    "FastMCPComponent": "test_the_fastmcp_utilities_types_are_the_ones_its_signatures_name",
    "TaskConfig": "test_the_fastmcp_utilities_types_are_the_ones_its_signatures_name",
    "VersionSpec": "test_the_fastmcp_utilities_types_are_the_ones_its_signatures_name",
    "server_info_stamp": "test_a_modern_result_carries_the_stamp_the_seam_gives",
    "allowed_log_levels": "test_log_levels_follow_the_request_opt_in_on_the_modern_era_only",
    "wire_tool_result": "test_a_native_result_on_the_wire_is_shaped_as_fastmcp_shapes_it",
    "tool_error_result": "test_a_failing_tool_is_answered_with_the_seam_text_and_shape",
    "tool_failure_text": "test_a_failing_tool_is_answered_with_the_seam_text_and_shape",
    "cancelled_request_error": "test_a_cancelled_http_request_is_answered_with_the_seam_error",
}


def test_every_entry_of_the_seam_has_a_contract_test() -> None:
    assert set(COVERED) == set(sdk_compat.__all__)
    for test in COVERED.values():
        assert test in globals(), test


def test_every_entry_of_the_seam_says_why_it_is_needed() -> None:
    source = SEAM.read_text()
    tree = ast.parse(source)
    lines = source.splitlines()
    defined = {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }
    for name in sdk_compat.__all__:
        if name in defined:
            node = defined[name]
            body = lines[node.lineno - 1 : node.end_lineno]
        else:  # a re-export: its reason is in the comment block above its import
            body = reexport_comment(tree, lines, name)
        assert any("# Why:" in line for line in body), f"{name} has no '# Why:' comment"


def reexport_comment(tree: ast.Module, lines: list[str], name: str) -> list[str]:
    """The comment and import lines directly above the import that binds `name`."""
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and name in {a.asname for a in node.names}:
            start = node.lineno - 1
            while start > 0 and lines[start - 1].startswith(("#", "from ", "import ")):
                start -= 1
            return lines[start : node.lineno]
    raise AssertionError(f"{name} is neither defined nor re-exported in the seam")


# --- fastmcp: lifespan, low-level server, sessions -----------------------------------------


async def test_the_lifespan_hook_wraps_every_way_of_running_the_server() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def fastmcp_side(server: FastMCP[Any]) -> AsyncIterator[None]:
        events.append("fastmcp lifespan")
        yield
        events.append("fastmcp lifespan ended")

    class Hooked(sdk_compat.LifespanHookServer):
        @asynccontextmanager
        async def around_lifespan(self, fastmcp_lifespan: Callable[[], Any]) -> AsyncIterator[None]:
            events.append("around")
            async with fastmcp_lifespan():
                yield
            events.append("around ended")

    server = Hooked("hooked", lifespan=fastmcp_side)

    def wrapped_once() -> bool:
        """FastMCP's lifespan ran once, inside the hook (which may be entered nested)."""
        return (
            events[:2] == ["around", "fastmcp lifespan"]
            and events.count("fastmcp lifespan") == events.count("fastmcp lifespan ended") == 1
            and events.count("around") == events.count("around ended")
            and events[-1] == "around ended"
        )

    async with sdk_compat.lifespan(server):  # the serve loop's way
        assert events == ["around", "fastmcp lifespan"]
    assert wrapped_once(), events

    events.clear()
    async with Client(server) as client:  # fastmcp's in-memory client
        await client.list_tools()
    assert wrapped_once(), events

    events.clear()
    app = server.http_app(path="/mcp", transport="http")  # the HTTP front door
    async with app.router.lifespan_context(app):
        assert events[:2] == ["around", "fastmcp lifespan"]
    assert wrapped_once(), events


async def test_a_session_runs_over_our_own_streams_with_its_transport_set() -> None:
    server: FastMCP[Any] = FastMCP("plain")

    @server.tool
    async def transport(ctx: Context) -> str:
        return str(ctx.transport)

    to_server, server_reads = anyio.create_memory_object_stream[SessionMessage | Exception](1)
    server_writes, from_server = anyio.create_memory_object_stream[SessionMessage](1)

    async def send(message: dict[str, Any]) -> None:
        await to_server.send(SessionMessage(mt.jsonrpc_message_adapter.validate_python(message)))

    async def reply() -> dict[str, Any]:
        item = await from_server.receive()
        dumped: dict[str, Any] = item.message.model_dump(by_alias=True, exclude_unset=True)
        return dumped

    async def serve() -> None:
        with sdk_compat.transport_set("stdio"):
            await sdk_compat.run_session(server, server_reads, server_writes)

    with anyio.fail_after(10):
        async with sdk_compat.lifespan(server), anyio.create_task_group() as tg:
            tg.start_soon(serve)
            await send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INITIALIZE})
            assert (await reply())["id"] == 1
            await send({"jsonrpc": "2.0", "method": "notifications/initialized"})
            call = {"name": "transport", "arguments": {}}
            await send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call})
            answer = await reply()
            assert answer["id"] == 2
            assert answer["result"]["content"][0]["text"] == "stdio"
            to_server.close()  # the session ends with its read stream


async def test_a_request_before_initialize_is_told_to_initialize() -> None:
    server: FastMCP[Any] = FastMCP("plain")
    sdk_compat.refuse_before_initialize(server)
    to_server, server_reads = anyio.create_memory_object_stream[SessionMessage | Exception](1)
    server_writes, from_server = anyio.create_memory_object_stream[SessionMessage](1)

    async def send(message: dict[str, Any]) -> None:
        await to_server.send(SessionMessage(mt.jsonrpc_message_adapter.validate_python(message)))

    async def reply() -> dict[str, Any]:
        item = await from_server.receive()
        dumped: dict[str, Any] = item.message.model_dump(by_alias=True, exclude_unset=True)
        return dumped

    with anyio.fail_after(10):
        async with sdk_compat.lifespan(server), anyio.create_task_group() as tg:
            tg.start_soon(sdk_compat.run_session, server, server_reads, server_writes)
            await send({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
            early = await reply()
            assert early["error"]["code"] == -32600
            assert early["error"]["message"] == sdk_compat.NOT_INITIALIZED
            await send({"jsonrpc": "2.0", "id": 2, "method": "ping"})
            assert (await reply())["result"] == {}
            await send({"jsonrpc": "2.0", "id": 3, "method": "initialize", "params": INITIALIZE})
            assert (await reply())["id"] == 3
            await send({"jsonrpc": "2.0", "method": "notifications/initialized"})
            await send({"jsonrpc": "2.0", "id": 4, "method": "tools/list"})
            assert "tools" in (await reply())["result"]
            to_server.close()


async def test_the_slow_client_guard_closes_a_connection_that_sends_nothing() -> None:
    app = Starlette()
    slots = ConnectionSlots(2)
    config = uvicorn.Config(
        app, http=sdk_compat.slow_client_protocol(0.3, 0.3, slots), log_config=None, lifespan="off"
    )
    server = uvicorn.Server(config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: server.serve(sockets=[sock]))
            await wait_until(lambda: server.started)
            idle = await anyio.connect_tcp("127.0.0.1", port)
            with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                await idle.receive()  # closed by the server at the header deadline
            await idle.aclose()
            await wait_until(lambda: len(slots) == 0)
            # The slots hear when a connection is busy and when it waits again.
            async with await anyio.connect_tcp("127.0.0.1", port) as served:
                await served.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert (await served.receive()).startswith(b"HTTP/1.1 404")
                await wait_until(lambda: slots.waiting_count == 1)
                waiting = await anyio.connect_tcp("127.0.0.1", port)
                third = await anyio.connect_tcp("127.0.0.1", port)  # the cap is 2
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await served.receive()  # it had waited longest: it gave way
                assert slots.evicted == 1
                await waiting.aclose()
                await third.aclose()
            server.should_exit = True


class ToolListChanges(MessageHandler):
    def __init__(self) -> None:
        self.heard = anyio.Event()

    async def on_tool_list_changed(self, message: mt.ToolListChangedNotification) -> None:
        self.heard.set()


async def test_a_session_connection_outlives_the_request_and_notifies() -> None:
    connections: list[Connection | None] = []

    class Remember(Middleware):
        async def on_initialize(
            self,
            context: MiddlewareContext[mt.InitializeRequest],
            call_next: CallNext[mt.InitializeRequest, mt.InitializeResult | None],
        ) -> mt.InitializeResult | None:
            result = await call_next(context)
            assert context.fastmcp_context is not None
            connections.append(sdk_compat.session_connection(context.fastmcp_context.session))
            return result

    server: FastMCP[Any] = FastMCP("sessions", middleware=[Remember()])
    changes = ToolListChanges()
    with anyio.fail_after(10):
        async with Client(server, message_handler=changes, mode="legacy") as client:
            await client.list_tools()
            assert len(connections) == 1
            connection = connections[0]
            assert isinstance(connection, Connection)  # not None: `_connection` is still there
            await connection.send_tool_list_changed()  # after the request that found it
            await changes.heard.wait()
    assert sdk_compat.session_connection(object()) is None  # degrades, never raises


async def test_listen_streams_hear_published_tool_list_changes() -> None:
    server: FastMCP[Any] = FastMCP("listen")
    bus = sdk_compat.new_subscription_bus()
    sdk_compat.serve_subscriptions_listen(server, bus)
    # The modern (2026-07-28) client, in process, against the server the seam registered on.
    low_level = server._mcp_server
    with anyio.fail_after(10):
        async with (
            sdk_compat.lifespan(server),
            SdkClient(low_level) as client,
            client.listen(tools_list_changed=True) as subscription,
        ):
            await sdk_compat.publish_tools_changed(bus)
            async for event in subscription:
                assert isinstance(event, ToolsListChanged)
                break


async def test_listen_streams_hear_resource_and_prompt_changes_they_asked_for() -> None:
    server: FastMCP[Any] = FastMCP("listen-more")
    bus = sdk_compat.new_subscription_bus()
    opened: list[list[str]] = []

    @asynccontextmanager
    async def around(uris: list[str], stream: object) -> AsyncIterator[None]:
        opened.append(uris)
        yield

    sdk_compat.serve_subscriptions_listen(server, bus, around)
    wanted = "demo://up/a"
    with anyio.fail_after(10):
        async with (
            sdk_compat.lifespan(server),
            SdkClient(server._mcp_server) as client,
            client.listen(
                resources_list_changed=True,
                prompts_list_changed=True,
                resource_subscriptions=[wanted],
            ) as subscription,
        ):
            assert opened == [[wanted]]
            await sdk_compat.publish_resource_updated(bus, "demo://up/other")  # not asked for
            await sdk_compat.publish_resource_updated(bus, wanted)
            await sdk_compat.publish_list_changed(bus, "resources")
            await sdk_compat.publish_list_changed(bus, "prompts")
            heard: list[object] = []
            async for event in subscription:
                heard.append(event)
                if len(heard) == 3:
                    break
    assert heard == [ResourceUpdated(uri=wanted), ResourcesListChanged(), PromptsListChanged()]


async def test_handshake_era_resource_subscriptions_reach_the_handlers() -> None:
    server: FastMCP[Any] = FastMCP("subscribe")
    calls: list[tuple[str, str, bool]] = []

    async def subscribe(uri: str, client: object) -> None:
        calls.append(("subscribe", uri, isinstance(client, Connection)))

    async def unsubscribe(uri: str, client: object) -> None:
        calls.append(("unsubscribe", uri, isinstance(client, Connection)))

    sdk_compat.serve_resource_subscriptions(server, subscribe, unsubscribe)
    with anyio.fail_after(10):
        async with Client(server, mode="legacy") as client:
            assert client.initialize_result is not None
            resources = client.initialize_result.capabilities.resources
            assert resources is not None
            assert resources.subscribe
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # MCPDeprecationWarning: 2026-07-28 dropped it
                await client.session.subscribe_resource("demo://x")
                await client.session.unsubscribe_resource("demo://x")
    assert calls == [("subscribe", "demo://x", True), ("unsubscribe", "demo://x", True)]


async def test_a_modern_result_carries_the_stamp_the_seam_gives() -> None:
    server = FastMCP("stamped", version="9.8.7")

    @server.tool
    def echo(text: str) -> str:
        return text

    stamp = sdk_compat.server_info_stamp(server)
    assert stamp == {"name": "stamped", "version": "9.8.7"}
    stamp["name"] = "changed"  # a fresh dict each time: the server's own is untouched
    assert sdk_compat.server_info_stamp(server)["name"] == "stamped"
    async with Client(server) as client:  # 2026-07-28 by default
        result = await client.call_tool("echo", {"text": "hi"})
    assert result.meta is not None
    assert result.meta["io.modelcontextprotocol/serverInfo"] == {
        "name": "stamped",
        "version": "9.8.7",
    }


def test_log_levels_follow_the_request_opt_in_on_the_modern_era_only() -> None:
    meta = {"io.modelcontextprotocol/logLevel": "warning"}
    modern = sdk_compat.allowed_log_levels("2026-07-28", meta)
    assert {"warning", "error", "emergency"} <= modern
    assert "info" not in modern
    assert sdk_compat.allowed_log_levels("2026-07-28", {}) == frozenset()
    assert "debug" in sdk_compat.allowed_log_levels("2025-11-25", None)


def test_search_tokens_are_fastmcp_bm25_words() -> None:
    assert sdk_compat.search_tokens("Zen_CodeReview: a b ﬁle-Names 42") == [
        "zen",
        "codereview",
        "file",
        "names",
        "42",
    ]


async def test_middleware_sees_a_tool_exception_as_the_cause_of_a_tool_error() -> None:
    errors = CallErrors()
    server: FastMCP[Any] = FastMCP("errors", middleware=[errors])
    original = LookupError("the real failure")

    @server.tool
    async def fails() -> str:
        raise original

    async with Client(server) as client:
        result = await client.call_tool("fails", {}, raise_on_error=False)
    assert result.is_error
    seen = errors.seen
    assert len(seen) == 1
    assert isinstance(seen[0], ToolError)
    assert sdk_compat.tool_error_cause(seen[0]) is original
    assert sdk_compat.tool_error_cause(original) is None
    assert sdk_compat.tool_error_cause(ToolError("no cause")) is None


# --- wire shapes the lane mirrors -------------------------------------------------------------


def _on_the_wire(result: mt.CallToolResult) -> dict[str, Any]:
    """A result as sent, without what each era's runner adds (resultType, the stamp)."""
    wire = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    wire.pop("resultType", None)
    meta = wire.get("_meta") or {}
    meta.pop("io.modelcontextprotocol/serverInfo", None)
    if not meta:
        wire.pop("_meta", None)
    return wire


async def test_a_native_result_on_the_wire_is_shaped_as_fastmcp_shapes_it() -> None:
    server: FastMCP[Any] = FastMCP("shapes")

    @server.tool
    def number() -> int:
        return 5

    @server.tool
    def mapping() -> dict[str, int]:
        return {"a": 1}

    for mode, modern in (("legacy", False), (None, True)):
        async with Client(server, **({"mode": mode} if mode else {})) as client:
            for name in ("number", "mapping"):
                sent = await client.call_tool_mcp(name, {})
                ours = sdk_compat.wire_tool_result(await server.call_tool(name, {}), modern=modern)
                assert ours == _on_the_wire(sent), (name, mode)


async def test_a_failing_tool_is_answered_with_the_seam_text_and_shape() -> None:
    server: FastMCP[Any] = FastMCP("masked", mask_error_details=True)

    @server.tool
    def boom() -> str:
        raise RuntimeError("a detail the client must not see")

    async with Client(server, mode="legacy") as client:
        sent = await client.call_tool_mcp("boom", {})
    text = sdk_compat.tool_failure_text("boom")
    assert text == "Error calling tool 'boom'"
    assert _on_the_wire(sent) == sdk_compat.tool_error_result(text)


async def test_a_cancelled_http_request_is_answered_with_the_seam_error() -> None:
    server: FastMCP[Any] = FastMCP("cancel")
    started = anyio.Event()

    @server.tool
    async def hang() -> str:
        started.set()
        await anyio.sleep_forever()
        return "never"

    app = server.http_app(path="/mcp", transport="http", json_response=True)
    config = uvicorn.Config(app, log_config=None, lifespan="on")
    listener = free_listener()
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"
    listening = anyio.Event()
    http = sdk_compat.embedded_uvicorn(config, listening.set)
    served: list[bool] = []
    replies: list[dict[str, Any]] = []

    async def call(web: httpx.AsyncClient, headers: dict[str, str]) -> None:
        body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "hang"}}
        replies.append((await web.post("/mcp", json=body, headers=headers)).json())

    try:
        with anyio.fail_after(20):
            async with (
                anyio.create_task_group() as tg,
                httpx.AsyncClient(base_url=base, timeout=20) as web,
            ):
                tg.start_soon(lambda: _serve(http, listener, served))
                await listening.wait()
                body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INITIALIZE}
                initialized = await web.post("/mcp", json=body, headers=MCP_HEADERS)
                headers = {
                    **MCP_HEADERS,
                    "mcp-session-id": initialized.headers["mcp-session-id"],
                    "mcp-protocol-version": INITIALIZE["protocolVersion"],
                }
                note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
                await web.post("/mcp", json=note, headers=headers)
                tg.start_soon(call, web, headers)
                await started.wait()
                cancel = {
                    "jsonrpc": "2.0",
                    "method": "notifications/cancelled",
                    "params": {"requestId": 7},
                }
                await web.post("/mcp", json=cancel, headers=headers)
                await wait_until(lambda: bool(replies))
                sdk_compat.stop_uvicorn(http)
    finally:
        listener.close()
    assert replies == [{"jsonrpc": "2.0", "id": 7, "error": sdk_compat.cancelled_request_error()}]


# --- HTTP: uvicorn, sse-starlette, the session manager -------------------------------------


def free_listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    return sock


async def test_embedded_uvicorn_serves_counts_sessions_and_stops_sse_streams() -> None:
    server: FastMCP[Any] = FastMCP("http")
    app = server.http_app(path="/mcp", transport="http")
    count = sdk_compat.http_session_counter(app)
    assert count() == 0  # not started yet
    # A long graceful-shutdown timeout: only ending the SSE stream lets it stop in time.
    config = uvicorn.Config(app, log_config=None, lifespan="on", timeout_graceful_shutdown=30)
    listener = free_listener()
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"
    listening = anyio.Event()
    http = sdk_compat.embedded_uvicorn(config, listening.set)
    assert isinstance(http, uvicorn.Server)
    handlers_before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    served: list[bool] = []
    stream_open = anyio.Event()
    stream_ended = anyio.Event()

    async def hold_the_sse_stream(web: httpx.AsyncClient, session: str) -> None:
        headers = {"Accept": "text/event-stream", "mcp-session-id": session}
        try:
            async with web.stream("GET", "/mcp", headers=headers) as response:
                assert response.status_code == 200
                stream_open.set()
                async for _ in response.aiter_bytes():
                    pass
        except httpx.HTTPError:  # cut rather than ended: still not held until the timeout
            pass
        stream_ended.set()

    sdk_compat.allow_sse_streams()
    try:
        with anyio.fail_after(20):
            async with (
                anyio.create_task_group() as tg,
                httpx.AsyncClient(base_url=base, timeout=20) as web,
            ):
                tg.start_soon(lambda: _serve(http, listener, served))
                await listening.wait()
                # uvicorn did not take the gateway's signals while it serves.
                assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == (
                    handlers_before
                )
                body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INITIALIZE}
                initialized = await web.post("/mcp", json=body, headers=MCP_HEADERS)
                assert initialized.status_code == 200
                session = initialized.headers["mcp-session-id"]
                assert count() == 1  # the session manager's private `_server_instances`
                tg.start_soon(hold_the_sse_stream, web, session)
                await stream_open.wait()

                sdk_compat.stop_sse_streams()
                sdk_compat.stop_uvicorn(http)
                await stream_ended.wait()
        assert served == [True]
        assert count() == 0  # stopped
    finally:
        sdk_compat.allow_sse_streams()
        listener.close()
    from sse_starlette.sse import AppStatus

    sdk_compat.stop_sse_streams()
    assert AppStatus.should_exit is True
    sdk_compat.allow_sse_streams()
    assert AppStatus.should_exit is False


async def test_the_session_registry_closes_a_session_and_its_teardown_runs() -> None:
    torn_down = anyio.Event()
    registered: list[bool] = []

    async def teardown() -> None:
        torn_down.set()

    class OnClose(Middleware):
        async def on_initialize(
            self,
            context: MiddlewareContext[mt.InitializeRequest],
            call_next: CallNext[mt.InitializeRequest, mt.InitializeResult | None],
        ) -> mt.InitializeResult | None:
            result = await call_next(context)
            assert context.fastmcp_context is not None
            connection = sdk_compat.session_connection(context.fastmcp_context.session)
            registered.append(sdk_compat.when_connection_closes(connection, teardown))
            return result

    server: FastMCP[Any] = FastMCP("sessions", middleware=[OnClose()])
    app = server.http_app(path="/mcp", transport="http")
    registry = sdk_compat.HttpSessionRegistry(app)
    assert len(registry) == 0  # not started yet
    assert not sdk_compat.when_connection_closes(object(), teardown)
    config = uvicorn.Config(app, log_config=None, lifespan="on", timeout_graceful_shutdown=1)
    listener = free_listener()
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"
    listening = anyio.Event()
    http = sdk_compat.embedded_uvicorn(config, listening.set)
    served: list[bool] = []
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INITIALIZE}
    try:
        with anyio.fail_after(20):
            async with (
                anyio.create_task_group() as tg,
                httpx.AsyncClient(base_url=base, timeout=20) as web,
            ):
                tg.start_soon(lambda: _serve(http, listener, served))
                await listening.wait()
                registry.take_over_limits(max_sessions=1)
                first = await web.post("/mcp", json=body, headers=MCP_HEADERS)
                assert first.status_code == 200
                session = first.headers["mcp-session-id"]
                assert registered == [True]
                assert (len(registry), registry.ids(), session in registry) == (1, [session], True)
                # The SDK's own limit now backs the gateway's admission up.
                assert (await web.post("/mcp", json=body, headers=MCP_HEADERS)).status_code == 503

                assert await registry.close(session)
                assert session not in registry
                await torn_down.wait()  # the connection's teardown ran
                ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
                headers = MCP_HEADERS | {
                    "mcp-session-id": session,
                    "mcp-protocol-version": INITIALIZE["protocolVersion"],
                }
                assert (await web.post("/mcp", json=ping, headers=headers)).status_code == 404
                assert not await registry.close(session)
                sdk_compat.stop_uvicorn(http)
    finally:
        listener.close()


async def _serve(http: uvicorn.Server, listener: socket.socket, served: list[bool]) -> None:
    served.append(await sdk_compat.serve_uvicorn(http, [listener]))


async def test_uvicorn_reports_a_failed_startup_instead_of_exiting() -> None:
    @asynccontextmanager
    async def failing(app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("cannot start")
        yield

    config = uvicorn.Config(Starlette(lifespan=failing), log_config=None, lifespan="on")
    never = anyio.Event()
    http = sdk_compat.embedded_uvicorn(config, never.set)
    listener = free_listener()
    try:
        with anyio.fail_after(10):
            assert await sdk_compat.serve_uvicorn(http, [listener]) is False
    finally:
        listener.close()
    assert not never.is_set()


async def test_the_sdk_http_body_limit_is_raised_to_the_one_given() -> None:
    # A 5 MiB initialize: over the SDK's own 4 MiB limit, under the 8 MiB one given here.
    pad = "x" * (5 * 1024 * 1024)
    params = {**INITIALIZE, "_meta": {"pad": pad}}
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}

    async def status_of(lift: bool) -> tuple[int, str]:
        app = FastMCP("big").http_app(path="/mcp", transport="http")
        if lift:
            sdk_compat.lift_http_body_limit(app, 8 * 1024 * 1024)
        config = uvicorn.Config(app, log_config=None, lifespan="on")
        listening = anyio.Event()
        http = sdk_compat.embedded_uvicorn(config, listening.set)
        listener = free_listener()
        base = f"http://127.0.0.1:{listener.getsockname()[1]}"
        served: list[bool] = []
        try:
            with anyio.fail_after(30):
                async with (
                    anyio.create_task_group() as tg,
                    httpx.AsyncClient(base_url=base, timeout=30) as web,
                ):
                    tg.start_soon(lambda: _serve(http, listener, served))
                    await listening.wait()
                    answer = await web.post("/mcp", json=body, headers=MCP_HEADERS)
                    sdk_compat.stop_uvicorn(http)
        finally:
            listener.close()
        return answer.status_code, answer.text[:100]

    # The SDK's own limit, in plain text: why the seam exists.
    assert await status_of(lift=False) == (413, "Request body too large")
    status, text = await status_of(lift=True)
    assert status == 200, text


def test_the_cut_stream_error_is_the_message_uvicorn_logs() -> None:
    from uvicorn.protocols.http import h11_impl

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, message, (), None)

    message = "ASGI callable returned without completing response."
    assert message in inspect.getsource(h11_impl)
    assert sdk_compat.drop_cut_stream_errors(record(message)) is False
    assert sdk_compat.drop_cut_stream_errors(record("something else broke")) is True


# --- fastmcp: types and hooks that only its undocumented modules name ----------------------


def test_the_fastmcp_utilities_types_are_the_ones_its_signatures_name() -> None:
    assert issubclass(Tool, sdk_compat.FastMCPComponent)
    get_tasks = inspect.signature(Provider.get_tasks, eval_str=True)
    assert "FastMCPComponent" in str(get_tasks.return_annotation)
    assert Tool.model_fields["task_config"].annotation is sdk_compat.TaskConfig
    assert sdk_compat.TaskConfig(mode="forbidden").supports_tasks() is False
    version = inspect.signature(Provider._get_tool).parameters["version"].annotation
    assert version in ("VersionSpec | None", sdk_compat.VersionSpec | None)
    assert vars(sys.modules[Provider.__module__])["VersionSpec"] is sdk_compat.VersionSpec
    # Documented private hooks that upstreams.provider.UpstreamProvider overrides.
    assert list(inspect.signature(Provider._list_tools).parameters) == ["self"]
    assert list(inspect.signature(Provider._get_tool).parameters) == ["self", "name", "version"]


# --- nothing outside the seam touches SDK internals ----------------------------------------

# Private or undocumented SDK names (attributes, overridden methods, getattr strings).
PRIVATE_NAMES = {
    "_lifespan_manager",  # FastMCP
    "_mcp_server",  # FastMCP
    "_connection",  # mcp ServerSession
    "_server_instances",  # mcp StreamableHTTPSessionManager
    "asgi_app",  # mcp StreamableHTTPSessionManager (its body-limit wrapper)
    "max_body_size",  # mcp RequestBodyLimitMiddleware
    "session_manager",  # fastmcp's streamable-HTTP endpoint
    "set_transport",  # fastmcp.server.context
    "reset_transport",  # fastmcp.server.context
    "AppStatus",  # sse_starlette
    "should_exit",  # uvicorn Server, sse_starlette AppStatus
    "capture_signals",  # uvicorn Server
    "RawStructuredToolResult",  # fastmcp.tools.base: how FastMCP marks a value to wrap
}
# Wire text the SDK writes itself: a path that answers for it takes it from the seam.
COPIED_TEXT = ("Error calling tool", "Request cancelled")
# Undocumented SDK modules (and everything under them).
PRIVATE_MODULES = (
    "fastmcp.utilities",
    "fastmcp.server.context",
    "fastmcp.server.http",
    "mcp.server.connection",
    "mcp.server.subscriptions",
    "mcp.server.streamable_http_manager",
    "mcp.server.lowlevel",
    "sse_starlette",
    "uvicorn.",  # uvicorn's public API is the package itself (uvicorn.Config, uvicorn.run)
)


def private_uses(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names_tool_error = False
    reads_cause: list[int] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            for module in modules:
                private = any(
                    (module + ".").startswith(p.rstrip(".") + ".") for p in PRIVATE_MODULES
                )
                if private and module != "uvicorn":
                    yield node.lineno, f"imports {module}"
            names = [alias.name for alias in node.names]
            names_tool_error = names_tool_error or "ToolError" in names
            for name in set(names) & PRIVATE_NAMES:
                yield node.lineno, f"imports {name}"
        elif isinstance(node, ast.Attribute):
            if node.attr in PRIVATE_NAMES:
                yield node.lineno, f"uses .{node.attr}"
            if node.attr == "__cause__":
                reads_cause.append(node.lineno)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if node.name in PRIVATE_NAMES:
                yield node.lineno, f"overrides {node.name}"
        elif isinstance(node, ast.Name) and node.id in PRIVATE_NAMES:
            yield node.lineno, f"names {node.id}"
        elif isinstance(node, ast.Constant) and node.value in PRIVATE_NAMES:
            yield node.lineno, f"names {node.value!r} (getattr?)"
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            for text in COPIED_TEXT:
                if text in node.value and not _is_docstring(tree, node):
                    yield node.lineno, f"copies the SDK's text {text!r}"
    if names_tool_error:  # FastMCP's ToolError keeps a tool's exception as its cause
        for line in reads_cause:
            yield line, "unwraps ToolError.__cause__ (use sdk_compat.tool_error_cause)"


def _is_docstring(tree: ast.Module, node: ast.Constant) -> bool:
    """Docstrings may quote the SDK's text (to say where it comes from)."""
    for owner in ast.walk(tree):
        if isinstance(owner, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = owner.body[0] if owner.body else None
            if isinstance(first, ast.Expr) and first.value is node:
                return True
    return False


def test_no_module_outside_the_seam_uses_sdk_internals() -> None:
    found = [
        f"{path.relative_to(REPO)}:{line}: {what}"
        for folder in ("core", "gateway", "events", "catalog", "tools", "upstreams", "store")
        for path in sorted((REPO / folder).rglob("*.py"))
        if path != SEAM
        for line, what in private_uses(path)
    ]
    assert not found, "private SDK use outside core/sdk_compat.py:\n" + "\n".join(found)


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from fastmcp.exceptions import ToolError\n"
        "from fastmcp.utilities.tasks import TaskConfig\n"
        "import uvicorn.server\n"
        "import uvicorn\n"
        "from sse_starlette.sse import AppStatus\n"
        "server._mcp_server.run()\n"
        "getattr(session, '_connection', None)\n"
        "class S:\n"
        "    def capture_signals(self): ...\n"
        "cause = exc.__cause__\n"
    )
    found = sorted(private_uses(sample))
    assert [line for line, _ in found] == [2, 3, 5, 5, 6, 7, 9, 10]


def test_the_scan_finds_copied_sdk_text(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""Quoting "Error calling tool" in a docstring is fine."""\n'
        "from fastmcp.tools.base import RawStructuredToolResult\n"
        'text = f"Error calling tool {name!r}"\n'
        "error = {'code': -32800, 'message': 'Request cancelled'}\n"
    )
    found = sorted(private_uses(sample))
    assert [line for line, _ in found] == [2, 3, 4]
