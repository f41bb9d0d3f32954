"""Honest failure behaviour: embedding failures, a model that cannot load, a store built for
another model, a store owned by another process, and a Qdrant server that is not there."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastmcp import Client
from pydantic import SecretStr

from archon_gateway.core.circuit_breaker import BreakerRegistry
from archon_gateway.gateway.app import build_gateway
from archon_gateway.gateway.http import build_http_app
from archon_gateway.gateway.settings import Settings
from archon_gateway.tools.patterns.embeddings import MiniLMProvider
from tests.patterns.conftest import FailingProvider, error_text, pattern_server, structured

pytestmark = pytest.mark.anyio

MODEL = "all-MiniLM-L6-v2-onnx-int8"


def patterns(*texts: str) -> list[dict[str, Any]]:
    return [{"id": f"p{i}", "name": f"pattern {i}", "text": text} for i, text in enumerate(texts)]


async def ids_stored(client: Client, ids: list[str]) -> list[str]:
    stored = []
    for pattern_id in ids:
        result = await client.call_tool("pattern_get", {"id": pattern_id}, raise_on_error=False)
        if not result.is_error:
            stored.append(pattern_id)
    return stored


async def test_embedding_failure_names_the_failed_items_and_indexes_the_others(
    tmp_path: Path, provider: MiniLMProvider, engine: dict[str, Any]
) -> None:
    failing = FailingProvider(provider, fail_marker="POISON")
    server, _ = pattern_server(tmp_path, failing, engine)
    batch = patterns("def a(): pass", "POISON one", "def c(): pass", "POISON two", "def e(): 1")
    with anyio.fail_after(30):
        async with Client(server) as client:
            result = structured(await client.call_tool("pattern_index", {"patterns": batch}))
            assert result["indexed"] == ["p0", "p2", "p4"]
            assert result["failed"] == [
                {
                    "index": index,
                    "id": f"p{index}",
                    "error": f"embedding with {MODEL} failed: "
                    "the model could not process this input",
                }
                for index in (1, 3)
            ]
            # Nothing was written for the failed items.
            assert await ids_stored(client, [f"p{i}" for i in range(5)]) == ["p0", "p2", "p4"]
            assert structured(await client.call_tool("pattern_stats", {}))["count"] == 3

            # A search whose query cannot be embedded is a clear error, not an empty result.
            failed = await client.call_tool(
                "pattern_search", {"query": "POISON"}, raise_on_error=False
            )
            assert error_text(failed) == (
                f"embedding with {MODEL} failed: the model could not process this input"
            )


async def test_an_embedding_that_times_out_fails_its_chunk_only(
    tmp_path: Path, provider: MiniLMProvider
) -> None:
    hanging = FailingProvider(provider, hang_marker="HANG")
    server, _ = pattern_server(tmp_path, hanging, batch_size=2, embed_timeout=0.5)
    batch = patterns("def a(): pass", "def b(): pass", "HANG", "def d(): pass", "def e(): 1")
    with anyio.fail_after(30):
        async with Client(server) as client:
            result = structured(await client.call_tool("pattern_index", {"patterns": batch}))
            assert result["indexed"] == ["p0", "p1", "p4"]
            message = f"embedding with {MODEL} timed out after 0.5 s"
            assert result["failed"] == [
                {"index": 2, "id": "p2", "error": message},
                {"index": 3, "id": "p3", "error": message},
            ]
            assert await ids_stored(client, ["p2", "p3"]) == []


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        (lambda vectors: vectors[:-1], "returned 0 vectors for 1 texts"),
        (lambda vectors: [v[:100] for v in vectors], "the embedding has 100 dimensions"),
        (lambda vectors: [[float("nan")] * len(v) for v in vectors], "NaN or infinite"),
    ],
    ids=["too-few-vectors", "wrong-dimension", "nan"],
)
async def test_vectors_of_the_wrong_shape_are_refused_and_nothing_is_written(
    tmp_path: Path, provider: MiniLMProvider, shape: Any, expected: str
) -> None:
    server, _ = pattern_server(tmp_path, FailingProvider(provider, shape=shape))
    async with Client(server) as client:
        result = await client.call_tool(
            "pattern_index", {"patterns": patterns("a", "b")}, raise_on_error=False
        )
        message = error_text(result)
        assert message.startswith("no pattern was indexed: #0 (p0): ")
        assert "#1 (p1): " in message
        assert expected in message
        assert structured(await client.call_tool("pattern_stats", {}))["count"] == 0


async def test_a_model_file_that_cannot_load_is_a_clear_error_and_the_gateway_stays_up(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "model.onnx"
    broken.write_bytes(b"this is not an onnx model")
    server, _ = pattern_server(tmp_path, MiniLMProvider(model_path=broken))
    async with Client(server) as client:
        result = await client.call_tool(
            "pattern_index", {"patterns": patterns("a")}, raise_on_error=False
        )
        assert error_text(result).startswith(
            f"no pattern was indexed: #0 (p0): the embedding model {MODEL} cannot be loaded "
            f"from {broken}: "
        )
        # Calls that need no embedding still work.
        assert structured(await client.call_tool("pattern_stats", {}))["count"] == 0


class _OtherModel(FailingProvider):
    @property
    def model(self) -> str:
        return "another-model"


async def test_a_store_built_with_another_model_is_refused(
    tmp_path: Path, provider: MiniLMProvider
) -> None:
    first, _ = pattern_server(tmp_path, provider)
    async with Client(first) as client:
        await client.call_tool("pattern_index", {"patterns": patterns("a")})

    second, tools = pattern_server(tmp_path, _OtherModel(provider))
    async with Client(second) as client:
        result = await client.call_tool("pattern_stats", {}, raise_on_error=False)
        assert error_text(result) == (
            f"the pattern store at {tmp_path / 'patterns'} holds 384-d vectors from {MODEL!r}, "
            "but this gateway embeds with 'another-model' (384-d); use another "
            "ARCHON_PATTERNS_COLLECTION or re-index into a new one"
        )
        assert tools.health().status == "down"


async def test_an_unreachable_qdrant_server_is_a_clear_error_and_the_gateway_stays_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, refused_port: int
) -> None:
    url = f"http://127.0.0.1:{refused_port}"
    secret = "s3cret-api-key-value"
    settings = Settings(data_dir=tmp_path, qdrant_url=url, qdrant_api_key=SecretStr(secret))
    server = build_gateway(settings)
    caplog.set_level(logging.DEBUG)
    web = httpx.AsyncClient(transport=httpx.ASGITransport(build_http_app(server, "/mcp")))
    with anyio.fail_after(30):
        async with Client(server) as client, web:
            health = (await web.get("http://gateway/health")).json()
            assert health["components"]["vector_store"]["status"] == "ok"
            assert "opens on first use" in health["components"]["vector_store"]["detail"]

            for tool, arguments in [
                ("pattern_search", {"query": "anything"}),
                ("pattern_index", {"patterns": patterns("a")}),
            ]:
                result = await client.call_tool(tool, arguments, raise_on_error=False)
                message = error_text(result)
                assert message.startswith(f"the Qdrant server at {url} is unreachable (")
                assert message.endswith("); is it running?")

            health = (await web.get("http://gateway/health")).json()
            assert health["status"] == "degraded"  # the gateway still serves other tools
            assert health["components"]["vector_store"]["status"] == "down"
            assert "unreachable" in health["components"]["vector_store"]["detail"]

            # The gateway itself answers as before.
            info = structured(await client.call_tool("gateway_info", {}))
            assert info["components"]["vector_store"]["status"] == "down"
    assert secret not in caplog.text
    assert secret not in str(health)


@pytest.mark.processes
async def test_a_killed_qdrant_server_opens_the_breaker_and_calls_recover_when_it_returns(
    tmp_path: Path, provider: MiniLMProvider, refused_port: int
) -> None:
    from tests.patterns.conftest import standin_server

    now = [1000.0]
    breakers = BreakerRegistry(fail_max=3, reset_timeout=30, clock=lambda: now[0])
    # Held for the whole test: nothing else takes the port while the stand-in is down.
    port = refused_port
    store = tmp_path / "qdrant"
    url = f"http://127.0.0.1:{port}"
    with anyio.fail_after(60):
        server, tools = pattern_server(tmp_path, provider, qdrant_url=url, breakers=breakers)
        breaker = breakers.get("qdrant")
        assert breaker is not None
        async with Client(server) as client:
            with standin_server(port, store):
                indexed = await client.call_tool("pattern_index", {"patterns": patterns("a")})
                assert structured(indexed)["indexed"] == ["p0"]
                # A request error (unknown id) is not an outage: the breaker stays closed.
                missing = await client.call_tool("pattern_get", {"id": "x"}, raise_on_error=False)
                assert error_text(missing) == "no pattern with id 'x'"
                assert breaker.current_state == "closed"
            # The server process has been killed (SIGKILL): each call says so...
            for _ in range(3):
                result = await client.call_tool("pattern_get", {"id": "p0"}, raise_on_error=False)
                assert error_text(result).startswith(f"the Qdrant server at {url} is unreachable")
            # ...until the breaker opens; then calls fail fast without trying the network.
            assert breaker.current_state == "open"
            result = await client.call_tool("pattern_get", {"id": "p0"}, raise_on_error=False)
            assert error_text(result) == "qdrant unavailable (circuit open, retry in 30 s)"
            health = tools.health()
            assert health.status == "down"
            assert "circuit open, retry in 30 s" in health.detail

            with standin_server(port, store):
                now[0] += 31  # the reset timeout passes: one trial call goes through
                assert breaker.current_state == "half_open"
                got = structured(await client.call_tool("pattern_get", {"id": "p0"}))
                assert got["text"] == "a"
                assert breaker.current_state == "closed"
                assert tools.health().status == "ok"


async def test_a_lock_file_left_by_a_dead_process_does_not_block_the_store(
    tmp_path: Path, provider: MiniLMProvider
) -> None:
    lock = tmp_path / "patterns" / "owner.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text("999999\n")  # written, but no process holds the lock any more
    server, tools = pattern_server(tmp_path, provider)
    async with Client(server) as client:
        assert structured(await client.call_tool("pattern_stats", {}))["count"] == 0
        assert tools.health().status == "ok"
