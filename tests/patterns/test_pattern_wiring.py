"""How the pattern tools are wired into the gateway: lazily, with settings from the edge."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastmcp import Client

from archon_gateway.gateway.app import build_gateway
from archon_gateway.gateway.settings import load_settings

pytestmark = pytest.mark.anyio

HEAVY = ["qdrant_edge", "qdrant_client", "onnxruntime", "tokenizers", "numpy"]


@pytest.mark.processes
def test_building_and_listing_the_gateway_loads_no_vector_or_model_library(
    tmp_path: Path,
) -> None:
    code = f"""
import json, sys, anyio
from fastmcp import Client
from archon_gateway.gateway.app import build_gateway
from archon_gateway.gateway.settings import Settings

async def main():
    async with Client(build_gateway(Settings(data_dir={str(tmp_path)!r}))) as client:
        names = [tool.name for tool in await client.list_tools()]
    loaded = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))
    print(json.dumps({{"tools": names, "loaded": loaded}}))

anyio.run(main)
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    assert {"pattern_index", "pattern_search", "pattern_stats"} <= set(report["tools"])
    # Nothing was written either: the store opens on the first pattern tool call.
    assert not (tmp_path / "patterns").exists()


def test_qdrant_settings_come_from_the_environment_and_the_key_stays_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARCHON_QDRANT_URL", "http://127.0.0.1:6333")
    monkeypatch.setenv("ARCHON_QDRANT_API_KEY", "very-secret")
    monkeypatch.setenv("ARCHON_PATTERNS_BATCH_SIZE", "16")
    settings = load_settings()
    assert settings.qdrant_url == "http://127.0.0.1:6333"
    assert settings.qdrant_api_key is not None
    assert settings.qdrant_api_key.get_secret_value() == "very-secret"
    assert "very-secret" not in repr(settings)
    assert settings.patterns_batch_size == 16


async def test_tools_carry_schemas_and_annotations(tmp_path: Path) -> None:
    settings = load_settings(overrides={"data_dir": tmp_path})
    async with Client(build_gateway(settings)) as client:
        tools = {tool.name: tool for tool in await client.list_tools()}
    search = tools["pattern_search"]
    assert search.annotations is not None
    assert search.annotations.read_only_hint is True
    assert set(search.input_schema["properties"]) >= {
        "query",
        "vector",
        "top_k",
        "score_threshold",
        "language",
        "kind",
        "tags",
    }
    assert search.output_schema is not None
    delete = tools["pattern_delete"]
    assert delete.annotations is not None
    assert delete.annotations.destructive_hint is True
    index = tools["pattern_index"]
    assert index.annotations is not None
    assert index.annotations.idempotent_hint is True
    assert index.output_schema is not None
    assert set(index.output_schema["properties"]) == {"indexed", "failed", "lineage_failed"}


async def test_the_qdrant_breaker_is_the_gateways_own_and_shows_in_readiness(
    tmp_path: Path,
) -> None:
    import httpx

    from archon_gateway.gateway.http import build_http_app
    from archon_gateway.gateway.settings import Settings

    # An empty breaker registry is still the gateway's registry (it was once mistaken for
    # "no registry" and the qdrant breaker went private, invisible to /health/ready).
    server = build_gateway(
        Settings(data_dir=tmp_path, manifests_dir=tmp_path, qdrant_url="http://127.0.0.1:9")
    )
    app = build_http_app(server, "/mcp")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as web:
        ready = (await web.get("/health/ready")).json()
    assert "qdrant" in ready["breakers"]
    assert ready["breakers"]["qdrant"]["state"] == "closed"
