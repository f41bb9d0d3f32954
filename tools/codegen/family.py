"""The code tools as one native family: validate, correct and analyze generated Python (ONEX
nodes), and recommend ONEX mixins from the shipped catalog (`mixins.toml`).

libcst is imported only when code_correct first runs, to keep gateway start-up fast.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Annotated

from fastmcp.tools import Tool
from mcp_types import ToolAnnotations
from pydantic import Field

from archon_gateway.core.errors import InvalidArgument, tool_errors
from archon_gateway.core.tool_family import ToolFamily
from archon_gateway.tools.codegen.models import (
    Analysis,
    Correction,
    MixinAdvice,
    NodeKind,
    ValidationReport,
)
from archon_gateway.tools.codegen.offload import CodeWork
from archon_gateway.tools.codegen.ruff import Ruff
from archon_gateway.tools.codegen.rules import RuleSet
from archon_gateway.tools.codegen.validate import MAX_INPUT_BYTES, require_python

Code = Annotated[str, Field(description="the Python source of one module")]
Language = Annotated[str, Field(description="source language; only 'python' is supported")]
Kind = Annotated[
    NodeKind | None,
    Field(description="ONEX node kind to check against; guessed from the code when omitted"),
]
FileName = Annotated[
    str | None,
    Field(description="the module's file name, to check node_<name>_<kind>.py naming"),
]
Select = Annotated[
    list[str] | None,
    Field(
        description="rule ids or prefixes to run, e.g. ['ONEX', 'CPLX', 'F', 'E9']; "
        "default: ONEX, CPLX and ruff's E4 E7 E9 F W I B UP ASYNC"
    ),
]
Ignore = Annotated[list[str] | None, Field(description="rule ids or prefixes to skip")]
Complexity = Annotated[
    int | None,
    Field(ge=1, le=100, description="CPLX001's limit on cyclomatic complexity (default 10)"),
]


def _read_only(title: str) -> ToolAnnotations:
    return ToolAnnotations(
        title=title,
        read_only_hint=True,
        destructive_hint=False,
        idempotent_hint=True,
        open_world_hint=False,
    )


class CodegenTools(ToolFamily):
    """code_validate, code_correct, code_analyze and mixin_recommend. No probe; ruff runs
    as a subprocess with its own time limit; the lifespan stops the worker processes."""

    def __init__(
        self,
        *,
        max_input_bytes: int = MAX_INPUT_BYTES,
        ruff_timeout: float = 10.0,
        max_complexity: int = 10,
        workers: int = 2,
        offload_bytes: int = 64 * 1024,
    ) -> None:
        self._work = CodeWork(workers=workers, offload_bytes=offload_bytes)
        self._max_input_bytes = max_input_bytes
        self._max_complexity = max_complexity
        self._ruff = Ruff(time_limit=ruff_timeout)

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Worker processes start on demand; they stop with the server."""
        try:
            yield
        finally:
            await self._work.aclose()

    def tools(self) -> Sequence[Tool]:
        return [
            Tool.from_function(self.code_validate, annotations=_read_only("Validate code")),
            Tool.from_function(self.code_correct, annotations=_read_only("Correct code")),
            Tool.from_function(self.code_analyze, annotations=_read_only("Analyze code structure")),
            Tool.from_function(
                self.mixin_recommend, annotations=_read_only("Recommend ONEX mixins")
            ),
        ]

    def _rule_set(
        self, rules: list[str] | None, ignore: list[str] | None, complexity: int | None
    ) -> RuleSet:
        return RuleSet.build(rules, ignore, max_complexity=complexity or self._max_complexity)

    async def code_validate(
        self,
        code: Code,
        language: Language = "python",
        node_kind: Kind = None,
        filename: FileName = None,
        rules: Select = None,
        ignore: Ignore = None,
        max_complexity: Complexity = None,
    ) -> ValidationReport:
        """Check Python code: syntax (line/column), ruff diagnostics, cyclomatic complexity and
        ONEX node conventions (Node<Name><Kind> class, node_<name>_<kind>.py file, the kind's
        async entry method, no bare except, typed signatures). Returns findings (rule,
        severity, message, line, column, fixable), `valid` (no errors) and a 0-100 score."""
        with tool_errors():
            require_python(code, language, self._max_input_bytes)
            rule_set = self._rule_set(rules, ignore, max_complexity)
            report = await self._work.run(
                len(code), "validate", code, rule_set, filename, node_kind, self._ruff
            )
            assert isinstance(report, ValidationReport)
            return report

    async def code_correct(
        self,
        code: Code,
        language: Language = "python",
        node_kind: Kind = None,
        filename: FileName = None,
        rules: Select = None,
        ignore: Ignore = None,
        max_complexity: Complexity = None,
    ) -> Correction:
        """Fix Python code deterministically, keeping its formatting and comments: rename node
        classes to Node<Name><Kind> (and their references), add missing imports of
        well-known names, replace bare `except:`, add missing `-> None`, then ruff's safe
        fixes (import sorting included). Returns the code, a unified diff, the rule ids fixed
        and the findings that remain. Never returns code that does not parse; correcting
        the result again changes nothing."""
        with tool_errors():
            require_python(code, language, self._max_input_bytes)
            rule_set = self._rule_set(rules, ignore, max_complexity)
            correction = await self._work.run(
                len(code), "correct", code, rule_set, filename, node_kind, self._ruff
            )
            assert isinstance(correction, Correction)
            return correction

    async def code_analyze(
        self, code: Code, language: Language = "python", filename: FileName = None
    ) -> Analysis:
        """Summarize a Python module's structure: classes (bases, methods, ONEX node kind),
        functions (parameters, return type, complexity), imports, third-party and stdlib
        dependencies, Mixin bases, traits (network, database, events, pure, ...) and a guess
        at its ONEX node kind. Syntax errors are reported, not raised."""
        with tool_errors():
            require_python(code, language, self._max_input_bytes)
            analysis = await self._work.run(len(code), "analyze", code, filename)
            assert isinstance(analysis, Analysis)
            return analysis

    async def mixin_recommend(
        self,
        code: Annotated[str | None, Field(description="the node's Python source")] = None,
        description: Annotated[
            str | None, Field(description="what the node does, in words")
        ] = None,
        node_kind: Kind = None,
    ) -> MixinAdvice:
        """Recommend ONEX mixins (retry, circuit breaker, health check, metrics, event bus,
        caching, transaction, FSM, introspection) for a node, from its code and/or a
        description: each with the reasons it matches; mixins that do not fit the node kind
        are ruled out with why, and incompatible pairs are flagged."""
        limit = self._max_input_bytes
        with tool_errors():
            if not (code or description):
                raise InvalidArgument("give code, description, or both")
            if code:
                require_python(code, "python", limit)
            if description and len(description.encode()) > limit:
                raise InvalidArgument(f"description: over the {limit}-byte limit")
            size = len(code or "") + len(description or "")
            advice = await self._work.run(size, "recommend", code, description, node_kind)
            assert isinstance(advice, MixinAdvice)
            return advice
