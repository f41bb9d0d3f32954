"""An incremental BM25 index over catalog entries (tools today; prompts and resources are
entries of other kinds, with the same fields).

Why not fastmcp's BM25SearchTransform index: it hashes the whole catalog on every query and
rebuilds everything when one tool changes. Here each entry is re-indexed only when its
source object changes (`sync` compares identity, then text), and the BM25 statistics
(document frequencies, total length) are updated by difference. Tokens are fastmcp's own
(`sdk_compat.search_tokens`). `sync` and `search` never await, so a search sees one
consistent catalog even while upstreams change theirs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import snowballstemmer  # type: ignore[import-untyped]  # no stubs or py.typed

from archon_gateway.gateway.catalog.vocabulary import SYNONYM_GROUPS
from archon_gateway.gateway.core.sdk_compat import search_tokens

K1 = 0.9
# Lower than the usual 0.75: tool texts are short and of similar length, and a long
# description should not bury a tool whose words match (tuned on the labelled set).
B = 0.5
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# How often the name and namespace words count: 1, since doubling them ranked tools whose
# name shares a common verb ("find", "list") above the right one on the labelled set.
NAME_WEIGHT = 1.0
PARAMETER_WEIGHT = 1.0
# Words that say nothing about which tool to pick (a task phrased as a question). Verbs
# such as "show" are not among them: the vocabulary relates them to read/list/display.
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "give",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "right",
        "so",
        "some",
        "that",
        "the",
        "their",
        "them",
        "there",
        "this",
        "to",
        "up",
        "us",
        "we",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
        "now",
        "all",
        "get",
    ]
)
_stemmer = snowballstemmer.stemmer("english")


def terms(text: str) -> list[str]:
    """fastmcp's search words, less stop words, stemmed (Snowball English): "images" and
    "image", "running" and "run" meet."""
    words = [word for word in search_tokens(text) if word not in STOP_WORDS]
    stemmed: list[str] = _stemmer.stemWords(words)
    return stemmed


def _related(groups: Iterable[Iterable[str]]) -> dict[str, frozenset[str]]:
    """Stemmed term -> the stemmed terms it shares a group with (itself excluded)."""
    related: dict[str, set[str]] = {}
    for group in groups:
        stems = {stem for word in group for stem in terms(word)}
        for stem in stems:
            related.setdefault(stem, set()).update(stems - {stem})
    return {stem: frozenset(others) for stem, others in related.items()}


RELATED = _related(SYNONYM_GROUPS)
# How much a word a tool's text does not say, but a synonym of one it says, counts
# (tuned on the tuning half of the labelled queries; see docs/catalog.md).
SYNONYM_WEIGHT = 0.3


def expanded(counts: Mapping[str, float], weight: float = SYNONYM_WEIGHT) -> dict[str, float]:
    """`counts` plus, for each term, its synonyms the text does not have, at `weight` of
    the term's count (the largest, when several of its words share a synonym)."""
    out: dict[str, float] = dict(counts)
    for term, tf in counts.items():
        for other in RELATED.get(term, ()):
            if other not in counts:
                out[other] = max(out.get(other, 0.0), weight * tf)
    return out


@dataclass(frozen=True)
class CatalogEntry:
    """What search ranks over and answers with, for one tool (or, later, prompt/resource)."""

    name: str
    namespace: str
    kind: str = "tool"
    title: str = ""
    description: str = ""
    parameters: Mapping[str, str] = field(default_factory=dict)  # name -> description
    annotations: Mapping[str, Any] = field(default_factory=dict)

    def fields(self) -> list[tuple[str, float]]:
        """The texts indexed, each with how much its words count."""
        params = " ".join(f"{_CAMEL.sub(' ', key)} {text}" for key, text in self.parameters.items())
        return [
            (f"{_CAMEL.sub(' ', self.name)} {self.namespace}", NAME_WEIGHT),
            (f"{self.title} {self.description}", 1.0),
            (params, PARAMETER_WEIGHT),
        ]


@dataclass
class _Indexed:
    source: object
    entry: CatalogEntry
    terms: Mapping[str, float]
    length: float


class SearchIndex:
    def __init__(self) -> None:
        self._entries: dict[str, _Indexed] = {}
        self._postings: dict[str, dict[str, float]] = {}  # term -> {key: term frequency}
        self._total_length = 0.0
        self.reindexed = 0  # entries (re)built since creation: shows what a change cost

    def __len__(self) -> int:
        return len(self._entries)

    def sync(
        self,
        sources: Iterable[object],
        key: Callable[[Any], str],
        entry: Callable[[Any], CatalogEntry],
    ) -> None:
        """Make the index hold exactly `sources`: entries whose source object is unchanged are
        kept as they are; new or changed ones are (re)indexed; missing ones removed."""
        seen: set[str] = set()
        for source in sources:
            name = key(source)
            seen.add(name)
            current = self._entries.get(name)
            if current is not None and current.source is source:
                continue
            built = entry(source)
            if current is not None and current.entry == built:
                current.source = source
                continue
            self._remove(name)
            self._add(name, source, built)
        for name in [name for name in self._entries if name not in seen]:
            self._remove(name)

    def search(
        self, query: str, top_k: int, namespace: str | None = None
    ) -> list[tuple[CatalogEntry, float]]:
        """The `top_k` best entries for `query` (BM25 Okapi), best first; ties by name."""
        count = len(self._entries)
        if not count:
            return []
        average = self._total_length / count
        scores: dict[str, float] = {}
        for term in set(terms(query)):
            postings = self._postings.get(term)
            if not postings:
                continue
            idf = math.log((count - len(postings) + 0.5) / (len(postings) + 0.5) + 1.0)
            for name, tf in postings.items():
                norm = K1 * (1 - B + B * self._entries[name].length / average)
                scores[name] = scores.get(name, 0.0) + idf * tf * (K1 + 1) / (tf + norm)
        ranked = sorted(
            (
                (item.entry, score)
                for name, score in scores.items()
                if (item := self._entries[name]).entry.namespace == namespace or namespace is None
            ),
            key=lambda pair: (-pair[1], pair[0].name),
        )
        return ranked[:top_k]

    def _add(self, name: str, source: object, entry: CatalogEntry) -> None:
        own: dict[str, float] = {}
        for text, weight in entry.fields():
            for term in terms(text):
                own[term] = own.get(term, 0.0) + weight
        # The length is the tool's own words: synonyms should not make a text "longer".
        length = sum(own.values())
        counts = expanded(own)
        self._entries[name] = _Indexed(source, entry, counts, length)
        self._total_length += length
        for term, tf in counts.items():
            self._postings.setdefault(term, {})[name] = tf
        self.reindexed += 1

    def _remove(self, name: str) -> None:
        item = self._entries.pop(name, None)
        if item is None:
            return
        self._total_length -= item.length
        for term in item.terms:
            postings = self._postings[term]
            del postings[name]
            if not postings:
                del self._postings[term]
