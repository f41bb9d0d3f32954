"""The open-file limit makes room for the connection cap, or the cap shrinks to fit it (in
a child process: a lowered hard limit cannot be raised again)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.processes

SCRIPT = """
import logging, resource, sys
from archon_gateway.gateway.fd_limit import connection_room
logging.basicConfig(stream=sys.stdout, format="%(message)s")
soft, hard = (int(x) for x in sys.argv[1:3])
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
room = connection_room(int(sys.argv[3]))
print(room, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""


def run(soft: int, hard: int, wanted: int) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(soft), str(hard), str(wanted)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip().splitlines()


def test_the_soft_limit_is_raised_so_the_connection_cap_fits() -> None:
    assert run(300, 2000, 1000) == ["1000 1256"]


def test_a_hard_limit_too_low_shrinks_the_cap_and_says_so() -> None:
    *warning, last = run(300, 600, 1000)
    assert last == "344 600"
    assert warning == [
        "http_max_connections=1000 does not fit the open-file limit (600, hard 600); "
        "serving at most 344 connections"
    ]
