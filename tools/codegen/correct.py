"""code_correct: format-preserving libcst codemods, then ruff's safe fixes, to a fixpoint.

The codemods only touch what the checks marked fixable: renames of node classes (with
every reference in the module), missing imports of well-known names, bare `except:` and
missing `-> None`. Whatever comes out must parse, or the original is returned with the
reason. Passes repeat until nothing changes, so correcting twice changes nothing.
"""

from __future__ import annotations

import ast
import difflib
from collections import Counter
from typing import TYPE_CHECKING

import anyio.to_thread

from archon_gateway.tools.codegen.checks import CheckResult, Fixes, check
from archon_gateway.tools.codegen.models import Correction, Finding, NodeKind
from archon_gateway.tools.codegen.ruff import Ruff
from archon_gateway.tools.codegen.rules import KNOWN_IMPORTS, OWN_PREFIXES, RuleSet
from archon_gateway.tools.codegen.validate import merge, ruff_file_name, validate

if TYPE_CHECKING:
    import libcst as cst

MAX_PASSES = 3


def apply_codemods(code: str, fixes: Fixes) -> str:
    """Apply the fixes the checks decided on; returns `code` itself when there are none."""
    if not fixes.any():
        return code
    import libcst as cst
    from libcst.metadata import MetadataWrapper, ScopeProvider

    module = cst.parse_module(code)
    rename_nodes: dict[cst.CSTNode, str] = {}
    if fixes.renames:
        wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
        global_scope = wrapper.resolve(ScopeProvider).get(module)
        for old, new in fixes.renames.items():
            for assignment in global_scope[old] if global_scope is not None else ():
                node = getattr(assignment, "node", None)
                if isinstance(node, cst.ClassDef):
                    rename_nodes[node.name] = new
                for access in assignment.references:
                    rename_nodes[access.node] = new

    class Fixer(cst.CSTTransformer):
        def __init__(self) -> None:
            super().__init__()
            self.functions = 0
            self.ordinal: dict[cst.FunctionDef, int] = {}

        def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
            new = rename_nodes.get(original)
            return updated.with_changes(value=new) if new else updated

        def leave_SimpleString(
            self, original: cst.SimpleString, updated: cst.SimpleString
        ) -> cst.SimpleString:
            # String annotations and `__all__` entries naming a renamed class.
            value = original.evaluated_value
            if isinstance(value, str) and value in fixes.renames:
                start = original.prefix + original.quote
                return updated.with_changes(value=f"{start}{fixes.renames[value]}{original.quote}")
            return updated

        def leave_ExceptHandler(
            self, original: cst.ExceptHandler, updated: cst.ExceptHandler
        ) -> cst.ExceptHandler:
            if updated.type is not None or not fixes.bare_except:
                return updated
            return updated.with_changes(
                type=cst.Name("Exception"), whitespace_after_except=cst.SimpleWhitespace(" ")
            )

        def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
            # Pre-order, like the checks' numbering of functions in source order.
            self.ordinal[node] = self.functions
            self.functions += 1

        def leave_FunctionDef(
            self, original: cst.FunctionDef, updated: cst.FunctionDef
        ) -> cst.FunctionDef:
            if updated.returns is None and self.ordinal[original] in fixes.return_none:
                return updated.with_changes(returns=cst.Annotation(cst.Name("None")))
            return updated

    result = module.visit(Fixer())
    if fixes.missing_imports:
        result = _add_imports(result, fixes.missing_imports)
    return result.code


def _add_imports(module: cst.Module, names: list[str]) -> cst.Module:
    """Insert imports after the docstring and `from __future__` imports (ruff's isort pass,
    when selected, then merges and orders them)."""
    import libcst as cst

    lines = []
    for name in names:
        source, attr = KNOWN_IMPORTS[name]
        lines.append(f"from {source} import {attr}\n" if attr else f"import {source}\n")
    new = [cst.parse_statement(line) for line in sorted(set(lines))]
    body = list(module.body)
    index = 0
    if body and _is_docstring(body[0]):
        index = 1
    while index < len(body) and _is_future_import(body[index]):
        index += 1
    if index < len(body):
        # The following statement's blank lines and comments move above the new imports.
        following = body[index]
        assert isinstance(following, cst.SimpleStatementLine | cst.BaseCompoundStatement)
        new[0] = new[0].with_changes(leading_lines=following.leading_lines)
        body[index] = following.with_changes(leading_lines=())
    elif index > 0:
        new[0] = new[0].with_changes(leading_lines=(cst.EmptyLine(),))
    return module.with_changes(body=[*body[:index], *new, *body[index:]])


def _is_docstring(statement: cst.CSTNode) -> bool:
    import libcst as cst

    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, cst.SimpleString | cst.ConcatenatedString)
    )


def _is_future_import(statement: cst.CSTNode) -> bool:
    import libcst as cst

    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.ImportFrom)
        and isinstance(statement.body[0].module, cst.Name)
        and statement.body[0].module.value == "__future__"
    )


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def unified_diff(before: str, after: str, filename: str) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"a/{filename}",
            tofile=f"b/{filename}",
        )
    )


async def correct(
    code: str,
    rules: RuleSet,
    *,
    filename: str | None = None,
    node_kind: NodeKind | None = None,
    ruff: Ruff | None = None,
) -> Correction:
    ruff = ruff or Ruff()
    name = ruff_file_name(filename)
    before, checked = await validate(code, rules, filename=filename, node_kind=node_kind, ruff=ruff)
    if checked.tree is None:
        return Correction(
            code=code,
            diff="",
            changed=False,
            fixed=[],
            remaining=before.findings,
            reason="the code does not parse, so nothing was changed; fix the syntax error first",
        )
    current, current_checked = code, checked
    current_lint: list[Finding] | None = None  # ruff's findings on `current`, when known
    ruff_work = any(f.fixable and not f.rule.startswith(OWN_PREFIXES) for f in before.findings)
    settled = False
    for _ in range(MAX_PASSES):
        modded = await anyio.to_thread.run_sync(apply_codemods, current, current_checked.fixes)
        if not _parses(modded):
            return _unchanged(code, before.findings, "a codemod produced code that does not parse")
        if ruff_work or modded != current:
            outcome = await ruff.fix(modded, rules, name)
            fixed, converged, lint = outcome.code, outcome.converged, outcome.remaining
            if not code.startswith(("\n", "\r")) and fixed.startswith(("\n", "\r")):
                # Removing a file's first import can leave a leading blank line behind.
                fixed, lint = fixed.lstrip("\r\n"), None
        else:
            fixed, converged, lint = modded, True, None
        if not _parses(fixed):
            reason = "ruff's fixes produced code that does not parse"
            return _unchanged(code, before.findings, reason)
        if fixed == current:
            settled = True
            current_lint = lint if lint is not None else current_lint
            break
        current, current_lint = fixed, lint
        current_checked = await anyio.to_thread.run_sync(
            _check, current, rules, filename, node_kind
        )
        if converged and not current_checked.fixes.any():
            settled = True  # ruff's --fix ran to its fixpoint and no codemod applies
            break
        ruff_work = not converged
    if not settled:
        reason = f"the corrections did not settle in {MAX_PASSES} passes, so nothing was changed"
        return _unchanged(code, before.findings, reason)
    if current == code:
        remaining = before.findings
    elif current_lint is not None:
        remaining = merge(current_checked, current_lint)  # saves a second ruff check
    else:
        after, _ = await validate(current, rules, filename=filename, node_kind=node_kind, ruff=ruff)
        remaining = after.findings
    counts_before = Counter(f.rule for f in before.findings)
    counts_after = Counter(f.rule for f in remaining)
    fixed_rules = sorted(rule for rule, n in counts_before.items() if counts_after[rule] < n)
    return Correction(
        code=current,
        diff=unified_diff(code, current, name),
        changed=current != code,
        fixed=fixed_rules,
        remaining=remaining,
    )


def _check(code: str, rules: RuleSet, filename: str | None, kind: NodeKind | None) -> CheckResult:
    return check(code, rules, filename=filename, node_kind=kind)


def _unchanged(code: str, findings: list[Finding], reason: str) -> Correction:
    return Correction(
        code=code, diff="", changed=False, fixed=[], remaining=findings, reason=reason
    )
