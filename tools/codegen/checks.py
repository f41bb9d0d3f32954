"""Checks on the syntax tree (stdlib `ast`): syntax, complexity and ONEX node conventions.

Pure functions over a string, cheap enough to run in a worker thread beside ruff. The same
pass also records what code_correct may change, so checks and fixes never disagree.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from archon_gateway.tools.codegen.models import Finding, NodeKind
from archon_gateway.tools.codegen.rules import (
    KINDS,
    KNOWN_IMPORTS,
    RuleSet,
    conventional_class_name,
    conventional_file_name,
    kind_from_file_name,
)

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
_BUILTINS = frozenset(dir(builtins))


@dataclass
class Fixes:
    """What code_correct's codemods may change, as decided by the checks."""

    renames: dict[str, str] = field(default_factory=dict)
    missing_imports: list[str] = field(default_factory=list)
    return_none: set[int] = field(default_factory=set)  # functions, numbered in source order
    bare_except: bool = False

    def any(self) -> bool:
        return bool(self.renames or self.missing_imports or self.return_none or self.bare_except)


@dataclass
class CheckResult:
    tree: ast.Module | None
    findings: list[Finding]
    fixes: Fixes
    node_kind: NodeKind | None


def parse(code: str, filename: str = "<code>") -> ast.Module | Finding:
    """The module's tree, or a SYNTAX finding naming where it broke."""
    try:
        return ast.parse(code, filename=filename)
    except SyntaxError as exc:
        line = exc.lineno or 1
        column = exc.offset or 1
        return Finding(
            rule="SYNTAX",
            severity="error",
            message=f"syntax error: {exc.msg}",
            line=line,
            column=column,
            fixable=False,
        )
    except (ValueError, RecursionError, MemoryError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        return Finding(
            rule="SYNTAX",
            severity="error",
            message=f"cannot parse: {reason}",
            line=1,
            column=1,
            fixable=False,
        )


def complexity(function: FunctionNode) -> int:
    """McCabe cyclomatic complexity of one function (nested functions not included)."""
    score = 1
    for node in _walk_own(function):
        if isinstance(
            node, ast.If | ast.For | ast.AsyncFor | ast.While | ast.IfExp | ast.ExceptHandler
        ):
            score += 1
        elif isinstance(node, ast.BoolOp):
            score += len(node.values) - 1
        elif isinstance(node, ast.comprehension):
            score += 1 + len(node.ifs)
        elif isinstance(node, ast.match_case | ast.Assert):
            score += 1
    return score


def _walk_own(function: FunctionNode) -> Iterator[ast.AST]:
    """Every node in a function's body, without descending into nested scopes."""
    stack: list[ast.AST] = list(function.body)
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                stack.append(child)


def dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Subscript):
        return dotted(node.value)
    if isinstance(node, ast.Call):
        return dotted(node.func)
    return ast.unparse(node)


def class_kind(node: ast.ClassDef) -> NodeKind | None:
    """The ONEX kind a class declares through its base, entry method or name."""
    bases = {dotted(base).rsplit(".", 1)[-1] for base in node.bases}
    for spec in KINDS.values():
        if bases & set(spec.bases):
            return spec.kind
    methods = {item.name for item in node.body if isinstance(item, FunctionNode)}
    for spec in KINDS.values():
        if spec.entry_point in methods:
            return spec.kind
    for spec in KINDS.values():
        if node.name.endswith(spec.suffix) or node.name.startswith(f"Node{spec.suffix}"):
            return spec.kind
    return None


def node_classes(
    tree: ast.Module, node_kind: NodeKind | None
) -> list[tuple[ast.ClassDef, NodeKind | None]]:
    found = []
    for item in tree.body:
        if not isinstance(item, ast.ClassDef):
            continue
        kind = class_kind(item)
        # `class NodeUserProfile:` is a node missing its base; `NodeConfig(BaseModel)` is not.
        if kind is not None or (item.name.startswith("Node") and not item.bases):
            found.append((item, node_kind or kind))
    return found


def _is_stub(function: FunctionNode) -> bool:
    decorators = {dotted(d).rsplit(".", 1)[-1] for d in function.decorator_list}
    if decorators & {"abstractmethod", "overload", "property"}:
        return True
    body = list(function.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # docstring
    if len(body) != 1:
        return not body
    only = body[0]
    if isinstance(only, ast.Pass):
        return True
    if isinstance(only, ast.Expr) and isinstance(only.value, ast.Constant):
        return only.value.value is Ellipsis
    return isinstance(only, ast.Raise) and "NotImplementedError" in ast.unparse(only)


def returns_nothing(function: FunctionNode) -> bool:
    """True when the function never returns a value and is not a generator or stub."""
    if function.name == "__init__":
        return True
    if _is_stub(function):
        return False
    for node in _walk_own(function):
        if isinstance(node, ast.Yield | ast.YieldFrom):
            return False
        if isinstance(node, ast.Return) and node.value is not None:
            returns_none = isinstance(node.value, ast.Constant) and node.value.value is None
            if not returns_none:
                return False
    return True


def bound_names(tree: ast.Module) -> set[str]:
    """Every name the module binds anywhere (conservative: any scope counts)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, FunctionNode | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.alias):
            names.add(node.asname or node.name.split(".", 1)[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            names.update(node.names)
        elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.add(node.rest)
    return names


class _Checker:
    def __init__(self, code: str, rules: RuleSet) -> None:
        self.lines = code.splitlines()
        self.rules = rules
        self.findings: list[Finding] = []
        self.fixes = Fixes()

    def column(self, line: int, offset: int) -> int:
        """ast's 0-based UTF-8 byte offset as a 1-based character column."""
        if 0 < line <= len(self.lines):
            text = self.lines[line - 1].encode()[:offset].decode(errors="ignore")
            return len(text) + 1
        return offset + 1

    def add(self, rule: str, message: str, node: ast.AST | None, fixable: bool = False) -> None:
        if not self.rules.enabled(rule):
            return
        line = getattr(node, "lineno", 1) if node is not None else 1
        offset = getattr(node, "col_offset", 0) if node is not None else 0
        self.findings.append(
            Finding(
                rule=rule,
                severity=self.rules.severity(rule),
                message=message,
                line=line,
                column=self.column(line, offset),
                fixable=fixable,
            )
        )


def check(
    code: str,
    rules: RuleSet,
    *,
    filename: str | None = None,
    node_kind: NodeKind | None = None,
) -> CheckResult:
    base_name = PurePosixPath(filename.replace("\\", "/")).name if filename else None
    kind = node_kind or (kind_from_file_name(base_name) if base_name else None)
    parsed = parse(code, filename or "<code>")
    if isinstance(parsed, Finding):
        return CheckResult(None, [parsed], Fixes(), kind)
    tree = parsed
    checker = _Checker(code, rules)
    bound = bound_names(tree)

    nodes = node_classes(tree, kind)
    if not nodes and kind is not None:
        expected = f"Node<Name>{KINDS[kind].suffix}"
        checker.add("ONEX009", f"no ONEX node class found; expected a {expected} class", None)
    for cls, cls_kind in nodes:
        kind = kind or cls_kind
        _check_node_class(checker, cls, cls_kind, base_name, bound)

    methods = {
        id(item)
        for parent in ast.walk(tree)
        if isinstance(parent, ast.ClassDef)
        for item in parent.body
        if isinstance(item, FunctionNode)
    }
    functions = sorted(
        (node for node in ast.walk(tree) if isinstance(node, FunctionNode)),
        key=lambda node: (node.lineno, node.col_offset),
    )
    for ordinal, function in enumerate(functions):
        _check_function(checker, function, ordinal, id(function) in methods)
    for node in ast.walk(tree):
        if isinstance(node, ast.ExceptHandler) and node.type is None:
            checker.add("ONEX004", "bare `except:`; catch `Exception` (or narrower)", node, True)
            checker.fixes.bare_except = checker.rules.enabled("ONEX004")

    _check_missing_imports(checker, tree, bound)
    checker.findings.sort(key=lambda f: (f.line, f.column))
    return CheckResult(tree, checker.findings, checker.fixes, kind)


def _check_node_class(
    checker: _Checker,
    cls: ast.ClassDef,
    kind: NodeKind | None,
    base_name: str | None,
    bound: set[str],
) -> None:
    if kind is None:
        checker.add(
            "ONEX001",
            f"class {cls.name} looks like a node but its kind is unknown: end the name with "
            "Effect, Compute, Reducer or Orchestrator, or pass node_kind",
            cls,
        )
        return
    spec = KINDS[kind]
    expected = conventional_class_name(cls.name, kind)
    if expected != cls.name:
        fixable = expected is not None and expected not in bound
        hint = f"; rename it to {expected}" if expected else ""
        checker.add(
            "ONEX001",
            f"{kind} node class {cls.name} is not named Node<Name>{spec.suffix}{hint}",
            cls,
            fixable,
        )
        if fixable and expected is not None and checker.rules.enabled("ONEX001"):
            checker.fixes.renames[cls.name] = expected
    bases = {dotted(base).rsplit(".", 1)[-1] for base in cls.bases}
    if not bases & set(spec.bases):
        checker.add(
            "ONEX008", f"{cls.name} should inherit {spec.bases[0]} ({spec.base_module})", cls
        )
    methods = {item.name: item for item in cls.body if isinstance(item, FunctionNode)}
    entry = methods.get(spec.entry_point)
    if entry is None:
        checker.add(
            "ONEX003",
            f"{kind} node {cls.name} has no `async def {spec.entry_point}(self, contract)`",
            cls,
        )
    elif not isinstance(entry, ast.AsyncFunctionDef):
        checker.add("ONEX010", f"{spec.entry_point} should be `async def`", entry)
    if base_name is not None:
        expected_file = conventional_file_name(expected or cls.name, kind)
        if expected_file and base_name != expected_file:
            checker.add(
                "ONEX002",
                f"file {base_name} should be named {expected_file} for class "
                f"{expected or cls.name}",
                None,
            )


def _check_function(
    checker: _Checker, function: FunctionNode, ordinal: int, is_method: bool
) -> None:
    positional = [*function.args.posonlyargs, *function.args.args]
    decorators = {dotted(d).rsplit(".", 1)[-1] for d in function.decorator_list}
    if is_method and positional and "staticmethod" not in decorators:
        positional = positional[1:]  # self / cls
    params = [*positional, *function.args.kwonlyargs]
    if function.args.vararg:
        params.append(function.args.vararg)
    if function.args.kwarg:
        params.append(function.args.kwarg)
    untyped = [param.arg for param in params if param.annotation is None]
    if untyped:
        names = ", ".join(untyped)
        noun = "parameter" if len(untyped) == 1 else "parameters"
        checker.add("ONEX006", f"{function.name}: {noun} {names} without type annotation", function)
    if function.returns is None:
        fixable = returns_nothing(function)
        advice = "add `-> None`" if fixable else "add the return type"
        checker.add(
            "ONEX005", f"{function.name} has no return annotation; {advice}", function, fixable
        )
        if fixable and checker.rules.enabled("ONEX005"):
            checker.fixes.return_none.add(ordinal)
    score = complexity(function)
    if score > checker.rules.max_complexity:
        checker.add(
            "CPLX001",
            f"{function.name} has cyclomatic complexity {score} "
            f"(limit {checker.rules.max_complexity}); split it",
            function,
        )


def _check_missing_imports(checker: _Checker, tree: ast.Module, bound: set[str]) -> None:
    first_use: dict[str, ast.Name] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)):
            continue
        name = node.id
        if name in bound or name in _BUILTINS or name not in KNOWN_IMPORTS:
            continue
        seen = first_use.get(name)
        if seen is None or (node.lineno, node.col_offset) < (seen.lineno, seen.col_offset):
            first_use[name] = node
    for name, node in sorted(first_use.items(), key=lambda item: item[1].lineno):
        module, attr = KNOWN_IMPORTS[name]
        statement = f"from {module} import {attr}" if attr else f"import {module}"
        message = f"`{name}` is used but not imported; add `{statement}`"
        checker.add("ONEX007", message, node, True)
        if checker.rules.enabled("ONEX007"):
            checker.fixes.missing_imports.append(name)
