"""Where passthrough messages go: resource updates only to subscribers, log lines to their
call's client, server-to-client requests only to a client that can answer them, roots from
the calling client or else the manifest. server-everything (npm) and the toolbox upstream
behind a real gateway."""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp_types as mt
import pytest
from fastmcp import Client

from archon_gateway.gateway.app import build_gateway
from archon_gateway.gateway.settings import Settings
from tests.support import wait_until
from tests.upstreams.conftest import WriteManifest
from tests.upstreams.test_passthrough import (
    ERAS,
    LOG_LEVEL_META,
    STATIC_URI,
    client,
    front_door,
    text_of,
)

pytestmark = [pytest.mark.anyio, pytest.mark.processes]


@pytest.mark.parametrize("era", ERAS)
async def test_updates_reach_only_the_subscriber_logs_are_relayed_and_sampling_needs_the_capability(
    era: str, everything: None, gateway_env: dict[str, str], tmp_path: Path
) -> None:
    updated: dict[str, list[str]] = {"subscriber": [], "other": []}
    logs: list[Any] = []

    def on_message(who: str) -> Any:
        async def handle(message: Any) -> None:
            if isinstance(message, mt.ResourceUpdatedNotification):
                updated[who].append(str(message.params.uri))

        return handle

    async def on_log(message: Any) -> None:
        logs.append(message)

    async with (
        front_door("http", gateway_env, tmp_path) as url,
        client(url, era, message_handler=on_message("subscriber"), log_handler=on_log) as a,
        client(url, era, message_handler=on_message("other")) as b,
    ):
        with anyio.fail_after(60):
            if era == "legacy":
                await check_log_level_reaches_the_upstream(a, logs)
            async with subscribed(a, era, STATIC_URI, updated["subscriber"]):
                # The upstream sends an update for each subscribed resource at once.
                await b.call_tool("everything_toggle-subscriber-updates", {})
                await wait_until(lambda: STATIC_URI in updated["subscriber"])
                await b.list_tools()  # anything already sent to `b` has arrived by now
                assert updated["other"] == []

            await a.call_tool(
                "everything_toggle-simulated-logging", {}, meta={LOG_LEVEL_META: "debug"}
            )
            await wait_until(lambda: any(m.logger for m in logs))
            assert all((m.logger or "").startswith("everything") for m in logs)

            # `b` declared no sampling: the upstream hears why, and its tool call ends.
            refused = await b.call_tool(
                "everything_trigger-sampling-request",
                {"prompt": "hello", "maxTokens": 5},
                raise_on_error=False,
            )
            assert refused.is_error
            assert "did not declare the 'sampling' capability" in text_of(refused)

            # With calls of two clients in flight on one stdio upstream, a request from it
            # names neither: it is refused rather than put to the wrong client.
            running = anyio.Event()

            async def on_progress(
                progress: float, total: float | None, message: str | None
            ) -> None:
                running.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(
                    functools.partial(
                        a.call_tool,
                        "everything_trigger-long-running-operation",
                        {"duration": 2, "steps": 4},
                        progress_handler=on_progress,
                    )
                )
                await running.wait()
                mixed = await b.call_tool(
                    "everything_trigger-sampling-request",
                    {"prompt": "hello", "maxTokens": 5},
                    raise_on_error=False,
                )
            assert mixed.is_error
            assert "requests of several clients are in flight" in text_of(mixed)


async def check_log_level_reaches_the_upstream(c: Client[Any], logs: list[Any]) -> None:
    """At level "error" server-everything keeps the info line it logs per subscription to
    itself; at "debug" it sends it. Its log lines reach us in order, so once the second has
    arrived the first would have too."""
    quiet, loud = "resource/static/document/extension.md", "resource/static/document/features.md"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MCPDeprecationWarning: 2026-07-28 dropped these
        await c.set_logging_level("error")
        await c.session.subscribe_resource(f"demo://everything/{quiet}")
        await c.set_logging_level("debug")
        await c.session.subscribe_resource(f"demo://everything/{loud}")
    await wait_until(lambda: any(loud in str(m.data) for m in logs))
    assert not any(quiet in str(m.data) for m in logs)


@asynccontextmanager
async def subscribed(c: Client[Any], era: str, uri: str, updates: list[str]) -> AsyncIterator[None]:
    """Follow `uri`: handshake era by resources/subscribe (updates reach the message
    handler), 2026-07-28 by a subscriptions/listen stream (its events go to `updates`)."""
    if era == "legacy":
        with warnings.catch_warnings():  # deprecated in 2026-07-28, which this client is not
            warnings.simplefilter("ignore")  # MCPDeprecationWarning: 2026-07-28 dropped it
            await c.session.subscribe_resource(uri)
            yield
            await c.session.unsubscribe_resource(uri)
        return
    from mcp.client.subscriptions import listen
    from mcp.shared.subscriptions import ResourceUpdated

    async with listen(c.session, resource_subscriptions=[uri]) as stream:

        async def collect() -> None:
            async for event in stream:
                if isinstance(event, ResourceUpdated):
                    updates.append(event.uri)

        async with anyio.create_task_group() as tg:
            tg.start_soon(collect)
            yield
            tg.cancel_scope.cancel()


async def test_roots_come_from_the_calling_client_else_from_the_manifest(
    tmp_path: Path, manifests_dir: Path, write_manifest: WriteManifest
) -> None:
    # toolbox_ask_client asks its client (the gateway) for roots mid-call.
    write_manifest("toolbox", roots=["/srv/project", "file:///data"])
    settings = Settings(data_dir=tmp_path / "data", manifests_dir=manifests_dir)
    gateway = build_gateway(settings, environ=dict(os.environ))
    with anyio.fail_after(60):
        async with Client(gateway, mode="legacy") as without_roots:
            result = await without_roots.call_tool("toolbox_ask_client", {})
            assert result.structured_content == {
                "ping": "ok",
                "roots": ["file:///srv/project", "file:///data"],
            }
        async with Client(gateway, mode="legacy", roots=["file:///client/own"]) as with_roots:
            result = await with_roots.call_tool("toolbox_ask_client", {})
            assert result.structured_content == {"ping": "ok", "roots": ["file:///client/own"]}
