"""code_validate: ast checks (in a worker thread) and ruff (a subprocess) side by side."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

import anyio
import anyio.to_thread

from archon_gateway.core.errors import GatewayError, InvalidArgument
from archon_gateway.tools.codegen.checks import CheckResult, check
from archon_gateway.tools.codegen.models import Finding, NodeKind, ValidationReport
from archon_gateway.tools.codegen.ruff import Ruff
from archon_gateway.tools.codegen.rules import RuleSet

PENALTY = {"error": 10.0, "warning": 3.0, "info": 1.0}
MAX_INPUT_BYTES = 1_000_000
_UNDEFINED = re.compile(r"Undefined name `(\w+)`")


def require_python(code: str, language: str, limit: int) -> None:
    if language.strip().lower() not in ("python", "py", "python3"):
        # Only a plausible language name is echoed: argument values may be secrets.
        shown = repr(language) if re.fullmatch(r"[A-Za-z+#]{1,16}", language) else "this value"
        raise InvalidArgument(f"language: {shown} is not supported; only 'python' is")
    size = len(code.encode("utf-8", errors="surrogatepass"))
    if size > limit:
        raise InvalidArgument(
            f"code: {size} bytes is over the {limit}-byte limit; send one file at a time"
        )


def ruff_file_name(filename: str | None) -> str:
    """A plain `*.py` name for ruff's --stdin-filename (no directories, nothing odd)."""
    name = PurePosixPath((filename or "").replace("\\", "/")).name
    return name if re.fullmatch(r"[\w.-]+\.pyi?", name) else "code.py"


def score(findings: list[Finding]) -> float:
    return max(0.0, 100.0 - sum(PENALTY[f.severity] for f in findings))


def merge(checked: CheckResult, ruff: list[Finding]) -> list[Finding]:
    """Our findings plus ruff's, minus ruff's F821 for names ONEX007 already reports."""
    ours = set(checked.fixes.missing_imports)

    def shadowed(finding: Finding) -> bool:
        match = _UNDEFINED.match(finding.message) if finding.rule == "F821" else None
        return bool(match and match.group(1) in ours)

    findings = [*checked.findings, *(f for f in ruff if not shadowed(f))]
    findings.sort(key=lambda f: (f.line, f.column, f.rule))
    return findings


async def validate(
    code: str,
    rules: RuleSet,
    *,
    filename: str | None = None,
    node_kind: NodeKind | None = None,
    ruff: Ruff | None = None,
) -> tuple[ValidationReport, CheckResult]:
    runner = ruff or Ruff()
    checked: CheckResult | None = None
    linted: list[Finding] = []

    async def run_checks() -> None:
        nonlocal checked
        checked = await anyio.to_thread.run_sync(
            lambda: check(code, rules, filename=filename, node_kind=node_kind)
        )

    async def run_ruff() -> None:
        nonlocal linted
        linted = await runner.findings(code, rules, ruff_file_name(filename))

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(run_checks)
            group.start_soon(run_ruff)
    except ExceptionGroup as group:
        for exc in group.exceptions:
            if isinstance(exc, GatewayError):
                raise exc from exc.__cause__  # out of the group, its own cause kept
        raise
    assert checked is not None
    findings = checked.findings if checked.tree is None else merge(checked, linted)
    report = ValidationReport(
        valid=not any(f.severity == "error" for f in findings),
        score=score(findings) if checked.tree is not None else 0.0,
        node_kind=checked.node_kind,
        findings=findings,
    )
    return report, checked
