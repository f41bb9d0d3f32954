"""`VectorIndex` on Qdrant Edge: the Qdrant engine in-process, data in one directory.

Layout under the directory: `shard/` (Qdrant's segments and WAL), `collection.json` (the
embedding model and dimension the vectors were made with) and `owner.lock` (the pid of the
one process that has the shard open: a second process gets "in use by pid N").
Calls into the engine run in worker threads so the event loop never waits on disk.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import anyio

from archon_gateway.core.errors import IncompatibleVectorStore, VectorStoreUnavailable
from archon_gateway.core.health import ComponentStatus
from archon_gateway.core.text import one_line
from archon_gateway.tools.patterns.index import KEYWORD_FIELDS, Hit, Query, StoredPoint, VectorPoint

if TYPE_CHECKING:
    import qdrant_edge

T = TypeVar("T")

# After this many points written since the last optimisation, the next write runs the
# optimiser (builds the HNSW index; ~3 s for 10k x 384-d here). Below it, Qdrant's plain
# segments answer a top-10 at 10k in under 1 ms.
OPTIMIZE_AFTER = 20_000


class OwnerLock:
    """An exclusive `flock` on `path`, holding this process's pid as text."""

    def __init__(self, path: Path, what: str) -> None:
        self._path = path
        self._what = what
        self._fd: int | None = None

    def acquire(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise VectorStoreUnavailable(
                f"{self._what} at {self._path.parent} is in use by pid {self._owner()}; "
                "stop that gateway, or give this one another ARCHON_DATA_DIR "
                "(or a Qdrant server with ARCHON_QDRANT_URL)"
            ) from exc
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def _owner(self) -> str:
        try:
            return self._path.read_text().strip() or "unknown"
        except OSError:
            return "unknown"

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


class EdgeIndex:
    """A Qdrant Edge shard under `directory`. Use as an async context manager."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._lock = OwnerLock(directory / "owner.lock", "the pattern store")
        self._shard: qdrant_edge.EdgeShard | None = None
        self._write_lock = anyio.Lock()
        self._since_optimize = 0
        self._state = ComponentStatus("ok", f"qdrant-edge at {directory} (not opened yet)")
        self._open_state = self._state

    @property
    def location(self) -> str:
        return str(self._directory)

    @property
    def backend(self) -> str:
        return "qdrant-edge"

    def health(self) -> ComponentStatus:
        return self._state

    async def __aenter__(self) -> Self:
        try:
            self._lock.acquire()
        except VectorStoreUnavailable as exc:
            self._state = ComponentStatus("down", str(exc))
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            shard, self._shard = self._shard, None
            if shard is not None:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(_flush_and_close, shard)
        finally:
            self._lock.release()
            self._state = ComponentStatus("ok", f"qdrant-edge at {self._directory} (closed)")

    async def ensure_collection(self, model: str, dimension: int) -> None:
        await anyio.to_thread.run_sync(self._open, model, dimension)
        self._open_state = ComponentStatus(
            "ok", f"qdrant-edge at {self._directory}, {model} ({dimension}-d)"
        )
        self._state = self._open_state

    def _open(self, model: str, dimension: int) -> None:
        import qdrant_edge as qe

        if self._shard is not None:
            return
        meta_path = self._directory / "collection.json"
        shard_path = self._directory / "shard"
        wanted = {"model": model, "dimension": dimension, "distance": "cosine"}
        if meta_path.exists():
            meta = json.loads(meta_path.read_text())
            if (meta.get("model"), meta.get("dimension")) != (model, dimension):
                raise IncompatibleVectorStore(
                    f"the pattern store at {self._directory} holds {meta.get('dimension')}-d "
                    f"vectors from {meta.get('model')!r}, but this gateway embeds with "
                    f"{model!r} ({dimension}-d); use another ARCHON_PATTERNS_COLLECTION "
                    "or re-index into a new one"
                )
        config = qd_config(qe, dimension)
        try:
            if (shard_path / "edge_config.json").exists():
                shard = qe.EdgeShard.load(str(shard_path), config)
            else:
                shard = qe.EdgeShard.create(str(shard_path), config)
                for name in KEYWORD_FIELDS:
                    shard.update(
                        qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Keyword)
                    )
        except Exception as exc:
            raise VectorStoreUnavailable(
                f"cannot open the pattern store at {shard_path}: {one_line(exc)}"
            ) from exc
        if not meta_path.exists():
            temporary = meta_path.with_suffix(".tmp")
            temporary.write_text(json.dumps(wanted))
            temporary.replace(meta_path)
        self._shard = shard

    def _require(self) -> qdrant_edge.EdgeShard:
        if self._shard is None:
            raise VectorStoreUnavailable("the pattern store is not open")
        return self._shard

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            result = await anyio.to_thread.run_sync(fn, *args)
        except (VectorStoreUnavailable, IncompatibleVectorStore):
            raise
        except Exception as exc:
            message = f"the pattern store failed: {one_line(exc)}"
            self._state = ComponentStatus("degraded", message)
            raise VectorStoreUnavailable(message) from exc
        if self._state.status != "ok":
            self._state = self._open_state
        return result

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        import qdrant_edge as qe

        shard = self._require()
        operation = qe.UpdateOperation.upsert_points(
            [qe.Point(p.id, list(p.vector), dict(p.payload)) for p in points]
        )
        async with self._write_lock:
            await self._call(shard.update, operation)
            self._since_optimize += len(points)
            if self._since_optimize >= OPTIMIZE_AFTER:
                await self._call(shard.optimize)
                self._since_optimize = 0

    async def set_payload(self, point_id: str, payload: Mapping[str, Any]) -> None:
        import qdrant_edge as qe

        shard = self._require()
        async with self._write_lock:
            operation = qe.UpdateOperation.set_payload([point_id], dict(payload))
            await self._call(shard.update, operation)

    async def retrieve(
        self, ids: Sequence[str], *, with_vectors: bool = False
    ) -> list[StoredPoint]:
        shard = self._require()
        records = await self._call(shard.retrieve, list(ids), True, with_vectors)
        return [
            StoredPoint(
                id=str(r.id),
                payload=dict(r.payload or {}),
                vector=list(r.vector) if with_vectors and isinstance(r.vector, list) else None,  # type: ignore[arg-type]
            )
            for r in records
        ]

    async def delete(self, ids: Sequence[str]) -> None:
        import qdrant_edge as qe

        shard = self._require()
        async with self._write_lock:
            await self._call(shard.update, qe.UpdateOperation.delete_points(list(ids)))

    async def search(self, query: Query) -> list[Hit]:
        import qdrant_edge as qe

        shard = self._require()
        conditions: list[Any] = [
            qe.FieldCondition(m.key, match=qe.MatchValue(m.value)) for m in query.must
        ]
        request = qe.QueryRequest(
            limit=query.limit,
            query=qe.Query.Nearest(list(query.vector)),
            filter=qe.Filter(must=conditions) if conditions else None,
            score_threshold=query.score_threshold,
            with_payload=True,
        )
        points = await self._call(shard.query, request)
        return [Hit(id=str(p.id), score=p.score, payload=dict(p.payload or {})) for p in points]

    async def count(self) -> int:
        import qdrant_edge as qe

        shard = self._require()
        return await self._call(shard.count, qe.CountRequest(exact=True))

    async def payload_indexes(self) -> dict[str, str]:
        """Indexed payload fields and their types (e.g. {"language": "Keyword"})."""
        shard = self._require()
        info = await self._call(shard.info)
        return {
            name: str(index.data_type).rsplit(".", 1)[-1]
            for name, index in info.payload_schema.items()
        }

    async def facet(self, key: str, limit: int = 50) -> dict[str, int]:
        import qdrant_edge as qe

        shard = self._require()
        response = await self._call(shard.facet, qe.FacetRequest(key, limit=limit, exact=True))
        return {str(hit.value): hit.count for hit in response.hits}


def qd_config(qe: Any, dimension: int) -> Any:
    return qe.EdgeConfig(
        vectors={"": qe.EdgeVectorParams(size=dimension, distance=qe.Distance.Cosine)}
    )


def _flush_and_close(shard: qdrant_edge.EdgeShard) -> None:
    with contextlib.suppress(Exception):
        shard.flush()
    shard.close()
