"""The layer contracts (import-linter, run by scripts/check) hold for the project and catch a
wrong-way import by name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.import_root import REPO, copy_folders

pytestmark = pytest.mark.processes

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lay_out(tree: Path) -> Path:
    """A copy of the import root as the wheel lays it out."""
    root = tree / "archon_gateway"
    copy_folders(root)
    return root


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [str(LINT_IMPORTS), "--config", str(REPO / "pyproject.toml"), "--no-cache"]
    return subprocess.run(
        command, cwd=tree, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_project_keeps_its_layers(tmp_path: Path) -> None:
    lay_out(tmp_path)
    done = lint_imports(tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "BROKEN" not in done.stdout


@pytest.mark.parametrize(
    ("module", "source", "broken"),
    [
        (
            "upstreams/wrong_way.py",
            "from archon_gateway.gateway import app\n",
            "archon_gateway.upstreams.wrong_way -> archon_gateway.gateway.app",
        ),
        (
            "core/wrong_way.py",
            "from archon_gateway.upstreams import pool\n",
            "archon_gateway.core.wrong_way -> archon_gateway.upstreams.pool",
        ),
        (
            "tools/codegen/wrong_way.py",
            "from archon_gateway.tools.patterns import index\n",
            "archon_gateway.tools.codegen.wrong_way -> archon_gateway.tools.patterns.index",
        ),
        (
            "events/wrong_way.py",
            "from archon_gateway.gateway import settings\n",
            "archon_gateway.events.wrong_way -> archon_gateway.gateway.settings",
        ),
        (
            "catalog/wrong_way.py",
            "from archon_gateway.tools.patterns import index\n",
            "archon_gateway.catalog.wrong_way -> archon_gateway.tools.patterns.index",
        ),
    ],
    ids=[
        "upstreams-to-front-door",
        "kernel-to-upstreams",
        "family-to-family",
        "events-to-front-door",
        "catalog-to-tool-family",
    ],
)
def test_a_wrong_way_import_fails_naming_it(
    tmp_path: Path, module: str, source: str, broken: str
) -> None:
    root = lay_out(tmp_path)
    (root / module).write_text(source)
    done = lint_imports(tmp_path)
    assert done.returncode != 0
    assert "BROKEN" in done.stdout
    assert broken in done.stdout
