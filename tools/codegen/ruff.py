"""ruff as a subprocess on stdin: diagnostics as findings, and safe fixes.

Always `--isolated` (no config file from the gateway's working directory leaks in) and
`--exit-zero`; each run is bounded by a time limit and killed when cancelled.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import anyio

from gateway.errors import InputRejected, ToolFailed
from tools.codegen.models import Finding, Severity
from tools.codegen.rules import RuleSet

_ERROR_PREFIXES = ("E9", "F63", "F7", "F82", "F811", "B")
_INFO_PREFIXES = ("I", "W", "UP")


@functools.cache
def ruff_binary() -> str:
    from ruff import find_ruff_bin  # the `ruff` package ships its binary

    try:
        return str(find_ruff_bin())
    except FileNotFoundError:
        raise ToolFailed("the ruff binary is missing; reinstall archon-gateway") from None


def _common_args(rules: RuleSet, filename: str) -> list[str]:
    args = [
        "check",
        "--isolated",
        "--exit-zero",
        "--no-cache",
        "--line-length",
        str(rules.line_length),
        "--target-version",
        rules.target_version,
        "--stdin-filename",
        filename,
    ]
    select = rules.ruff_select()
    args += ["--select", ",".join(select)] if select else []
    ignore = rules.ruff_ignore()
    args += ["--ignore", ",".join(ignore)] if ignore else []
    return args


async def _run(args: list[str], code: str, timeout: float) -> bytes:
    command = [ruff_binary(), *args]
    try:
        with anyio.fail_after(timeout):
            result = await anyio.run_process(command, input=code.encode(), check=False)
    except TimeoutError:
        raise ToolFailed(f"ruff did not finish within {timeout:g} s") from None
    except OSError as exc:
        raise ToolFailed(f"ruff could not be started: {exc.strerror or exc}") from None
    if result.returncode != 0:
        first = result.stderr.decode(errors="replace").strip().splitlines()
        detail = re.sub(r"^(error|ruff failed): ", "", first[0]) if first else "no output"
        if "select" in detail or "ignore" in detail or "rule" in detail.lower():
            raise InputRejected(f"rules: ruff refused the rule selection: {detail}")
        raise ToolFailed(f"ruff failed (exit {result.returncode}): {detail}")
    return result.stdout


def _severity(code: str) -> Severity:
    if code.startswith(_ERROR_PREFIXES):
        return "error"
    if code.startswith(_INFO_PREFIXES):
        return "info"
    return "warning"


def findings_from_json(payload: list[dict[str, Any]]) -> list[Finding]:
    findings = []
    for item in payload:
        code = item.get("code")
        if code is None:  # ruff's own syntax errors; the ast check reports those
            continue
        fix = item.get("fix") or {}
        findings.append(
            Finding(
                rule=code,
                severity=_severity(code),
                message=item.get("message", ""),
                line=item["location"]["row"],
                column=item["location"]["column"],
                fixable=fix.get("applicability") == "safe",
            )
        )
    return findings


async def ruff_findings(code: str, rules: RuleSet, filename: str, timeout: float) -> list[Finding]:
    if not rules.ruff_select():
        return []
    args = [*_common_args(rules, filename), "--output-format", "json", "-"]
    out = await _run(args, code, timeout)
    try:
        payload = json.loads(out or b"[]")
    except json.JSONDecodeError:
        raise ToolFailed("ruff returned output that is not JSON") from None
    return findings_from_json(payload)


async def ruff_fix(code: str, rules: RuleSet, filename: str, timeout: float) -> str:
    """The code with ruff's safe fixes applied (import sorting included when selected)."""
    if not rules.ruff_select():
        return code
    args = [*_common_args(rules, filename), "--fix", "--quiet", "-"]
    return (await _run(args, code, timeout)).decode()
