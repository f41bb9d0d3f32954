"""The one small interface the pattern tools need from a vector engine, and its data types.

Two adapters implement `VectorIndex`: `tools.patterns.edge.EdgeIndex` (Qdrant Edge, the
Qdrant engine in-process, the default) and `tools.patterns.qdrant_server.QdrantServerIndex`
(a Qdrant server through `AsyncQdrantClient`). Both are async context managers; ids are
UUID strings; vectors are compared by cosine similarity; payloads are JSON objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from archon_gateway.core.health import ComponentStatus

# Payload fields the tools filter on; both adapters create a keyword index for each.
KEYWORD_FIELDS = ("language", "kind", "tags")


@dataclass(frozen=True)
class VectorPoint:
    id: str
    vector: Sequence[float]
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class StoredPoint:
    id: str
    payload: dict[str, Any]
    vector: list[float] | None = None


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    payload: dict[str, Any]


@dataclass(frozen=True)
class Match:
    """Keep points whose payload `key` equals `value` (for a list field: contains it).
    Several matches must all hold."""

    key: str
    value: str


@dataclass(frozen=True)
class Query:
    vector: Sequence[float]
    limit: int
    score_threshold: float | None = None
    must: Sequence[Match] = field(default_factory=tuple)


class VectorIndex(Protocol):
    """One collection of vectors of a fixed dimension with JSON payloads."""

    @property
    def location(self) -> str:
        """Where the vectors live (a path or a server URL), for messages and stats."""
        ...

    @property
    def backend(self) -> str:
        """ "qdrant-edge" or "qdrant-server"."""
        ...

    async def ensure_collection(self, model: str, dimension: int) -> None:
        """Create the collection for `model` vectors of `dimension`, or check that the
        existing one was made for the same; raises IncompatibleVectorStore if not."""
        ...

    async def upsert(self, points: Sequence[VectorPoint]) -> None: ...

    async def set_payload(self, point_id: str, payload: Mapping[str, Any]) -> None:
        """Merge `payload` into an existing point's payload."""
        ...

    async def retrieve(
        self, ids: Sequence[str], *, with_vectors: bool = False
    ) -> list[StoredPoint]:
        """The points among `ids` that exist (missing ids are left out)."""
        ...

    async def delete(self, ids: Sequence[str]) -> None: ...

    async def search(self, query: Query) -> list[Hit]:
        """Nearest first, at most `query.limit`, none scoring below the threshold."""
        ...

    async def count(self) -> int: ...

    async def facet(self, key: str, limit: int = 50) -> dict[str, int]:
        """How many points carry each value of the keyword field `key`."""
        ...

    def health(self) -> ComponentStatus:
        """Cheap, synchronous: the state as last observed (for /health)."""
        ...
