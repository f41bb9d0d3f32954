"""`VectorIndex` on a Qdrant server through `AsyncQdrantClient` (REST), for scale.

Every call goes through an optional circuit breaker: when the server is unreachable the
call fails with one clear line, the breaker opens after repeated failures (calls then fail
fast without touching the network) and closes again once a trial call succeeds. The
embedding model and dimension are recorded in the collection's metadata.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from archon_gateway.core.errors import (
    CircuitOpen,
    IncompatibleVectorStore,
    InvalidArgument,
    VectorStoreUnavailable,
)
from archon_gateway.core.health import ComponentStatus
from archon_gateway.core.text import one_line
from archon_gateway.tools.patterns.index import KEYWORD_FIELDS, Hit, Query, StoredPoint, VectorPoint

if TYPE_CHECKING:
    from qdrant_client import AsyncQdrantClient

T = TypeVar("T")

MODEL_KEY = "archon_embedding_model"
DIMENSION_KEY = "archon_embedding_dimension"


class Breaker(Protocol):
    """What this adapter needs of a circuit breaker (gateway.resilience.breaker)."""

    @property
    def current_state(self) -> str: ...

    def retry_in(self) -> float: ...

    def guard(self) -> AbstractAsyncContextManager[None]: ...


class QdrantServerIndex:
    """One collection on a Qdrant server. `client` is owned by the caller (see `open`)."""

    def __init__(
        self,
        client: AsyncQdrantClient,
        collection: str,
        *,
        location: str,
        breaker: Breaker | None = None,
    ) -> None:
        self._client = client
        self._collection = collection
        self._location = location
        self._breaker = breaker
        self._last_error = ""

    @property
    def location(self) -> str:
        return self._location

    @property
    def backend(self) -> str:
        return "qdrant-server"

    def health(self) -> ComponentStatus:
        where = f"qdrant-server at {self._location}"
        if self._breaker is not None:
            state = self._breaker.current_state
            if state == "open":
                return ComponentStatus(
                    "down",
                    f"{where}: circuit open, retry in {self._breaker.retry_in():.0f} s"
                    + (f" ({self._last_error})" if self._last_error else ""),
                )
            if state == "half_open":
                return ComponentStatus("degraded", f"{where}: circuit half-open")
        if self._last_error:
            return ComponentStatus("degraded", f"{where}: {self._last_error}")
        return ComponentStatus("ok", where)

    async def _call(self, make: Callable[[], Awaitable[T]]) -> T:
        if self._breaker is None:
            return await self._translated(make)
        async with self._breaker.guard():
            return await self._translated(make)

    async def _translated(self, make: Callable[[], Awaitable[T]]) -> T:
        from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

        try:
            result = await make()
        except UnexpectedResponse as exc:
            detail = _response_detail(exc)
            if exc.status_code is not None and 400 <= exc.status_code < 500:
                raise InvalidArgument(f"the Qdrant server rejected the request: {detail}") from exc
            self._last_error = f"answered {detail}"
            raise VectorStoreUnavailable(
                f"the Qdrant server at {self._location} failed: {detail}"
            ) from exc
        except (ResponseHandlingException, OSError) as exc:
            source = getattr(exc, "source", exc)
            self._last_error = f"unreachable ({one_line(source)})"
            raise VectorStoreUnavailable(
                f"the Qdrant server at {self._location} is unreachable "
                f"({one_line(source)}); is it running?"
            ) from exc
        except CircuitOpen:
            raise
        self._last_error = ""
        return result

    async def ensure_collection(self, model: str, dimension: int) -> None:
        from qdrant_client import models

        client, name = self._client, self._collection
        if not await self._call(lambda: client.collection_exists(name)):
            try:
                await self._call(
                    lambda: client.create_collection(
                        name,
                        vectors_config=models.VectorParams(
                            size=dimension, distance=models.Distance.COSINE
                        ),
                        metadata={MODEL_KEY: model, DIMENSION_KEY: dimension},
                    )
                )
            except InvalidArgument:
                # Another gateway created it between our check and create: verify below.
                if not await self._call(lambda: client.collection_exists(name)):
                    raise
            for field in KEYWORD_FIELDS:
                await self._call(
                    lambda field=field: client.create_payload_index(  # type: ignore[misc]
                        name, field, models.PayloadSchemaType.KEYWORD, wait=True
                    )
                )
        info = await self._call(lambda: client.get_collection(name))
        metadata = info.config.metadata or {}
        vectors = info.config.params.vectors
        size = vectors.size if isinstance(vectors, models.VectorParams) else None
        if (metadata.get(MODEL_KEY), size) != (model, dimension):
            raise IncompatibleVectorStore(
                f"the Qdrant collection {name!r} at {self._location} holds {size}-d vectors "
                f"from {metadata.get(MODEL_KEY)!r}, but this gateway embeds with {model!r} "
                f"({dimension}-d); use another ARCHON_PATTERNS_COLLECTION"
            )

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        from qdrant_client import models

        structs = [
            models.PointStruct(id=p.id, vector=list(p.vector), payload=dict(p.payload))
            for p in points
        ]
        await self._call(lambda: self._client.upsert(self._collection, structs, wait=True))

    async def set_payload(self, point_id: str, payload: Mapping[str, Any]) -> None:
        await self._call(
            lambda: self._client.set_payload(
                self._collection, dict(payload), points=[point_id], wait=True
            )
        )

    async def retrieve(
        self, ids: Sequence[str], *, with_vectors: bool = False
    ) -> list[StoredPoint]:
        records = await self._call(
            lambda: self._client.retrieve(
                self._collection, list(ids), with_payload=True, with_vectors=with_vectors
            )
        )
        return [
            StoredPoint(
                id=str(r.id),
                payload=dict(r.payload or {}),
                vector=_dense(r.vector) if with_vectors else None,
            )
            for r in records
        ]

    async def delete(self, ids: Sequence[str]) -> None:
        from qdrant_client import models

        selector = models.PointIdsList(points=list(ids))
        await self._call(lambda: self._client.delete(self._collection, selector, wait=True))

    async def search(self, query: Query) -> list[Hit]:
        from qdrant_client import models

        conditions: list[models.Condition] = [
            models.FieldCondition(key=m.key, match=models.MatchValue(value=m.value))
            for m in query.must
        ]
        response = await self._call(
            lambda: self._client.query_points(
                self._collection,
                query=list(query.vector),
                limit=query.limit,
                score_threshold=query.score_threshold,
                query_filter=models.Filter(must=conditions) if conditions else None,
                with_payload=True,
            )
        )
        return [
            Hit(id=str(p.id), score=p.score, payload=dict(p.payload or {})) for p in response.points
        ]

    async def count(self) -> int:
        result = await self._call(lambda: self._client.count(self._collection, exact=True))
        return result.count

    async def facet(self, key: str, limit: int = 50) -> dict[str, int]:
        response = await self._call(
            lambda: self._client.facet(self._collection, key, limit=limit, exact=True)
        )
        return {str(hit.value): hit.count for hit in response.hits}


@asynccontextmanager
async def open_server_index(
    url: str,
    collection: str,
    *,
    api_key: str | None = None,
    timeout: int = 10,  # noqa: ASYNC109 (the HTTP client's per-request timeout)
    breaker: Breaker | None = None,
) -> AsyncIterator[QdrantServerIndex]:
    """A `QdrantServerIndex` with its own client, closed on exit. Nothing is sent to the
    server until the first call (the gateway starts even when the server is down)."""
    import warnings

    from qdrant_client import AsyncQdrantClient

    with warnings.catch_warnings():
        # "Api key is used with an insecure connection": the operator chose the URL.
        warnings.simplefilter("ignore", UserWarning)
        client = AsyncQdrantClient(
            url=url, api_key=api_key, timeout=timeout, check_compatibility=False
        )
    try:
        yield QdrantServerIndex(client, collection, location=redact_url(url), breaker=breaker)
    finally:
        await client.close()


def _dense(vector: Any) -> list[float] | None:
    if isinstance(vector, list) and all(isinstance(x, float | int) for x in vector):
        return [float(x) for x in vector]
    return None


def redact_url(url: str) -> str:
    """The URL without any `user:password@` part, for messages."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def _response_detail(exc: Any) -> str:
    status = f"HTTP {exc.status_code}" if exc.status_code is not None else "an error"
    try:
        message = exc.structured().get("status", {}).get("error", "")
    except Exception:
        message = ""
    return f"{status} {message}".strip()
