"""mixin_recommend: match a node (its code or a description) against the shipped catalog
(`mixins.toml`, documented in place)."""

from __future__ import annotations

import functools
import re
import tomllib
from importlib.resources import files

from pydantic import BaseModel, ConfigDict, Field

from archon_gateway.tools.codegen.analyze import analyze
from archon_gateway.tools.codegen.models import (
    MixinAdvice,
    MixinConflict,
    MixinRecommendation,
    NodeKind,
)
from archon_gateway.tools.codegen.rules import KINDS

THRESHOLD = 2.0


class CatalogMixin(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str
    class_name: str = Field(alias="class")
    module: str
    summary: str
    kinds: list[NodeKind]
    avoid: str
    recommended: list[NodeKind]
    traits: list[str]
    keywords: list[str]


class CatalogConflict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    a: str
    b: str
    reason: str


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mixin: list[CatalogMixin]
    conflict: list[CatalogConflict]


@functools.cache
def catalog() -> Catalog:
    text = files("archon_gateway.tools.codegen").joinpath("mixins.toml").read_text(encoding="utf-8")
    return Catalog.model_validate(tomllib.loads(text))


_TRAIT_WORDS = {
    "network": "does network I/O",
    "database": "talks to a database",
    "events": "publishes or consumes events",
    "cache": "uses an external cache",
    "vectors": "queries a vector store",
    "llm": "calls a language model",
    "hashing": "hashes its input",
    "pure": "has no I/O (a pure computation)",
    "state": "drives state transitions",
}


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z][a-z-]+", text.lower()))


def _description_kind(description: str) -> NodeKind | None:
    words = _words(description)
    for spec in KINDS.values():
        if spec.kind in words or spec.suffix.lower() in words:
            return spec.kind
    return None


def recommend(
    code: str | None, description: str | None, node_kind: NodeKind | None = None
) -> MixinAdvice:
    traits: set[str] = set()
    present: list[str] = []
    kind = node_kind
    if code:
        analysis = analyze(code, node_kind=node_kind)
        traits.update(analysis.traits)
        present = analysis.mixins
        kind = kind or analysis.node_kind
    words = _words(description or "")
    if description:
        kind = kind or _description_kind(description)
    text = (description or "").lower()

    recommendations: list[MixinRecommendation] = []
    ruled_out: list[str] = []
    present_ids = []
    for mixin in catalog().mixin:
        if mixin.class_name in present:
            present_ids.append(mixin.id)
            continue
        if kind is not None and kind not in mixin.kinds:
            ruled_out.append(f"{mixin.class_name}: not for {kind} nodes ({mixin.avoid})")
            continue
        score, reasons = 0.0, []
        if kind is not None and kind in mixin.recommended:
            score += 2
            reasons.append(f"recommended for every {kind} node")
        for trait in sorted(traits & set(mixin.traits)):
            score += 2
            reasons.append(f"the code {_TRAIT_WORDS.get(trait, trait)}")
        matched = [k for k in mixin.keywords if (k in words if " " not in k else k in text)]
        if matched:
            score += len(matched)
            quoted = ", ".join(repr(k) for k in matched)
            reasons.append(f"the description mentions {quoted}")
        if score >= THRESHOLD:
            recommendations.append(
                MixinRecommendation(
                    mixin=mixin.class_name,
                    id=mixin.id,
                    import_from=mixin.module,
                    summary=mixin.summary,
                    score=score,
                    reasons=reasons,
                )
            )
    recommendations.sort(key=lambda r: (-r.score, r.id))
    chosen = set(present_ids) | {r.id for r in recommendations}
    by_id = {m.id: m.class_name for m in catalog().mixin}
    conflicts = [
        MixinConflict(a=by_id[c.a], b=by_id[c.b], reason=c.reason)
        for c in catalog().conflict
        if c.a in chosen and c.b in chosen
    ]
    return MixinAdvice(
        node_kind=kind,
        traits=sorted(traits),
        already_present=present,
        recommendations=recommendations,
        conflicts=conflicts,
        not_recommended=ruled_out,
    )
