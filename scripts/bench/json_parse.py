#!/usr/bin/env python
"""What the gateway's one JSON parser costs over pydantic-core's bare parse (its baseline):
the size and depth bounds plus the walk that refuses non-finite numbers (NaN, 1e400).

Documents: a typical tools/call line, a 5 MiB text argument (few nodes, many bytes), and
an array of 200,000 floats (many nodes: the walk's worst case per byte). Rounds are
interleaved (bare, gateway, bare, gateway, ...) so machine noise hits both.

    python scripts/bench/json_parse.py [--rounds 7] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic_core

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import machine

from archon_gateway.core.bounded_json import parse_json

LIMIT = 32 * 1024 * 1024


def documents(scale: int) -> dict[str, tuple[bytes, int]]:
    """name -> (JSON bytes, parses per round)."""
    call = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {
            "name": "toolbox_echo",
            "arguments": {"text": "hello " * 20, "count": 3, "ratio": 0.25, "tags": ["a", "b"]},
            "_meta": {"progressToken": "p-7"},
        },
    }
    text = {"patterns": [{"name": "big", "text": "y" * (5 * 1024 * 1024)}]}
    floats = {"embedding": [i + 0.5 for i in range(200_000)]}
    return {
        "tools/call line": (json.dumps(call).encode(), 20_000 // scale),
        "5 MiB text argument": (json.dumps(text).encode(), 200 // scale),
        "200,000 floats": (json.dumps(floats).encode(), 40 // scale),
    }


def per_parse(parse: Callable[[bytes], Any], data: bytes, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        parse(data)
    return (time.perf_counter() - started) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="a brief run (run_all.py --quick)")
    args = parser.parse_args()
    rounds, scale = (3, 10) if args.quick else (args.rounds, 1)

    def bare(data: bytes) -> Any:
        return pydantic_core.from_json(data, allow_inf_nan=False)

    def gateway(data: bytes) -> Any:
        return parse_json(data, max_bytes=LIMIT)

    print(f"JSON parse: gateway parse_json vs bare pydantic-core ({rounds} interleaved rounds)")
    print(f"  {'document':<22} {'bare':>11} {'gateway':>11} {'added':>11} {'ratio':>6}")
    for name, (data, count) in documents(scale).items():
        count = max(count, 1)
        bare_times: list[float] = []
        gateway_times: list[float] = []
        for _ in range(rounds):
            bare_times.append(per_parse(bare, data, count))
            gateway_times.append(per_parse(gateway, data, count))
        b, g = statistics.median(bare_times), statistics.median(gateway_times)
        print(
            f"  {name:<22} {b * 1e6:>8.1f} us {g * 1e6:>8.1f} us {(g - b) * 1e6:>8.1f} us "
            f"{g / b:>5.2f}x"
        )
    print(f"  machine: {machine()}")


if __name__ == "__main__":
    main()
