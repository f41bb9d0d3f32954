"""Vectors are checked as the float32 the index stores: overflow to inf and underflow to
zero are refused for stored and query vectors alike, so no search ever scores null."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from fastmcp import Client

from archon_gateway.tools.patterns.embeddings import MiniLMProvider
from tests.patterns.conftest import error_text, pattern_server, structured

pytestmark = pytest.mark.anyio

PATTERN = {"name": "Sort pairs", "text": "pairs.sort(key=lambda pair: pair[1])"}


async def test_vectors_that_overflow_or_vanish_in_float32_are_refused_and_scores_stay_numbers(
    tmp_path: Path, provider: MiniLMProvider, engine: dict[str, Any]
) -> None:
    server, _ = pattern_server(tmp_path, provider, engine)
    with anyio.fail_after(30):
        async with Client(server) as client:
            result = structured(
                await client.call_tool(
                    "pattern_index",
                    {
                        "patterns": [
                            {**PATTERN, "id": "huge", "embedding": [1e300] * 384},
                            {**PATTERN, "id": "tiny", "embedding": [1e-300] * 384},
                            {**PATTERN, "id": "edge", "embedding": [3e38] * 384},
                            {**PATTERN, "id": "good"},
                        ]
                    },
                )
            )
            assert result["indexed"] == ["good"]
            failed = {item["id"]: item["error"] for item in result["failed"]}
            assert "NaN or infinite values (as float32" in failed["huge"]
            assert "no direction as float32" in failed["tiny"]
            assert "no direction as float32" in failed["edge"]  # its norm overflows
            for bad in ([1e300] * 384, [1e-300] * 384):
                refused = await client.call_tool(
                    "pattern_search", {"vector": bad}, raise_on_error=False
                )
                assert refused.is_error, error_text(refused)
            hits = structured(await client.call_tool("pattern_search", {"query": "sort pairs"}))
            assert [hit["id"] for hit in hits["results"]] == ["good"]
            assert all(isinstance(hit["score"], float) for hit in hits["results"])


async def test_a_call_over_the_text_budget_is_refused_naming_the_limit(
    tmp_path: Path, provider: MiniLMProvider
) -> None:
    server, _ = pattern_server(tmp_path, provider)
    with anyio.fail_after(30):
        async with Client(server) as client:
            big = [{"name": f"p{i}", "text": "x" * 200_000} for i in range(50)]
            refused = await client.call_tool(
                "pattern_index", {"patterns": big}, raise_on_error=False
            )
            assert refused.is_error
            assert "over the 8388608-byte limit per call" in error_text(refused)
