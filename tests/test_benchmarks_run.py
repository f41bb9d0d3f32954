"""scripts/bench/run_all.py runs every benchmark with --quick: each must take it."""

from __future__ import annotations

from pathlib import Path

from tests.support import load_script

BENCH = Path(__file__).parents[1] / "scripts" / "bench"


def test_every_benchmark_run_all_finds_takes_the_quick_flag() -> None:
    run_all = load_script(BENCH / "run_all.py")

    found = run_all.benchmarks()

    assert {path.stem for path in found} >= {"http_load", "proxy_overhead", "soak", "load"}
    assert "run_all" not in {path.stem for path in found}
    lacking = [path.name for path in found if '"--quick"' not in path.read_text()]
    assert lacking == []
