"""The pattern tools as one native family, owning the vector store.

Nothing heavy happens at registration: the vector store is opened (and the embedding model
loaded) on the first pattern tool call, once per gateway process, and closed when the
family's lifespan ends. The store's state is reported through a health probe.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastmcp import Context
from fastmcp.tools import Tool
from mcp_types import ToolAnnotations
from pydantic import Field, SecretStr

from archon_gateway.core.circuit_breaker import BreakerRegistry
from archon_gateway.core.errors import (
    GatewayError,
    InvalidArgument,
    tool_errors,
)
from archon_gateway.core.health import ComponentStatus
from archon_gateway.core.tool_family import HealthProbe, ToolFamily
from archon_gateway.tools.patterns.embeddings import EmbeddingProvider, MiniLMProvider
from archon_gateway.tools.patterns.index import VectorIndex
from archon_gateway.tools.patterns.models import (
    DeleteResult,
    DerivedFrom,
    IndexFailure,
    IndexResult,
    Label,
    Name,
    PatternIn,
    PatternOut,
    PatternStats,
    Quality,
    SearchResult,
    Source,
    Tags,
    Text,
    UpdateResult,
    Vector,
)
from archon_gateway.tools.patterns.qdrant_server import Breaker
from archon_gateway.tools.patterns.service import MAX_TOP_K, PatternService

OpenIndex = Callable[[], AbstractAsyncContextManager[VectorIndex]]
# Records lineage parent -> child with a relation (the store's port, given by the front door).
RecordLineage = Callable[[str, str, str], Awaitable[object]]
PatternId = Annotated[str, Field(min_length=1, max_length=256, description="the pattern's id")]


def _annotations(title: str, *, read_only: bool, destructive: bool = False) -> ToolAnnotations:
    return ToolAnnotations(
        title=title,
        read_only_hint=read_only,
        destructive_hint=destructive if not read_only else None,
        idempotent_hint=True,
        open_world_hint=False,
    )


class PatternTools(ToolFamily):
    """pattern_index/search/get/update/delete/stats and the one `PatternService` (opened on
    first use) behind them.

    The store is a Qdrant Edge shard under `data_dir/<collection>` unless `qdrant_url` is
    given: then a Qdrant server, every call through the circuit breaker "qdrant" in
    `breakers` (else a private one). `provider` and `open_index` replace the defaults
    (tests, other engines).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        qdrant_url: str | None = None,
        qdrant_api_key: SecretStr | None = None,
        collection: str = "patterns",
        batch_size: int = 64,
        embed_timeout: float = 60.0,
        breakers: BreakerRegistry | None = None,
        provider: EmbeddingProvider | None = None,
        open_index: OpenIndex | None = None,
        max_request_text_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self._max_request_text_bytes = max_request_text_bytes
        breaker = None
        if qdrant_url is not None:
            registry = breakers if breakers is not None else BreakerRegistry()  # empty is falsy
            breaker = registry.get_or_create("qdrant")  # counts outages only
        if open_index is None:
            open_index = _default_opener(data_dir, qdrant_url, qdrant_api_key, collection, breaker)
        self._open_index = open_index
        self._provider = provider if provider is not None else MiniLMProvider()
        self._batch_size = batch_size
        self._embed_timeout = embed_timeout
        self._where = qdrant_url or str(data_dir / collection)
        self._service: PatternService | None = None
        self._stack: AsyncExitStack | None = None
        self._open_lock: anyio.Lock | None = None
        self._failure: ComponentStatus | None = None
        self._record_lineage: RecordLineage | None = None

    def record_lineage_with(self, record: RecordLineage) -> None:
        """Where `derived_from` goes (without it, derived_from is refused)."""
        self._record_lineage = record

    # -- the family's shape --------------------------------------------------------------

    def tools(self) -> Sequence[Tool]:
        def tool(method: Callable[..., Any], annotations: ToolAnnotations) -> Tool:
            return Tool.from_function(method, annotations=annotations)

        return [
            tool(self.pattern_index, _annotations("Index patterns", read_only=False)),
            tool(self.pattern_search, _annotations("Search patterns", read_only=True)),
            tool(self.pattern_get, _annotations("Get a pattern", read_only=True)),
            tool(self.pattern_update, _annotations("Update a pattern", read_only=False)),
            tool(
                self.pattern_delete,
                _annotations("Delete a pattern", read_only=False, destructive=True),
            ),
            tool(self.pattern_stats, _annotations("Pattern store stats", read_only=True)),
        ]

    def health_probes(self) -> Sequence[HealthProbe]:
        # Not critical: with the store down the gateway and its other tools still work.
        return [HealthProbe("vector_store", self.health, critical=False)]

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await self.aclose()

    # -- the store -----------------------------------------------------------------------

    async def service(self) -> PatternService:
        """The open service; opens the store on first use (once, even when called
        concurrently). A failed open is reported and retried by the next call."""
        if self._service is not None:
            return self._service
        if self._open_lock is None:
            self._open_lock = anyio.Lock()
        async with self._open_lock:
            if self._service is None:
                self._service = await self._open_service()
            return self._service

    async def _open_service(self) -> PatternService:
        stack = AsyncExitStack()
        try:
            index = await stack.enter_async_context(self._open_index())
            await index.ensure_collection(self._provider.model, self._provider.dimension)
        except BaseException as exc:
            self._failure = ComponentStatus("down", str(exc) or type(exc).__name__)
            with anyio.CancelScope(shield=True):
                await stack.aclose()
            raise
        self._failure = None
        self._stack = stack
        return PatternService(
            index,
            self._provider,
            batch_size=self._batch_size,
            embed_timeout=self._embed_timeout,
            max_request_text_bytes=self._max_request_text_bytes,
        )

    async def aclose(self) -> None:
        stack, self._stack, self._service = self._stack, None, None
        if stack is not None:
            with anyio.CancelScope(shield=True):
                await stack.aclose()

    def health(self) -> ComponentStatus:
        if self._failure is not None:
            return self._failure
        if self._service is None:
            return ComponentStatus("ok", f"{self._where} (opens on first use)")
        return self._service.index.health()

    # -- the tools -----------------------------------------------------------------------

    async def pattern_index(
        self,
        patterns: Annotated[list[PatternIn], Field(min_length=1, max_length=100_000)],
        ctx: Context,
    ) -> IndexResult:
        """Index code or text patterns for semantic search. Each pattern has a name and text
        and optionally an id, language, kind, tags, source, quality (0..1) and a precomputed
        embedding; without one the text is embedded locally. Re-indexing the same id (or,
        without an id, the same name and text) updates the pattern instead of copying it.
        Large batches are written in chunks with progress notifications. Returns the ids
        indexed and, per failed pattern, its position and the reason; the others are
        still indexed."""

        async def progress(done: int, total: int, message: str) -> None:
            await ctx.report_progress(done, total, message)

        with tool_errors():
            self._lineage_port(any(pattern.derived_from for pattern in patterns))
            service = await self.service()
            result = await service.index_patterns(patterns, progress)
            await self._record_derivations(patterns, result)
            return result

    async def pattern_search(
        self,
        query: Annotated[str | None, Field(description="text to search for")] = None,
        vector: Annotated[Vector | None, Field(description="or a query vector")] = None,
        top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K)] = 10,
        score_threshold: Annotated[
            float | None, Field(ge=-1, le=1, description="leave out results scoring lower")
        ] = None,
        language: Label | None = None,
        kind: Label | None = None,
        tags: Annotated[Tags | None, Field(description="results must carry all of these")] = None,
    ) -> SearchResult:
        """Find the patterns closest in meaning to a text query (or a vector), best first,
        optionally only those of a language, a kind, and carrying all given tags. Scores
        are cosine similarities (1 = same meaning)."""
        with tool_errors():
            service = await self.service()
            return await service.search(
                query=query,
                vector=vector,
                top_k=top_k,
                score_threshold=score_threshold,
                language=language,
                kind=kind,
                tags=tags or [],
            )

    async def pattern_get(self, id: PatternId, with_embedding: bool = False) -> PatternOut:
        """One pattern by id, with its metadata (and its vector if asked)."""
        with tool_errors():
            service = await self.service()
            return await service.get(id, with_embedding=with_embedding)

    async def pattern_update(
        self,
        id: PatternId,
        name: Name | None = None,
        text: Text | None = None,
        language: Label | None = None,
        kind: Label | None = None,
        tags: Tags | None = None,
        source: Source | None = None,
        quality: Quality | None = None,
        embedding: Annotated[
            Vector | None, Field(description="replace the vector with this one")
        ] = None,
        derived_from: DerivedFrom | None = None,
    ) -> UpdateResult:
        """Change a pattern's metadata and/or text. A new text is re-embedded (or give the
        new vector as embedding); metadata-only changes keep the vector."""
        given: dict[str, Any] = {"name": name, "text": text, "language": language}
        given |= {"kind": kind, "tags": tags, "source": source, "quality": quality}
        changes = {key: value for key, value in given.items() if value is not None}
        with tool_errors():
            if not changes and embedding is None:
                raise InvalidArgument(
                    "nothing to update: give at least one of name, text, language, kind, "
                    "tags, source, quality or embedding"
                )
            record = self._lineage_port(bool(derived_from))
            for parent in derived_from or []:  # first: a refused edge leaves the pattern as is
                await record(parent, id, "modify")
            service = await self.service()
            return await service.update(id, changes, embedding)

    def _lineage_port(self, needed: bool) -> RecordLineage:
        if needed and self._record_lineage is None:
            raise InvalidArgument("derived_from needs the gateway's store (store_enabled is off)")
        return self._record_lineage or _no_lineage

    async def _record_derivations(self, patterns: list[PatternIn], result: IndexResult) -> None:
        failed = {failure.index for failure in result.failed}
        written = [n for n in range(len(patterns)) if n not in failed]
        for n, child in zip(written, result.indexed, strict=True):
            parents = patterns[n].derived_from or []
            relation = "merge" if len(parents) > 1 else "fork"
            for parent in parents:
                try:
                    await self._lineage_port(True)(parent, child, relation)
                except GatewayError as exc:
                    result.lineage_failed.append(IndexFailure(index=n, id=child, error=str(exc)))

    async def pattern_delete(self, id: PatternId) -> DeleteResult:
        """Delete a pattern by id (deleted=false if there was none)."""
        with tool_errors():
            service = await self.service()
            return await service.delete(id)

    async def pattern_stats(self) -> PatternStats:
        """How many patterns are stored, where, with which embedding model, and how many
        per language, per kind and per (most used) tag."""
        with tool_errors():
            service = await self.service()
            return await service.stats()


def _default_opener(
    data_dir: Path,
    qdrant_url: str | None,
    api_key: SecretStr | None,
    collection: str,
    breaker: Breaker | None,
) -> OpenIndex:
    if qdrant_url is None:

        def open_edge() -> AbstractAsyncContextManager[VectorIndex]:
            from archon_gateway.tools.patterns.edge import EdgeIndex

            return EdgeIndex(data_dir / collection)

        return open_edge

    def open_server() -> AbstractAsyncContextManager[VectorIndex]:
        from archon_gateway.tools.patterns.qdrant_server import open_server_index

        key = api_key.get_secret_value() if api_key is not None else None
        return open_server_index(qdrant_url, collection, api_key=key, breaker=breaker)

    return open_server


async def _no_lineage(parent: str, child: str, relation: str) -> None:
    return None
