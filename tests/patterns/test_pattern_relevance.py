"""Search quality with the real model on a small labelled set shipped with the tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastmcp import Client

from archon_gateway.tools.patterns.embeddings import MiniLMProvider
from tests.patterns.conftest import pattern_server, structured

pytestmark = pytest.mark.anyio

DATA = json.loads((Path(__file__).parent / "data" / "relevance.json").read_text())


async def test_the_right_pattern_is_in_the_top_three_for_nine_queries_in_ten(
    tmp_path: Path, provider: MiniLMProvider
) -> None:
    server, _ = pattern_server(tmp_path, provider)
    queries: list[tuple[str, str]] = [tuple(pair) for pair in DATA["queries"]]
    assert len(queries) >= 30
    missed = []
    async with Client(server) as client:
        result = structured(await client.call_tool("pattern_index", {"patterns": DATA["patterns"]}))
        assert len(result["indexed"]) == len(DATA["patterns"])
        for query, expected in queries:
            hits = structured(
                await client.call_tool("pattern_search", {"query": query, "top_k": 3})
            )["results"]
            if expected not in [hit["id"] for hit in hits]:
                missed.append((query, expected, [hit["id"] for hit in hits]))
    hit_rate = 1 - len(missed) / len(queries)
    assert hit_rate >= 0.9, f"top-3 hit rate {hit_rate:.0%}; missed: {missed}"
