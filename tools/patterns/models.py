"""Input and output shapes of the pattern tools (they become the tools' JSON schemas)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _normalise_label(value: str) -> str:
    cleaned = value.strip().lower()
    if not cleaned:
        raise ValueError("must not be blank")
    return cleaned


def _dedupe(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


# Languages, kinds and tags are matched exactly by the filters, so they are stored trimmed
# and lower-case ("Python " and "python" are one language).
Label = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_normalise_label)]
Tags = Annotated[list[Label], Field(max_length=50), AfterValidator(_dedupe)]
Name = Annotated[str, Field(min_length=1, max_length=300)]
Text = Annotated[str, Field(min_length=1, max_length=200_000, description="the code or knowledge")]
Source = Annotated[str, Field(max_length=2000, description="where it came from")]
Quality = Annotated[float, Field(ge=0, le=1, description="quality score, 0..1")]
Vector = Annotated[list[float], Field(min_length=1, max_length=65536)]
DerivedFrom = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=200)]],
    Field(
        min_length=1,
        max_length=20,
        description="ids of the patterns this one derives from: recorded as lineage (fork "
        "from one, merge of several; modify on update)",
    ),
]


class PatternIn(BaseModel):
    """A pattern to index: a piece of code or text knowledge with metadata."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(
        None,
        min_length=1,
        max_length=256,
        description="stable id; omitted = derived from name and text (re-indexing the same "
        "pattern then updates it instead of adding a copy)",
    )
    name: Name
    text: Text
    language: Label | None = Field(None, description="e.g. python; stored lower-case")
    kind: Label | None = Field(None, description="e.g. snippet, fix, idiom; stored lower-case")
    tags: Tags = Field(default_factory=list)
    source: Source | None = None
    quality: Quality | None = None
    embedding: Vector | None = Field(
        None, description="precomputed vector (must match the store's dimension)"
    )
    derived_from: DerivedFrom | None = None


class IndexFailure(BaseModel):
    index: int = Field(description="position of the pattern in the request")
    id: str | None = None
    error: str


class IndexResult(BaseModel):
    indexed: list[str] = Field(description="ids written, in request order")
    failed: list[IndexFailure] = Field(default_factory=list)
    lineage_failed: list[IndexFailure] = Field(
        default_factory=list, description="indexed, but their derived_from was not recorded"
    )


class PatternOut(BaseModel):
    id: str
    name: str
    text: str
    language: str | None = None
    kind: str | None = None
    tags: list[str] = Field(default_factory=list)
    source: str | None = None
    quality: float | None = None
    created: str | None = None
    updated: str | None = None
    embedding: list[float] | None = None


class SearchHit(BaseModel):
    id: str
    name: str
    score: float = Field(description="cosine similarity, -1..1 (higher is closer)")
    language: str | None = None
    kind: str | None = None
    tags: list[str] = Field(default_factory=list)
    text: str
    source: str | None = None
    quality: float | None = None


class SearchResult(BaseModel):
    results: list[SearchHit]


class UpdateResult(BaseModel):
    pattern: PatternOut
    reembedded: bool = Field(description="whether the vector was recomputed or replaced")


class DeleteResult(BaseModel):
    id: str
    deleted: bool = Field(description="false when there was no pattern with this id")


class PatternStats(BaseModel):
    count: int
    backend: str
    location: str
    model: str
    dimension: int
    languages: dict[str, int]
    kinds: dict[str, int]
    tags: dict[str, int] = Field(description="the most used tags and their counts")
