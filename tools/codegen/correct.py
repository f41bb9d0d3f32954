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

import anyio.to_thread

from tools.codegen.checks import CheckResult, Fixes, check
from tools.codegen.models import Correction, Finding, NodeKind
from tools.codegen.ruff import ruff_fix
from tools.codegen.rules import KNOWN_IMPORTS, RuleSet
from tools.codegen.validate import ruff_file_name, validate

MAX_PASSES = 3


def apply_codemods(code: str, fixes: Fixes) -> str:
    """Apply the fixes the checks decided on; returns `code` itself when there are none."""
    if not (fixes.renames or fixes.missing_imports or fixes.return_none or fixes.bare_except):
        return code
    import libcst as cst
    from libcst.codemod import CodemodContext
    from libcst.codemod.visitors import AddImportsVisitor
    from libcst.metadata import MetadataWrapper, PositionProvider, ScopeProvider

    wrapper = MetadataWrapper(cst.parse_module(code))
    positions = wrapper.resolve(PositionProvider)
    scopes = wrapper.resolve(ScopeProvider)
    module = wrapper.module
    rename_nodes: dict[cst.CSTNode, str] = {}
    global_scope = scopes.get(module)
    if fixes.renames and global_scope is not None:
        for old, new in fixes.renames.items():
            for assignment in global_scope[old]:
                node = getattr(assignment, "node", None)
                if isinstance(node, cst.ClassDef):
                    rename_nodes[node.name] = new
                for access in assignment.references:
                    rename_nodes[access.node] = new

    class Fixer(cst.CSTTransformer):
        def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
            new = rename_nodes.get(original)
            return updated.with_changes(value=new) if new else updated

        def leave_SimpleString(
            self, original: cst.SimpleString, updated: cst.SimpleString
        ) -> cst.SimpleString:
            # String annotations and `__all__` entries naming a renamed class.
            value = original.evaluated_value
            if isinstance(value, str) and value in fixes.renames:
                quote = original.prefix + original.quote
                return updated.with_changes(value=f"{quote}{fixes.renames[value]}{original.quote}")
            return updated

        def leave_ExceptHandler(
            self, original: cst.ExceptHandler, updated: cst.ExceptHandler
        ) -> cst.ExceptHandler:
            if updated.type is not None or not fixes.bare_except:
                return updated
            return updated.with_changes(
                type=cst.Name("Exception"), whitespace_after_except=cst.SimpleWhitespace(" ")
            )

        def leave_FunctionDef(
            self, original: cst.FunctionDef, updated: cst.FunctionDef
        ) -> cst.FunctionDef:
            line = positions[original.name].start.line
            if updated.returns is None and (line, original.name.value) in fixes.return_none:
                return updated.with_changes(returns=cst.Annotation(cst.Name("None")))
            return updated

    result = module.visit(Fixer())
    if fixes.missing_imports:
        context = CodemodContext()
        for name in fixes.missing_imports:
            source, attr = KNOWN_IMPORTS[name]
            AddImportsVisitor.add_needed_import(context, source, attr)
        result = AddImportsVisitor(context).transform_module(result)
    return result.code


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
    ruff_timeout: float = 10.0,
) -> Correction:
    name = ruff_file_name(filename)
    before, checked = await validate(
        code, rules, filename=filename, node_kind=node_kind, ruff_timeout=ruff_timeout
    )
    if checked.tree is None:
        return Correction(
            code=code,
            diff="",
            changed=False,
            fixed=[],
            remaining=before.findings,
            reason="the code does not parse, so nothing was changed; fix the syntax error first",
        )
    current, fixes = code, checked.fixes
    for _ in range(MAX_PASSES):
        modded = await anyio.to_thread.run_sync(apply_codemods, current, fixes)
        if not _parses(modded):
            return _unchanged(code, before.findings, "a codemod produced code that does not parse")
        fixed = await ruff_fix(modded, rules, name, ruff_timeout)
        if not _parses(fixed):
            reason = "ruff's fixes produced code that does not parse"
            return _unchanged(code, before.findings, reason)
        if fixed == current:
            break
        current = fixed
        fixes = (await anyio.to_thread.run_sync(_check, current, rules, filename, node_kind)).fixes
    after, _ = await validate(
        current, rules, filename=filename, node_kind=node_kind, ruff_timeout=ruff_timeout
    )
    counts_before = Counter(f.rule for f in before.findings)
    counts_after = Counter(f.rule for f in after.findings)
    fixed_rules = sorted(rule for rule, n in counts_before.items() if counts_after[rule] < n)
    return Correction(
        code=current,
        diff=unified_diff(code, current, name),
        changed=current != code,
        fixed=fixed_rules,
        remaining=after.findings,
    )


def _check(code: str, rules: RuleSet, filename: str | None, kind: NodeKind | None) -> CheckResult:
    return check(code, rules, filename=filename, node_kind=kind)


def _unchanged(code: str, findings: list[Finding], reason: str) -> Correction:
    return Correction(
        code=code, diff="", changed=False, fixed=[], remaining=findings, reason=reason
    )
