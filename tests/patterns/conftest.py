"""Shared parts for the pattern tool tests: one loaded embedding model per test session, and
a gateway-shaped FastMCP server with the pattern tools on either vector engine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastmcp import FastMCP

from gateway.middleware.errors import ErrorTranslationMiddleware
from tools.patterns import PatternTools, add_pattern_tools
from tools.patterns.embeddings import EmbeddingProvider, MiniLMProvider
from tools.patterns.index import VectorIndex

# The two engines behind one VectorIndex protocol. "edge" is Qdrant Edge (the Qdrant engine
# in-process, the default). "client" is the Qdrant-server adapter driven through
# qdrant-client's own local mode: the same adapter code, minus the HTTP hop (no Qdrant
# server can be installed here; HTTP failures are tested against real processes).
ENGINES = ["edge", "client"]


@pytest.fixture(scope="session")
def provider() -> MiniLMProvider:
    """The real model, loaded once per session (about 0.4 s)."""
    model = MiniLMProvider()
    anyio.run(model.load)
    return model


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def client_local_index(collection: str = "patterns") -> AbstractAsyncContextManager[VectorIndex]:
    @asynccontextmanager
    async def opened() -> AsyncIterator[VectorIndex]:
        import warnings

        from qdrant_client import AsyncQdrantClient

        from tools.patterns.qdrant_server import QdrantServerIndex

        client = AsyncQdrantClient(location=":memory:")
        try:
            with warnings.catch_warnings():
                # "Payload indexes have no effect in the local Qdrant": expected here.
                warnings.simplefilter("ignore", UserWarning)
                yield QdrantServerIndex(client, collection, location=":memory:")
        finally:
            await client.close()

    return opened()


def pattern_server(
    data_dir: Path,
    provider: EmbeddingProvider,
    engine: str = "edge",
    **options: Any,
) -> tuple[FastMCP, PatternTools]:
    """A FastMCP server shaped like the gateway (same error middleware) with only the
    pattern tools, on `engine`."""
    server = FastMCP("patterns-test", middleware=[ErrorTranslationMiddleware()])
    if engine == "client":
        options.setdefault("open_index", client_local_index)
    tools = add_pattern_tools(server, data_dir=data_dir, provider=provider, **options)
    return server, tools


class FailingProvider:
    """Wraps the real model and misbehaves on purpose, for faults a real model will not
    produce on demand: raising on marked texts, hanging, or returning wrong shapes."""

    def __init__(
        self,
        inner: EmbeddingProvider,
        *,
        fail_marker: str | None = None,
        hang_marker: str | None = None,
        shape: Callable[[list[list[float]]], list[list[float]]] | None = None,
    ) -> None:
        self.inner = inner
        self.fail_marker = fail_marker
        self.hang_marker = hang_marker
        self.shape = shape
        self.calls: list[int] = []

    @property
    def model(self) -> str:
        return self.inner.model

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(len(texts))
        if self.hang_marker and any(self.hang_marker in text for text in texts):
            await anyio.sleep_forever()
        if self.fail_marker and any(self.fail_marker in text for text in texts):
            raise RuntimeError("the model could not process this input")
        vectors = await self.inner.embed(texts)
        return self.shape(vectors) if self.shape else vectors


def structured(result: Any) -> dict[str, Any]:
    content = result.structured_content
    assert content is not None, result
    assert isinstance(content, dict)
    return content


def error_text(result: Any) -> str:
    assert result.is_error, result
    return str(result.content[0].text)
