"""A small run of scripts/bench/load.py: concurrent HTTP clients, mixed native and proxied
calls, an upstream that fails, hangs or crashes on 10 % of calls. No call hangs, and the
gateway's fds and threads are back to their baseline afterwards."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

LOAD = Path(__file__).resolve().parents[2] / "scripts" / "bench" / "load.py"


@pytest.mark.processes
def test_mixed_load_with_faulty_upstream_has_no_hung_call_and_returns_to_baseline() -> None:
    argv = [sys.executable, str(LOAD), "--clients", "8", "--calls", "12", "--rounds", "1"]
    argv += ["--chaos-rate", "0.1", "--no-baseline", "--check", "--slack", "5"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=170, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "hung 0" in done.stdout
