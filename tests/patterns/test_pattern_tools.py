"""The pattern tools through a real MCP client (FastMCP in-memory), on both vector engines,
with the real embedding model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from fastmcp import Client

from archon_gateway.tools.patterns.embeddings import MiniLMProvider
from tests.patterns.conftest import error_text, pattern_server, structured

pytestmark = pytest.mark.anyio

SORT = {
    "name": "Sort a list of tuples by the second element",
    "text": "pairs.sort(key=lambda pair: pair[1])",
    "language": "Python",
    "kind": "snippet",
    "tags": ["Sorting", "lists"],
}
READ = {
    "name": "Read a text file line by line",
    "text": "with open(path, encoding='utf-8') as handle:\n    for line in handle:\n        ...",
    "language": "python",
    "kind": "idiom",
    "tags": ["io", "files"],
}
FETCH = {
    "name": "Fetch JSON over HTTP",
    "text": "const data = await (await fetch(url)).json();",
    "language": "javascript",
    "kind": "snippet",
    "tags": ["http", "json"],
}


async def index(client: Client, *patterns: dict[str, Any]) -> dict[str, Any]:
    return structured(await client.call_tool("pattern_index", {"patterns": list(patterns)}))


async def search(client: Client, **arguments: Any) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = structured(await client.call_tool("pattern_search", arguments))[
        "results"
    ]
    return results


async def test_index_without_embeddings_computes_them_and_get_returns_the_pattern(
    tmp_path: Path, provider: MiniLMProvider, engine: dict[str, Any]
) -> None:
    server, _ = pattern_server(tmp_path, provider, engine)
    with anyio.fail_after(30):
        async with Client(server) as client:
            result = await index(client, SORT, {**READ, "id": "read-lines"})
            assert result["failed"] == []
            sort_id, read_id = result["indexed"]
            assert read_id == "read-lines"

            got = structured(
                await client.call_tool("pattern_get", {"id": sort_id, "with_embedding": True})
            )
            assert got["name"] == SORT["name"]
            assert got["text"] == SORT["text"]
            assert got["language"] == "python"  # stored lower-case
            assert got["tags"] == ["sorting", "lists"]
            assert got["created"] == got["updated"]
            expected = (await provider.embed([f"{SORT['name']}\n{SORT['text']}"]))[0]
            assert len(got["embedding"]) == provider.dimension
            assert _cosine(got["embedding"], expected) > 0.999

            stats = structured(await client.call_tool("pattern_stats", {}))
            assert stats["count"] == 2
            assert stats["dimension"] == 384
            assert stats["model"] == "all-MiniLM-L6-v2-onnx-int8"
            assert stats["languages"] == {"python": 2}
            assert stats["kinds"] == {"snippet": 1, "idiom": 1}


async def test_reindexing_the_same_pattern_updates_it_in_place_and_keeps_created(
    tmp_path: Path, provider: MiniLMProvider, engine: dict[str, Any]
) -> None:
    server, _ = pattern_server(tmp_path, provider, engine)
    with anyio.fail_after(30):
        async with Client(server) as client:
            first = await index(client, SORT)
            before = structured(await client.call_tool("pattern_get", {"id": first["indexed"][0]}))
            await anyio.sleep(0.01)  # time that must pass: `updated` is a timestamp
            again = await index(client, {**SORT, "tags": ["again"]})
            assert again["indexed"] == first["indexed"]  # deterministic id
            after = structured(await client.call_tool("pattern_get", {"id": first["indexed"][0]}))
            assert after["tags"] == ["again"]
            assert after["created"] == before["created"]
            assert after["updated"] > before["updated"]
            assert structured(await client.call_tool("pattern_stats", {}))["count"] == 1


async def test_index_with_embeddings_checks_their_dimension_and_stores_them_as_given(
    tmp_path: Path, provider: MiniLMProvider, engine: dict[str, Any]
) -> None:
    # A vector of another text, so the test can tell a given vector from a computed one.
    given = (await provider.embed(["database connection pooling"]))[0]
    server, _ = pattern_server(tmp_path, provider, engine)
    with anyio.fail_after(30):
        async with Client(server) as client:
            result = await index(
                client,
                {**SORT, "id": "given", "embedding": given},
                {**READ, "id": "short", "embedding": [0.1, 0.2, 0.3]},
                {**FETCH, "id": "zeros", "embedding": [0.0] * 384},
                {**FETCH, "id": "computed"},
            )
            assert result["indexed"] == ["given", "computed"]
            failed = {item["id"]: item for item in result["failed"]}
            assert failed["short"]["index"] == 1
            assert failed["short"]["error"] == (
                "patterns[1].embedding has 3 dimensions; this store holds 384-d vectors "
                "(all-MiniLM-L6-v2-onnx-int8)"
            )
            assert "all zeros" in failed["zeros"]["error"]
            missing = await client.call_tool("pattern_get", {"id": "short"}, raise_on_error=False)
            assert error_text(missing) == "no pattern with id 'short'"

            hits = await search(client, vector=given, top_k=1)
            assert hits[0]["id"] == "given"
            assert hits[0]["score"] == pytest.approx(1.0, abs=1e-4)

            only_bad = await client.call_tool(
                "pattern_index",
                {"patterns": [{**READ, "embedding": [1.0, 2.0]}]},
                raise_on_error=False,
            )
            assert error_text(only_bad).startswith("no pattern was indexed: #0 (")
            assert "has 2 dimensions" in error_text(only_bad)


async def test_search_returns_nearest_first_and_filters_on_language_kind_and_tags(
    tmp_path: Path, provider: MiniLMProvider, engine: dict[str, Any]
) -> None:
    server, _ = pattern_server(tmp_path, provider, engine)
    with anyio.fail_after(30):
        async with Client(server) as client:
            await index(client, {**SORT, "id": "sort"}, {**READ, "id": "read"})
            await index(client, {**FETCH, "id": "fetch"})

            hits = await search(client, query="order pairs by their second item")
            assert hits[0]["id"] == "sort"
            assert len(hits) == 3
            assert hits == sorted(hits, key=lambda hit: -hit["score"])
            assert set(hits[0]) >= {"id", "name", "score", "language", "kind", "tags", "text"}

            assert [h["id"] for h in await search(client, query="sort", top_k=2)] == [
                "sort",
                hits[1]["id"],
            ]
            assert [h["id"] for h in await search(client, query="sort", language="JavaScript")] == [
                "fetch"
            ]
            assert {h["id"] for h in await search(client, query="x", kind="snippet")} == {
                "sort",
                "fetch",
            }
            assert [h["id"] for h in await search(client, query="x", tags=["io", "files"])] == [
                "read"
            ]
            assert await search(client, query="x", tags=["io", "http"]) == []
            assert await search(client, query="x", language="python", kind="nothing") == []


async def test_search_with_a_threshold_leaves_out_weaker_matches(
    tmp_path: Path, provider: MiniLMProvider, engine: dict[str, Any]
) -> None:
    server, _ = pattern_server(tmp_path, provider, engine)
    with anyio.fail_after(30):
        async with Client(server) as client:
            await index(client, {**SORT, "id": "sort"}, {**READ, "id": "read"})
            await index(client, {**FETCH, "id": "fetch"})
            everything = await search(client, query="sort a list of tuples by second element")
            assert len(everything) == 3
            best, second = everything[0]["score"], everything[1]["score"]
            assert everything[0]["id"] == "sort"
            assert best > second
            cut = (best + second) / 2
            kept = await search(
                client, query="sort a list of tuples by second element", score_threshold=cut
            )
            assert [hit["id"] for hit in kept] == ["sort"]
            assert all(hit["score"] >= cut for hit in kept)
            assert await search(client, query="sort a list of tuples", score_threshold=0.9999) == []


async def test_update_reembeds_a_new_text_and_keeps_the_vector_for_metadata_changes(
    tmp_path: Path, provider: MiniLMProvider, engine: dict[str, Any]
) -> None:
    server, _ = pattern_server(tmp_path, provider, engine)
    with anyio.fail_after(30):
        async with Client(server) as client:
            await index(client, {**SORT, "id": "p"}, {**READ, "id": "other"})
            before = structured(
                await client.call_tool("pattern_get", {"id": "p", "with_embedding": True})
            )

            meta = structured(
                await client.call_tool("pattern_update", {"id": "p", "tags": ["x"], "quality": 1})
            )
            assert meta["reembedded"] is False
            assert meta["pattern"]["tags"] == ["x"]
            kept = structured(
                await client.call_tool("pattern_get", {"id": "p", "with_embedding": True})
            )
            assert kept["embedding"] == pytest.approx(before["embedding"])
            assert kept["quality"] == 1
            assert kept["text"] == SORT["text"]

            new_text = "import smtplib\nserver.sendmail(sender, recipients, message)"
            changed = structured(
                await client.call_tool(
                    "pattern_update", {"id": "p", "text": new_text, "name": "Send an email"}
                )
            )
            assert changed["reembedded"] is True
            assert changed["pattern"]["tags"] == ["x"]  # metadata survives the new text
            hits = await search(client, query="send mail to a list of recipients", top_k=1)
            assert hits[0]["id"] == "p"
            assert hits[0]["text"] == new_text
            old = await search(client, query="sort a list of tuples by second element", top_k=1)
            assert old[0]["id"] == "other" or old[0]["score"] < 0.3

            given = (await provider.embed(["completely different"]))[0]
            replaced = structured(
                await client.call_tool("pattern_update", {"id": "p", "embedding": given})
            )
            assert replaced["reembedded"] is True
            assert (await search(client, vector=given, top_k=1))[0]["id"] == "p"


async def test_delete_removes_a_pattern_and_reports_whether_it_existed(
    tmp_path: Path, provider: MiniLMProvider, engine: dict[str, Any]
) -> None:
    server, _ = pattern_server(tmp_path, provider, engine)
    async with Client(server) as client:
        await index(client, {**SORT, "id": "p"})
        assert structured(await client.call_tool("pattern_delete", {"id": "p"}))["deleted"]
        assert not structured(await client.call_tool("pattern_delete", {"id": "p"}))["deleted"]
        assert await search(client, query="sort") == []
        assert structured(await client.call_tool("pattern_stats", {}))["count"] == 0


async def test_batch_indexing_writes_in_chunks_and_reports_progress(
    tmp_path: Path, provider: MiniLMProvider
) -> None:
    server, _ = pattern_server(tmp_path, provider, batch_size=4)
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    patterns = [{"name": f"helper {i}", "text": f"def helper_{i}(): return {i}"} for i in range(10)]
    async with Client(server) as client:
        result = structured(
            await client.call_tool(
                "pattern_index", {"patterns": patterns}, progress_handler=on_progress
            )
        )
        assert len(result["indexed"]) == 10
        assert len(set(result["indexed"])) == 10
        assert [(p, t) for p, t, _ in seen] == [(4, 10), (8, 10), (10, 10)]
        assert seen[-1][2] == "indexed 10/10 patterns"


async def test_bad_arguments_get_one_clear_error_naming_the_argument(
    tmp_path: Path, provider: MiniLMProvider
) -> None:
    server, _ = pattern_server(tmp_path, provider)
    async with Client(server) as client:

        async def fails(tool: str, arguments: dict[str, Any]) -> str:
            return error_text(await client.call_tool(tool, arguments, raise_on_error=False))

        assert await fails("pattern_search", {}) == "give exactly one of query (text) or vector"
        assert await fails("pattern_search", {"query": "a", "vector": [1.0]}) == (
            "give exactly one of query (text) or vector"
        )
        assert "top_k" in await fails("pattern_search", {"query": "a", "top_k": 0})
        assert "has 2 dimensions" in await fails("pattern_search", {"vector": [1.0, 0.0]})
        assert await fails("pattern_search", {"query": "  "}) == (
            "query is blank: give the text to search for"
        )
        assert "nothing to update" in await fails("pattern_update", {"id": "x"})
        assert await fails("pattern_update", {"id": "x", "name": "n"}) == ("no pattern with id 'x'")
        assert "patterns" in await fails("pattern_index", {"patterns": []})
        assert "name" in await fails("pattern_index", {"patterns": [{"text": "t"}]})
        duplicate = structured(
            await client.call_tool(
                "pattern_index", {"patterns": [{**SORT, "id": "d"}, {**READ, "id": "d"}]}
            )
        )
        assert duplicate["indexed"] == ["d"]
        assert duplicate["failed"] == [
            {"index": 1, "id": "d", "error": "duplicate id 'd' in this request (also at index 0)"}
        ]


async def test_the_store_survives_a_restart_of_the_server(
    tmp_path: Path, provider: MiniLMProvider
) -> None:
    server, _ = pattern_server(tmp_path, provider)
    async with Client(server) as client:
        await index(client, {**SORT, "id": "kept"})
    # The lifespan has ended: the shard is closed and its owner lock released.
    assert (tmp_path / "patterns" / "owner.lock").read_text() == ""
    again, _ = pattern_server(tmp_path, provider)
    async with Client(again) as client:
        assert (
            structured(await client.call_tool("pattern_get", {"id": "kept"}))["name"]
            == (SORT["name"])
        )


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = (sum(x * x for x in a) * sum(y * y for y in b)) ** 0.5
    return dot / norm


async def test_the_embedded_store_indexes_the_filter_fields(
    tmp_path: Path, provider: MiniLMProvider
) -> None:
    from archon_gateway.tools.patterns.edge import EdgeIndex

    async with EdgeIndex(tmp_path / "store") as store:
        await store.ensure_collection(provider.model, provider.dimension)
        assert await store.payload_indexes() == {
            "language": "Keyword",
            "kind": "Keyword",
            "tags": "Keyword",
        }
