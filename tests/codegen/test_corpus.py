"""The corpus of generated ONEX node files: good ones pass untouched; bad ones produce the
expected findings, and correction produces the expected file (formatting and comments
kept), fixes what it claims, and is idempotent.

Each bad file `X.py` has `X.expected.json` (findings as [rule, line, column, fixable],
the rules fixed, the findings that remain) and, when correction changes it, `X.fixed.py`.
"""

# ruff: noqa: ASYNC240  (reading small fixture files)
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from archon_gateway.tools.codegen.correct import correct
from archon_gateway.tools.codegen.rules import RuleSet
from archon_gateway.tools.codegen.validate import validate

pytestmark = pytest.mark.anyio

CORPUS = Path(__file__).parent / "corpus"
GOOD = sorted((CORPUS / "good").glob("*.py"))
BAD = sorted(p for p in (CORPUS / "bad").glob("*.py") if not p.name.endswith(".fixed.py"))
RULES = RuleSet()


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
async def test_good_node_file_has_no_findings_and_correction_leaves_it_alone(path: Path) -> None:
    code = path.read_text()
    report, _ = await validate(code, RULES, filename=path.name)
    assert report.findings == []
    assert report.valid
    assert report.score == 100.0
    assert report.node_kind == path.stem.rsplit("_", 1)[1]

    corrected = await correct(code, RULES, filename=path.name)
    assert corrected.code == code
    assert not corrected.changed
    assert corrected.diff == ""
    assert corrected.fixed == []


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
async def test_bad_node_file_gets_the_expected_findings(path: Path) -> None:
    expected = json.loads(path.with_suffix(".expected.json").read_text())
    report, _ = await validate(path.read_text(), RULES, filename=path.name)
    found = [[f.rule, f.line, f.column, f.fixable] for f in report.findings]
    assert found == expected["findings"]
    assert report.valid is expected["valid"]
    assert report.score == expected["score"]
    assert report.node_kind == expected["node_kind"]
    assert all(f.message for f in report.findings)


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
async def test_correction_matches_the_expected_file_and_is_idempotent(path: Path) -> None:
    expected = json.loads(path.with_suffix(".expected.json").read_text())
    original = path.read_text()
    fixed_path = path.with_name(path.stem + ".fixed.py")
    want = fixed_path.read_text() if fixed_path.exists() else original

    corrected = await correct(original, RULES, filename=path.name)
    assert corrected.code == want
    assert corrected.changed is (want != original)
    assert corrected.fixed == expected["fixed"]
    assert [[f.rule, f.line] for f in corrected.remaining] == expected["remaining"]
    assert corrected.reason == expected["reason"]
    if corrected.changed:
        ast.parse(corrected.code)
        assert corrected.diff.startswith(f"--- a/{path.name}\n+++ b/{path.name}\n")
        # What it claims to have fixed is gone from the corrected code.
        assert not {f.rule for f in corrected.remaining} & set(corrected.fixed)

    again = await correct(corrected.code, RULES, filename=path.name)
    assert again.code == corrected.code
    assert again.fixed == []
    assert again.diff == ""


async def test_correction_keeps_comments_docstrings_and_blank_lines() -> None:
    original = (CORPUS / "bad" / "user_profile_effect.py").read_text()
    corrected = await correct(original, RULES, filename="user_profile_effect.py")
    for line in original.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or stripped.startswith('"""'):
            assert line in corrected.code.splitlines()
    assert "except Exception:  # network trouble: log and re-raise" in corrected.code
