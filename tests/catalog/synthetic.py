"""The synthetic catalog and the labelled search queries (tests/catalog/data), shared by
tests/catalog/test_search_quality.py, synthetic_server.py and scripts/bench/catalog.py."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
INTEGER_PARAMS = frozenset(
    {"limit", "replicas", "issue_number", "pull_number", "amount", "expires_in", "tail"}
    | {"duration_minutes", "run_id", "board_id", "max_length", "priority"}
)


def definitions(namespace: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """MCP tool definitions by namespace (upstream), as a server would list them."""
    raw: dict[str, list[list[Any]]] = json.loads((DATA / "synthetic_tools.json").read_text())
    return {
        space: [_definition(*tool) for tool in tools]
        for space, tools in raw.items()
        if namespace in (None, space)
    }


def _definition(name: str, description: str, params: dict[str, str]) -> dict[str, Any]:
    properties = {
        key: {"type": "integer" if key in INTEGER_PARAMS else "string", "description": text}
        for key, text in params.items()
    }
    return {
        "name": name,
        "description": description,
        "inputSchema": {
            "type": "object",
            "properties": properties,
            "required": list(params)[:1],
        },
    }


# The labelled set the goal is stated on (its tuning and held-out halves), and the fresh
# queries written after tuning (see search_queries.json's "about").
LABELLED = ("tune", "held-out")
QUERY_SETS = ("tune", "held-out", "fresh")


@dataclass(frozen=True)
class Labelled:
    query: str
    expected: tuple[str, ...]
    set: str


def labelled_queries(sets: Sequence[str] = LABELLED) -> list[Labelled]:
    """The queries of `sets` (default: the 72 of the labelled set, both halves)."""
    raw = json.loads((DATA / "search_queries.json").read_text())
    return [
        Labelled(item["query"], tuple(item["expected"]), item["set"])
        for item in raw["queries"]
        if item["set"] in sets
    ]


@dataclass(frozen=True)
class Quality:
    recall_at_3: float
    mrr: float
    misses: list[str]


def quality(search: Callable[[str], Sequence[str]], queries: Sequence[Labelled]) -> Quality:
    """Recall@3 and mean reciprocal rank (first relevant hit in the top 10) of `search`."""
    found, reciprocal, misses = 0, 0.0, []
    for item in queries:
        ranked = list(search(item.query))[:10]
        ranks = [ranked.index(name) + 1 for name in item.expected if name in ranked]
        best = min(ranks) if ranks else None
        if best is not None and best <= 3:
            found += 1
        else:
            misses.append(f"{item.query!r} -> {ranked[:3]} (want {list(item.expected)})")
        reciprocal += 1 / best if best else 0.0
    return Quality(found / len(queries), reciprocal / len(queries), misses)
