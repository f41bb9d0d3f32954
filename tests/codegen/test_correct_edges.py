"""Correction on awkward input: whatever comes in, what comes out parses (or is the
original), and correcting it again changes nothing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from archon_gateway.tools.codegen.correct import correct
from archon_gateway.tools.codegen.rules import RuleSet
from archon_gateway.tools.codegen.validate import validate

pytestmark = pytest.mark.anyio

RULES = RuleSet()
CASES = {
    "empty": "",
    "crlf": (
        "import os\r\nclass UserEffect(NodeEffect):\r\n    def __init__(self, c):\r\n"
        "        try:\r\n            pass\r\n        except:\r\n            pass\r\n"
    ),
    "tabs": (
        "class NodeAEffect(NodeEffect):\n\tasync def execute_effect(self, c):\n"
        "\t\ttry:\n\t\t\tpass\n\t\texcept:\n\t\t\tpass\n"
    ),
    "unicode": "def grüße(name: str):\n    print(f'Grüß dich, {name} — €')\n",
    "null byte": "x = 1\x00\n",
    # ruff gives up after 100 rounds of removing parentheses; correction must still settle.
    "ruff needs several runs": "x = " + "(" * 150 + "1" + ")" * 150 + "\n",
    "only a docstring": '"""Nothing here yet."""\n',
    "first import removed": "import os\nclass UserEffect(NodeEffect):\n    pass\n",
}


@pytest.mark.parametrize("code", CASES.values(), ids=CASES.keys())
async def test_correction_output_parses_and_is_a_fixpoint(code: str) -> None:
    first = await correct(code, RULES)
    if first.changed:
        ast.parse(first.code)
        assert first.reason is None
        assert first.diff
    else:
        assert first.code == code
    second = await correct(first.code, RULES)
    assert second.code == first.code
    assert second.fixed == []
    assert not second.changed


async def test_crlf_files_keep_crlf_and_gain_no_leading_blank_line() -> None:
    corrected = await correct(CASES["crlf"], RULES)
    assert corrected.code.startswith("from omnibase_core.nodes.node_effect import NodeEffect\r\n")
    assert corrected.code.count("\r\n") == corrected.code.count("\n")
    assert "except Exception:\r\n" in corrected.code


async def test_a_null_byte_is_a_syntax_finding() -> None:
    report, _ = await validate(CASES["null byte"], RULES)
    assert [f.rule for f in report.findings] == ["SYNTAX"]
    assert "null bytes" in report.findings[0].message


CORPUS = Path(__file__).parent / "corpus"
EVERYTHING = {path.name: path.read_text() for path in sorted(CORPUS.rglob("*.py"))} | CASES


@pytest.mark.parametrize("code", EVERYTHING.values(), ids=EVERYTHING.keys())
async def test_remaining_findings_are_what_validating_the_result_finds(code: str) -> None:
    # code_correct reuses ruff's report from its last --fix run instead of checking again.
    corrected = await correct(code, RULES)
    fresh, _ = await validate(corrected.code, RULES)
    assert corrected.remaining == fresh.findings
