"""What the pattern tools do, independent of MCP: ids, embedding, batching, failures.

Ids are deterministic: a pattern's id is the caller's, or a UUIDv5 of its name and text;
the point id in the vector store is a UUIDv5 of that id. Re-indexing a pattern therefore
updates it in place (keeping its `created` time) and concurrent writers can never create
two copies of one pattern. Writes of one gateway are serialised (read-merge-write of the
payload is atomic); embedding runs outside that lock.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio

from archon_gateway.core.errors import (
    EmbeddingFailed,
    EmbeddingTimeout,
    GatewayError,
    InvalidArgument,
    NotFound,
)
from archon_gateway.core.text import one_line
from archon_gateway.tools.patterns.embeddings import EmbeddingProvider
from archon_gateway.tools.patterns.index import Match, Query, VectorIndex, VectorPoint
from archon_gateway.tools.patterns.models import (
    DeleteResult,
    IndexFailure,
    IndexResult,
    PatternIn,
    PatternOut,
    PatternStats,
    SearchHit,
    SearchResult,
    UpdateResult,
)

NAMESPACE = uuid.UUID("6f1c3a52-8d0e-5b7a-9c41-2e7d5a0b9f10")
MAX_TOP_K = 100

Progress = Callable[[int, int, str], Awaitable[None]]


def content_id(name: str, text: str) -> str:
    """The id of a pattern indexed without one."""
    return str(uuid.uuid5(NAMESPACE, f"content\x00{name}\x00{text}"))


def embedding_text(pattern: PatternIn | dict[str, Any]) -> str:
    """What is embedded: the name (a short description) and the text."""
    if isinstance(pattern, PatternIn):
        return f"{pattern.name}\n{pattern.text}"
    return f"{pattern.get('name', '')}\n{pattern.get('text', '')}"


def point_id(pattern_id: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"pattern\x00{pattern_id}"))


@dataclass
class _Item:
    index: int
    pattern: PatternIn
    id: str
    vector: list[float] | None = None
    error: GatewayError | None = None


class PatternService:
    def __init__(
        self,
        index: VectorIndex,
        provider: EmbeddingProvider,
        *,
        batch_size: int = 64,
        embed_timeout: float = 60.0,
        max_request_text_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.index = index
        self.provider = provider
        self._batch_size = batch_size
        self._max_request_text_bytes = max_request_text_bytes
        self._embed_timeout = embed_timeout
        self._write_lock = anyio.Lock()

    # -- indexing ------------------------------------------------------------------------

    async def index_patterns(
        self, patterns: Sequence[PatternIn], progress: Progress | None = None
    ) -> IndexResult:
        if not patterns:
            raise InvalidArgument("patterns is empty: give at least one pattern to index")
        items = [
            _Item(i, p, p.id if p.id is not None else content_id(p.name, p.text))
            for i, p in enumerate(patterns)
        ]
        first_seen: dict[str, int] = {}
        for item in items:
            if item.id in first_seen:
                item.error = InvalidArgument(
                    f"duplicate id {item.id!r} in this request (also at index "
                    f"{first_seen[item.id]})"
                )
            else:
                first_seen[item.id] = item.index
        text_bytes = sum(len(p.text.encode()) for p in patterns)
        if text_bytes > self._max_request_text_bytes:
            raise InvalidArgument(
                f"patterns carry {text_bytes} bytes of text, over the "
                f"{self._max_request_text_bytes}-byte limit per call; split the batch"
            )
        total, done = len(items), 0
        store_error: GatewayError | None = None
        for start in range(0, total, self._batch_size):
            chunk = items[start : start + self._batch_size]
            if store_error is None:
                await self._embed_chunk([i for i in chunk if i.error is None])
                try:
                    await self._write_chunk([i for i in chunk if i.error is None])
                except GatewayError as exc:  # store down, circuit open, request rejected
                    store_error = exc
            if store_error is not None:
                for item in chunk:
                    item.error = item.error or store_error
            done += len(chunk)
            if progress is not None:
                await progress(done, total, f"indexed {done}/{total} patterns")
        indexed = [item.id for item in items if item.error is None]
        failed = [
            IndexFailure(index=item.index, id=item.id, error=str(item.error))
            for item in items
            if item.error is not None
        ]
        if not indexed:
            first = next(item.error for item in items if item.error is not None)
            shown = "; ".join(f"#{f.index} ({f.id}): {f.error}" for f in failed[:5])
            more = f"; and {len(failed) - 5} more" if len(failed) > 5 else ""
            raise _same_kind(first, f"no pattern was indexed: {shown}{more}")
        return IndexResult(indexed=indexed, failed=failed)

    async def _embed_chunk(self, items: list[_Item]) -> None:
        """Fill `vector` or `error` of every item; one item's failure never fails another."""
        to_embed: list[_Item] = []
        for item in items:
            given = item.pattern.embedding
            if given is None:
                to_embed.append(item)
                continue
            try:
                item.vector = self.check_vector(given, f"patterns[{item.index}].embedding")
            except InvalidArgument as exc:
                item.error = exc
        if not to_embed:
            return
        try:
            vectors = await self._embed([embedding_text(i.pattern) for i in to_embed])
        except EmbeddingFailed as exc:
            if len(to_embed) == 1 or isinstance(exc, EmbeddingTimeout):
                for item in to_embed:
                    item.error = exc
                return
            # Find out which texts fail: embed the rest one by one.
            for item in to_embed:
                try:
                    item.vector = (await self._embed([embedding_text(item.pattern)]))[0]
                except EmbeddingFailed as single:
                    item.error = single
            return
        for item, vector in zip(to_embed, vectors, strict=True):
            item.vector = vector

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        """The provider's vectors, checked; every failure becomes EmbeddingFailed."""
        model = self.provider.model
        try:
            with anyio.fail_after(self._embed_timeout):
                vectors = await self.provider.embed(texts)
        except TimeoutError as exc:
            raise EmbeddingTimeout(
                f"embedding with {model} timed out after {self._embed_timeout:g} s"
            ) from exc
        except EmbeddingFailed:
            raise
        except Exception as exc:
            raise EmbeddingFailed(f"embedding with {model} failed: {one_line(exc)}") from exc
        if len(vectors) != len(texts):
            raise EmbeddingFailed(
                f"embedding with {model} returned {len(vectors)} vectors for {len(texts)} texts"
            )
        checked: list[list[float]] = []
        for vector in vectors:
            try:
                checked.append(self.check_vector(vector, "the embedding"))
            except InvalidArgument as exc:
                raise EmbeddingFailed(f"{model} returned a bad vector: {exc}") from exc
        return checked

    def check_vector(self, vector: Sequence[float], what: str) -> list[float]:
        dimension = self.provider.dimension
        if len(vector) != dimension:
            raise InvalidArgument(
                f"{what} has {len(vector)} dimensions; this store holds {dimension}-d vectors "
                f"({self.provider.model})"
            )
        import numpy as np

        # Checked as the float32 the index stores: 1e300 is finite as a float64 but inf
        # in float32, and 1e-300 is non-zero as a float64 but 0 in float32.
        with np.errstate(over="ignore", under="ignore"):
            stored = np.asarray(vector, dtype=np.float64).astype(np.float32)
            # The norm as the index computes it (in float32): it must not overflow either.
            norm = float(np.linalg.norm(stored))
        if not np.isfinite(stored).all():
            raise InvalidArgument(
                f"{what} contains NaN or infinite values (as float32: |x| must be < 3.4e38)"
            )
        if norm == 0.0 or not math.isfinite(norm):
            raise InvalidArgument(
                f"{what} has no direction as float32 (all zeros, or a norm that underflows "
                "or overflows; cosine similarity needs a finite non-zero norm)"
            )
        return [float(x) for x in stored]

    async def _write_chunk(self, items: list[_Item]) -> None:
        ready = [item for item in items if item.vector is not None]
        if not ready:
            return
        now = _now()
        async with self._write_lock:
            existing = {
                stored.id: stored.payload
                for stored in await self.index.retrieve([point_id(i.id) for i in ready])
            }
            points = []
            for item in ready:
                pid = point_id(item.id)
                created = existing.get(pid, {}).get("created", now)
                payload = _payload(item.id, item.pattern, created=created, updated=now)
                assert item.vector is not None
                points.append(VectorPoint(pid, item.vector, payload))
            await self.index.upsert(points)

    # -- reading -------------------------------------------------------------------------

    async def search(
        self,
        *,
        query: str | None,
        vector: Sequence[float] | None,
        top_k: int,
        score_threshold: float | None,
        language: str | None,
        kind: str | None,
        tags: Sequence[str],
    ) -> SearchResult:
        if (query is None) == (vector is None):
            raise InvalidArgument("give exactly one of query (text) or vector")
        if vector is not None:
            target = self.check_vector(vector, "vector")
        else:
            assert query is not None
            if not query.strip():
                raise InvalidArgument("query is blank: give the text to search for")
            target = (await self._embed([query]))[0]
        must = [Match(key, value.strip().lower()) for key, value in _filters(language, kind)]
        must += [Match("tags", tag.strip().lower()) for tag in tags]
        hits = await self.index.search(
            Query(target, limit=top_k, score_threshold=score_threshold, must=must)
        )
        # A point stored before vectors were checked as float32 can score NaN: never shown.
        hits = [hit for hit in hits if hit.score is not None and math.isfinite(hit.score)]
        return SearchResult(
            results=[
                SearchHit(
                    id=hit.payload.get("id", hit.id),
                    name=hit.payload.get("name", ""),
                    score=hit.score,
                    language=hit.payload.get("language"),
                    kind=hit.payload.get("kind"),
                    tags=hit.payload.get("tags") or [],
                    text=hit.payload.get("text", ""),
                    source=hit.payload.get("source"),
                    quality=hit.payload.get("quality"),
                )
                for hit in hits
            ]
        )

    async def get(self, pattern_id: str, *, with_embedding: bool = False) -> PatternOut:
        found = await self.index.retrieve([point_id(pattern_id)], with_vectors=with_embedding)
        if not found:
            raise NotFound(f"no pattern with id {pattern_id!r}")
        return PatternOut(**found[0].payload, embedding=found[0].vector)

    async def stats(self) -> PatternStats:
        return PatternStats(
            count=await self.index.count(),
            backend=self.index.backend,
            location=self.index.location,
            model=self.provider.model,
            dimension=self.provider.dimension,
            languages=await self.index.facet("language"),
            kinds=await self.index.facet("kind"),
            tags=await self.index.facet("tags", limit=20),
        )

    # -- changing ------------------------------------------------------------------------

    async def update(
        self,
        pattern_id: str,
        changes: dict[str, Any],
        embedding: Sequence[float] | None,
    ) -> UpdateResult:
        pid = point_id(pattern_id)
        new_vector = None if embedding is None else self.check_vector(embedding, "embedding")
        reembed = new_vector is None and ("text" in changes or "name" in changes)
        text = ""
        for _ in range(3):
            if reembed:
                found = await self.index.retrieve([pid])
                if not found:
                    raise NotFound(f"no pattern with id {pattern_id!r}")
                before = found[0].payload
                text = embedding_text({**before, **changes})
                new_vector = (await self._embed([text]))[0]
            async with self._write_lock:
                found = await self.index.retrieve([pid])
                if not found:
                    raise NotFound(f"no pattern with id {pattern_id!r}")
                if reembed and embedding_text({**found[0].payload, **changes}) != text:
                    continue  # changed while we embedded: embed the new state
                return await self._apply_update(pid, found[0].payload, changes, new_vector)
        raise InvalidArgument(f"pattern {pattern_id!r} keeps changing; try the update again")

    async def _apply_update(
        self,
        pid: str,
        stored: dict[str, Any],
        changes: dict[str, Any],
        new_vector: list[float] | None,
    ) -> UpdateResult:
        """Write an update; the caller holds the write lock."""
        payload = {**stored, **changes, "updated": _now()}
        if new_vector is None:
            await self.index.set_payload(pid, {**changes, "updated": payload["updated"]})
        else:
            await self.index.upsert([VectorPoint(pid, new_vector, payload)])
        return UpdateResult(pattern=PatternOut(**payload), reembedded=new_vector is not None)

    async def delete(self, pattern_id: str) -> DeleteResult:
        pid = point_id(pattern_id)
        async with self._write_lock:
            found = await self.index.retrieve([pid])
            if found:
                await self.index.delete([pid])
        return DeleteResult(id=pattern_id, deleted=bool(found))


def _payload(pattern_id: str, pattern: PatternIn, *, created: str, updated: str) -> dict[str, Any]:
    return {
        "id": pattern_id,
        "name": pattern.name,
        "text": pattern.text,
        "language": pattern.language,
        "kind": pattern.kind,
        "tags": pattern.tags,
        "source": pattern.source,
        "quality": pattern.quality,
        "created": created,
        "updated": updated,
    }


def _filters(language: str | None, kind: str | None) -> list[tuple[str, str]]:
    return [(key, value) for key, value in (("language", language), ("kind", kind)) if value]


def _same_kind(error: GatewayError, message: str) -> GatewayError:
    try:
        return type(error)(message)
    except TypeError:
        return GatewayError(message)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
