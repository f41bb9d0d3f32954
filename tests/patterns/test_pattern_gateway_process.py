"""The pattern tools in a real `archon-gateway serve` process over streamable HTTP: many
clients indexing at once, /health, the one-owner rule for the embedded store, and a clean
close at shutdown."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastmcp import Client

from archon_gateway.core.errors import VectorStoreUnavailable
from archon_gateway.gateway.app import build_gateway
from archon_gateway.gateway.settings import Settings
from archon_gateway.tools.patterns.edge import EdgeIndex
from tests.patterns.conftest import error_text, structured
from tests.support import running_http_gateway

pytestmark = [pytest.mark.anyio, pytest.mark.processes]

CLIENTS = 4
SHARED = 6  # every client indexes these same patterns
OWN = 6  # and these of its own


def shared(j: int) -> dict[str, Any]:
    return {"id": f"shared-{j}", "name": f"shared helper {j}", "text": f"def shared_{j}(): ..."}


def own(k: int, j: int) -> dict[str, Any]:
    return {
        "id": f"c{k}-{j}",
        "name": f"client {k} helper {j}",
        "text": f"def client_{k}_helper_{j}(value):\n    return value * {j}",
        "tags": [f"client-{k}"],
    }


async def test_many_clients_index_at_once_without_lost_writes_or_duplicate_ids(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    store = tmp_path / "data" / "patterns" / "patterns"
    with anyio.fail_after(90):
        async with running_http_gateway(gateway_env, tmp_path) as (process, url, _):
            base = url.removesuffix("/mcp")

            async def one_client(k: int) -> None:
                mine = [own(k, j) for j in range(OWN)] + [shared(j) for j in range(SHARED)]
                async with Client(url) as client:
                    # Three calls of four patterns each, interleaved with the other clients.
                    for start in range(0, len(mine), 4):
                        result = structured(
                            await client.call_tool(
                                "pattern_index", {"patterns": mine[start : start + 4]}
                            )
                        )
                        assert result["failed"] == []
                        assert result["indexed"] == [p["id"] for p in mine[start : start + 4]]

            async with anyio.create_task_group() as tg:
                for k in range(CLIENTS):
                    tg.start_soon(one_client, k)

            async with Client(url) as client:
                stats = structured(await client.call_tool("pattern_stats", {}))
                assert stats["count"] == SHARED + CLIENTS * OWN
                assert stats["tags"] == {f"client-{k}": OWN for k in range(CLIENTS)}
                for k in range(CLIENTS):
                    for j in range(OWN):
                        got = structured(await client.call_tool("pattern_get", {"id": f"c{k}-{j}"}))
                        assert got["text"] == own(k, j)["text"]
                hits = structured(
                    await client.call_tool(
                        "pattern_search", {"query": "shared helper 3", "top_k": 40}
                    )
                )["results"]
                ids = [hit["id"] for hit in hits]
                assert len(ids) == len(set(ids)) == SHARED + CLIENTS * OWN

            async with httpx.AsyncClient(base_url=base) as web:
                component = (await web.get("/health")).json()["components"]["vector_store"]
            assert component == {
                "status": "ok",
                "detail": f"qdrant-edge at {store}, all-MiniLM-L6-v2-onnx-int8 (384-d)",
            }

            # The one-owner rule, across processes: this test process cannot open the store.
            with pytest.raises(VectorStoreUnavailable) as refused:
                async with EdgeIndex(store):
                    pass
            assert f"is in use by pid {process.pid};" in str(refused.value)

            # Nor can a second gateway; it says so and otherwise keeps working.
            second = build_gateway(Settings(data_dir=tmp_path / "data"))
            async with Client(second) as client:
                result = await client.call_tool("pattern_stats", {}, raise_on_error=False)
                assert error_text(result).startswith(
                    f"the pattern store at {store} is in use by pid {process.pid}; "
                )
                assert not (await client.call_tool("gateway_info", {})).is_error

                # Shutdown closes the shard and releases it: the second gateway takes over
                # and finds every pattern.
                process.send_signal(signal.SIGTERM)
                assert await process.wait() == 0
                stats = structured(await client.call_tool("pattern_stats", {}))
                assert stats["count"] == SHARED + CLIENTS * OWN
