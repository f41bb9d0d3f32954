"""Shared parts for the pattern tool tests: one loaded embedding model per test session, and
a gateway-shaped FastMCP server with the pattern tools on either vector engine."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from archon_gateway.core.health import ComponentRegistry
from archon_gateway.gateway.app import add_tool_families
from archon_gateway.gateway.call_pipeline import as_middleware
from archon_gateway.gateway.call_steps.error_translation import TranslateErrors
from archon_gateway.gateway.mcp_server import GatewayServer
from archon_gateway.tools.patterns import PatternTools
from archon_gateway.tools.patterns.embeddings import EmbeddingProvider, MiniLMProvider
from archon_gateway.tools.patterns.index import VectorIndex

# The engines behind the one VectorIndex protocol:
# - "edge": Qdrant Edge, the Qdrant engine in-process (the default);
# - "server": the Qdrant-server adapter (AsyncQdrantClient over real HTTP) against the
#   stand-in server process in qdrant_standin.py (no real Qdrant server is installable here);
# - "client": the same adapter on qdrant-client's local mode (no HTTP hop at all).
ENGINES = ["edge", pytest.param("server", marks=pytest.mark.processes), "client"]


@pytest.fixture(scope="session")
def provider() -> MiniLMProvider:
    """The real model, loaded once per session (about 0.4 s)."""
    model = MiniLMProvider()
    anyio.run(model.load)
    return model


@pytest.fixture(scope="session")
def standin_url() -> Iterator[str]:
    """One stand-in Qdrant server process for the session (tests use their own collection)."""
    with standin_server() as url:
        yield url


@contextmanager
def standin_server(port: int = 0, path: Path | None = None) -> Iterator[str]:
    """Run qdrant_standin.py as a real process; yields its URL; killed on exit."""
    command = [sys.executable, "-m", "tests.patterns.qdrant_standin", "--port", str(port)]
    if path is not None:
        command += ["--path", str(path)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, cwd=Path(__file__).parents[2], text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening on "), line
        yield line.split()[-1]
    finally:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> dict[str, Any]:
    """PatternTools options selecting one engine."""
    if request.param == "server":
        url = request.getfixturevalue("standin_url")
        return {"qdrant_url": url, "collection": f"t{uuid.uuid4().hex[:12]}"}
    if request.param == "client":
        return {"open_index": client_local_index}
    return {}


def client_local_index(collection: str = "patterns") -> AbstractAsyncContextManager[VectorIndex]:
    @asynccontextmanager
    async def opened() -> AsyncIterator[VectorIndex]:
        import warnings

        from qdrant_client import AsyncQdrantClient

        from archon_gateway.tools.patterns.qdrant_server import QdrantServerIndex

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
    engine: dict[str, Any] | None = None,
    **options: Any,
) -> tuple[GatewayServer, PatternTools]:
    """A server shaped like the gateway (same error middleware) with only the pattern
    family, on `engine` (Qdrant Edge under data_dir by default)."""
    server = GatewayServer("patterns-test", middleware=[as_middleware(TranslateErrors())])
    options = {**(engine or {}), **options}
    tools = PatternTools(data_dir, provider=provider, **options)
    add_tool_families(server, ComponentRegistry(), [tools])
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
