"""The rule set: ONEX node conventions, complexity, and which ruff rules run.

ONEX nodes come in four kinds. A node class is named `Node<Name><Kind>` and lives in
`node_<name>_<kind>.py`; it inherits the kind's base class and implements the kind's entry
point as an async method.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from archon_gateway.core.errors import InvalidArgument
from archon_gateway.tools.codegen.models import NodeKind, Severity


@dataclass(frozen=True)
class KindSpec:
    kind: NodeKind
    suffix: str
    bases: tuple[str, ...]
    entry_point: str
    base_module: str


KINDS: dict[NodeKind, KindSpec] = {
    "effect": KindSpec(
        "effect",
        "Effect",
        ("NodeEffect", "NodeEffectService"),
        "execute_effect",
        "omnibase_core.nodes.node_effect",
    ),
    "compute": KindSpec(
        "compute",
        "Compute",
        ("NodeCompute", "NodeComputeService"),
        "execute_compute",
        "omnibase_core.nodes.node_compute",
    ),
    "reducer": KindSpec(
        "reducer",
        "Reducer",
        ("NodeReducer", "NodeReducerService"),
        "execute_reduction",
        "omnibase_core.nodes.node_reducer",
    ),
    "orchestrator": KindSpec(
        "orchestrator",
        "Orchestrator",
        ("NodeOrchestrator", "NodeOrchestratorService"),
        "execute_orchestration",
        "omnibase_core.nodes.node_orchestrator",
    ),
}


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    severity: Severity
    summary: str


RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule("SYNTAX", "syntax-error", "error", "the code does not parse"),
        Rule("CPLX001", "too-complex", "warning", "a function's cyclomatic complexity is high"),
        Rule("ONEX001", "node-class-name", "error", "node class is not Node<Name><Kind>"),
        Rule("ONEX002", "node-file-name", "warning", "file is not node_<name>_<kind>.py"),
        Rule("ONEX003", "missing-entry-point", "error", "node lacks its kind's entry method"),
        Rule("ONEX004", "bare-except", "error", "`except:` also catches cancellation and exit"),
        Rule("ONEX005", "missing-return-type", "warning", "function has no return annotation"),
        Rule("ONEX006", "untyped-parameter", "warning", "parameter has no type annotation"),
        Rule("ONEX007", "missing-import", "error", "a well-known name is used but not imported"),
        Rule("ONEX008", "node-base-class", "warning", "node does not inherit its kind's base"),
        Rule("ONEX009", "no-node-class", "error", "a node file without a node class"),
        Rule("ONEX010", "sync-entry-point", "warning", "the entry method is not async"),
    )
}

# Names assistants use without importing, and where they come from: (module, name or None
# for `import module`). ONEX007 reports them; code_correct adds the import.
KNOWN_IMPORTS: dict[str, tuple[str, str | None]] = {
    **{
        name: ("typing", name)
        for name in (
            "Any",
            "Callable",
            "ClassVar",
            "Dict",
            "Final",
            "Iterable",
            "Iterator",
            "List",
            "Literal",
            "Mapping",
            "Optional",
            "Protocol",
            "Sequence",
            "Set",
            "TYPE_CHECKING",
            "Tuple",
            "TypeVar",
            "Union",
            "cast",
        )
    },
    **{name: (name, None) for name in ("asyncio", "json", "logging", "os", "re", "time", "uuid")},
    "UUID": ("uuid", "UUID"),
    "uuid4": ("uuid", "uuid4"),
    "Path": ("pathlib", "Path"),
    "dataclass": ("dataclasses", "dataclass"),
    "field": ("dataclasses", "field"),
    "datetime": ("datetime", "datetime"),
    "timedelta": ("datetime", "timedelta"),
    "timezone": ("datetime", "timezone"),
    "Enum": ("enum", "Enum"),
    "ABC": ("abc", "ABC"),
    "abstractmethod": ("abc", "abstractmethod"),
    "BaseModel": ("pydantic", "BaseModel"),
    "Field": ("pydantic", "Field"),
    "ConfigDict": ("pydantic", "ConfigDict"),
    **{spec.bases[0]: (spec.base_module, spec.bases[0]) for spec in KINDS.values()},
    "ModelONEXContainer": (
        "omnibase_core.models.container.model_onex_container",
        "ModelONEXContainer",
    ),
    "ModelOnexError": ("omnibase_core.models.errors.model_onex_error", "ModelOnexError"),
    "EnumCoreErrorCode": ("omnibase_core.enums.enum_core_error_code", "EnumCoreErrorCode"),
}

# Our own rules cover these ruff rules better (and code_correct fixes them); asking ruff
# too would report each problem twice.
SHADOWED_RUFF_RULES = {"ONEX004": "E722"}

DEFAULT_SELECT = ("ONEX", "CPLX", "E4", "E7", "E9", "F", "W", "I", "B", "UP", "ASYNC")
OWN_PREFIXES = ("ONEX", "CPLX", "SYNTAX")
_SELECTOR = re.compile(r"^[A-Z]{1,10}[0-9]{0,4}$")


@dataclass(frozen=True)
class RuleSet:
    """Which rules run. `select`/`ignore` hold rule ids or prefixes ("ONEX", "ONEX004",
    "F", "E7"); prefixes that are not our own go to ruff. SYNTAX always runs."""

    select: tuple[str, ...] = DEFAULT_SELECT
    ignore: tuple[str, ...] = ()
    max_complexity: int = 10
    line_length: int = 100
    target_version: str = "py311"
    severity_overrides: dict[str, Severity] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        select: list[str] | None = None,
        ignore: list[str] | None = None,
        max_complexity: int = 10,
    ) -> RuleSet:
        for argument, values in (("rules", select), ("ignore", ignore)):
            for value in values or ():
                if not _SELECTOR.match(value):
                    raise InvalidArgument(
                        f"{argument}: {value!r} is not a rule id or prefix "
                        "(like 'ONEX', 'ONEX004', 'CPLX001', 'F', 'E7', 'B006')"
                    )
        return cls(
            select=tuple(select) if select is not None else DEFAULT_SELECT,
            ignore=tuple(ignore or ()),
            max_complexity=max_complexity,
        )

    def enabled(self, rule: str) -> bool:
        if rule == "SYNTAX":
            return True
        return any(rule.startswith(p) for p in self.select) and not any(
            rule.startswith(p) for p in self.ignore
        )

    def severity(self, rule: str) -> Severity:
        return self.severity_overrides.get(rule) or RULES[rule].severity

    def ruff_select(self) -> list[str]:
        return [s for s in self.select if not s.startswith(OWN_PREFIXES)]

    def ruff_ignore(self) -> list[str]:
        own = [code for rule, code in SHADOWED_RUFF_RULES.items() if self.enabled(rule)]
        return [s for s in self.ignore if not s.startswith(OWN_PREFIXES)] + own


_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z]|[0-9]|$)|[A-Z]?[a-z]+|[0-9]+|[A-Z]+")


def split_words(name: str) -> list[str]:
    """`UserProfileEffect` / `user_profile_effect` / `HTTPFetchNode` -> their words."""
    return [word for part in name.split("_") for word in _WORD.findall(part)]


def _core_words(name: str, kind: NodeKind) -> list[str]:
    words = split_words(name)
    suffix = KINDS[kind].suffix.lower()
    for _ in range(2):
        if words and words[0].lower() in ("node", suffix):
            words = words[1:]
        if words and words[-1].lower() in ("node", suffix, "service"):
            words = words[:-1]
    return words


def conventional_class_name(name: str, kind: NodeKind) -> str | None:
    """The `Node<Name><Kind>` form of a node class name, or None if no <Name> is left."""
    words = _core_words(name, kind)
    if not words:
        return None
    return "Node" + "".join(w[:1].upper() + w[1:] for w in words) + KINDS[kind].suffix


def conventional_file_name(class_name: str, kind: NodeKind) -> str | None:
    words = _core_words(class_name, kind)
    if not words:
        return None
    return "node_" + "_".join(w.lower() for w in words) + f"_{kind}.py"


def kind_from_file_name(file_name: str) -> NodeKind | None:
    match = re.fullmatch(r"node_\w+_(effect|compute|reducer|orchestrator)\.py", file_name)
    return match.group(1) if match else None  # type: ignore[return-value]
