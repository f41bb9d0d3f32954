"""What the code tools return: pydantic models, so each tool publishes an output schema."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Severity = Literal["error", "warning", "info"]
NodeKind = Literal["effect", "compute", "reducer", "orchestrator"]


class Finding(BaseModel):
    rule: str = Field(description="rule id: SYNTAX, CPLX001, ONEX001..., or a ruff code")
    severity: Severity
    message: str
    line: int = Field(description="1-based line")
    column: int = Field(description="1-based column")
    fixable: bool = Field(description="code_correct can fix this deterministically")


class ValidationReport(BaseModel):
    valid: bool = Field(description="true when no finding has severity error")
    score: float = Field(description="100 minus 10 per error, 3 per warning, 1 per info; 0-100")
    node_kind: NodeKind | None = Field(description="the node kind checked against, if any")
    findings: list[Finding]


class Correction(BaseModel):
    code: str = Field(description="the corrected code (the original when nothing was safe)")
    diff: str = Field(description="unified diff from the original to the corrected code")
    changed: bool
    fixed: list[str] = Field(description="rule ids with fewer findings after correction")
    remaining: list[Finding] = Field(description="findings on the corrected code")
    reason: str | None = Field(default=None, description="why the original was returned unchanged")


class ImportInfo(BaseModel):
    module: str = Field(description="imported module ('' for a bare relative import)")
    names: list[str] = Field(description="names taken from it; empty for `import module`")
    line: int


class FunctionInfo(BaseModel):
    name: str
    line: int
    is_async: bool
    parameters: list[str]
    returns: str | None = Field(description="the return annotation as written")
    complexity: int = Field(description="cyclomatic complexity")


class ClassInfo(BaseModel):
    name: str
    line: int
    bases: list[str]
    methods: list[FunctionInfo]
    node_kind: NodeKind | None = Field(description="ONEX node kind, when this is a node class")


class Analysis(BaseModel):
    parses: bool
    syntax_error: str | None = None
    docstring: str | None = Field(default=None, description="first line of the module docstring")
    lines: int
    node_kind: NodeKind | None = Field(description="best guess at the module's ONEX node kind")
    node_class: str | None = Field(description="the ONEX node class, when there is one")
    classes: list[ClassInfo]
    functions: list[FunctionInfo] = Field(description="module-level functions")
    imports: list[ImportInfo]
    dependencies: list[str] = Field(description="third-party top-level packages imported")
    stdlib: list[str] = Field(description="standard-library modules imported")
    mixins: list[str] = Field(description="Mixin* base classes already used")
    traits: list[str] = Field(description="what the code does: network, database, events, ...")
    max_complexity: int


class MixinRecommendation(BaseModel):
    mixin: str = Field(description="class name, e.g. MixinCaching")
    id: str = Field(description="catalog id, e.g. caching")
    import_from: str = Field(description="module to import the mixin from")
    summary: str
    score: float = Field(description="how strongly it matches; higher is better")
    reasons: list[str] = Field(description="why it is recommended")


class MixinConflict(BaseModel):
    a: str
    b: str
    reason: str


class MixinAdvice(BaseModel):
    node_kind: NodeKind | None
    traits: list[str] = Field(description="traits the advice was based on")
    already_present: list[str]
    recommendations: list[MixinRecommendation]
    conflicts: list[MixinConflict] = Field(
        description="incompatible pairs among present and recommended mixins"
    )
    not_recommended: list[str] = Field(
        description="catalog mixins ruled out for this node kind, with the reason"
    )
