"""Search quality on the labelled query set (deterministic: a quality bar, not timing)."""

from __future__ import annotations

from pathlib import Path

import mcp_types as mt
import pytest
from fastmcp.tools import Tool

from archon_gateway.gateway.app import build_gateway
from archon_gateway.gateway.catalog.search_index import SearchIndex
from archon_gateway.gateway.catalog.view import catalog_entry
from archon_gateway.gateway.settings import Settings
from tests.catalog.synthetic import definitions, labelled_queries, quality

pytestmark = pytest.mark.anyio


async def test_search_keeps_its_measured_recall_on_the_labelled_queries(
    tmp_path: Path,
) -> None:
    server = build_gateway(Settings(enable_external_gateway=False, data_dir=tmp_path))
    native = list(await server.local_provider.list_tools())
    synthetic = [
        Tool(
            name=f"{space}_{item.name}",
            description=item.description,
            parameters=item.input_schema,
        )
        for space, tools in definitions().items()
        for item in (mt.Tool.model_validate(tool) for tool in tools)
    ]
    spaces = {tool.name: tool.name.split("_", 1)[0] for tool in synthetic}
    index = SearchIndex()
    index.sync(
        [*native, *synthetic],
        lambda tool: tool.name,
        lambda tool: catalog_entry(tool, spaces.get(tool.name, "archon")),
    )
    queries = labelled_queries()
    assert len(queries) >= 60

    measured = quality(lambda q: [entry.name for entry, _ in index.search(q, 10)], queries)

    # The goal is 0.90; BM25 alone reaches 0.79 on this set (its misses are vocabulary
    # gaps: "bug" for issue, "wiki" for Notion). This guards what it reaches against
    # regressions; docs/catalog.md has the figures and what would close the gap.
    assert measured.recall_at_3 >= 0.79, "\n".join(measured.misses)
    assert measured.mrr >= 0.70
