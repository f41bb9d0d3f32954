"""An incremental BM25 index over catalog entries (tools today; prompts and resources are
entries of other kinds, with the same fields), with a generic synonym vocabulary applied
at index time (vocabulary.py) and, optionally, static word vectors blended in
(token_vectors.py).

Why not fastmcp's BM25SearchTransform index: it hashes the whole catalog on every query and
rebuilds everything when one tool changes. Here each entry is re-indexed only when its
source object changes (`sync` compares identity, then text), and the BM25 statistics
(document frequencies, total length) are updated by difference. Tokens are fastmcp's own
(`sdk_compat.search_tokens`). `sync` and `search` never await, so a search sees one
consistent catalog even while upstreams change theirs.
"""

from __future__ import annotations

import functools
import heapq
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import snowballstemmer  # type: ignore[import-untyped]  # no stubs or py.typed

from archon_gateway.catalog.vocabulary import SYNONYM_GROUPS
from archon_gateway.core.sdk_compat import search_tokens

if TYPE_CHECKING:  # numpy loads with the word vectors, not with the gateway
    import numpy as np
    import numpy.typing as npt

    from archon_gateway.catalog.token_vectors import TokenVectors

# BM25's usual values; a sweep on the tuning half of the labelled queries found none
# better (docs/catalog.md, "Search quality").
K1 = 1.2
B = 0.75
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# How much the words of each field count. Weighting the name up, or the parameters down,
# did not help on the tuning half; dropping the parameters cost 8 points of recall.
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


@functools.lru_cache(maxsize=16_384)
def _stem(word: str) -> str:
    # Snowball is pure Python (≈30 µs a word); queries and tools reuse few words.
    stem: str = _stemmer.stemWord(word)
    return stem


def terms(text: str) -> list[str]:
    """fastmcp's search words, less stop words, stemmed (Snowball English): "images" and
    "image", "running" and "run" meet."""
    return [_stem(word) for word in search_tokens(text) if word not in STOP_WORDS]


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
# How much the word-vector cosine counts beside BM25 (divided by the query's best score),
# picked on the tuning half of the labelled queries (docs/catalog.md).
VECTOR_WEIGHT = 1.0


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


def _wanted(entry: CatalogEntry, namespace: str | None, kind: str | None) -> bool:
    return namespace in (None, entry.namespace) and kind in (None, entry.kind)


def _best_first(hit: tuple[CatalogEntry, float]) -> tuple[float, str]:
    return -hit[1], hit[0].name


@dataclass
class _Indexed:
    source: object
    entry: CatalogEntry
    terms: Mapping[str, float]
    length: float
    pieces: list[int]  # rows of its word pieces in the token vectors


class SearchIndex:
    """BM25 over the entries' terms, blended (when `vectors` are given) with the cosine of
    rarity-weighted sums of static word-piece vectors: BM25 scores are divided by the
    query's best, so both parts count on the same 0-1 scale."""

    def __init__(self, vectors: TokenVectors | None = None) -> None:
        self._entries: dict[str, _Indexed] = {}
        self._postings: dict[str, dict[str, float]] = {}  # term -> {key: term frequency}
        self._total_length = 0.0
        self._vectors = vectors
        self._piece_counts: dict[int, int] = {}  # word piece row -> entries that have it
        # Entry names and their unit vectors, rebuilt on the first search after a change
        # (the rarity weights depend on the whole catalog).
        self._matrix: tuple[list[str], npt.NDArray[np.float32], dict[str, int]] | None = None
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
        self, query: str, top_k: int, namespace: str | None = None, kind: str | None = None
    ) -> list[tuple[CatalogEntry, float]]:
        """The `top_k` best entries for `query` (of `namespace` and `kind` when given),
        best first; ties by name. BM25 Okapi alone
        ranks only entries sharing a term with the query; with vectors every entry is
        ranked (a query without known word pieces falls back to BM25 alone)."""
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
        if self._vectors is not None:
            wanted = self._embed(self._vectors.pieces(query, STOP_WORDS))
            if wanted is not None:
                return self._blended(scores, wanted, top_k, namespace, kind)
        found = ((self._entries[name].entry, score) for name, score in scores.items())
        hits = [hit for hit in found if _wanted(hit[0], namespace, kind)]
        return heapq.nsmallest(top_k, hits, key=_best_first)

    def _blended(
        self,
        bm25: Mapping[str, float],
        wanted: npt.NDArray[np.float32],
        top_k: int,
        namespace: str | None,
        kind: str | None,
    ) -> list[tuple[CatalogEntry, float]]:
        """Every entry by BM25 (divided by the query's best) + VECTOR_WEIGHT x cosine."""
        import numpy as np

        names, matrix, position = self._doc_matrix()
        scores = VECTOR_WEIGHT * (matrix @ wanted).astype(np.float64)
        best = max(bm25.values(), default=0.0) or 1.0
        for name, score in bm25.items():
            scores[position[name]] += score / best
        candidates = np.arange(len(names))
        if namespace is not None or kind is not None:
            entries = (self._entries[name].entry for name in names)
            keep = [i for i, entry in enumerate(entries) if _wanted(entry, namespace, kind)]
            candidates = np.array(keep, dtype=np.intp)
        if not len(candidates):
            return []
        # Only entries scoring at least the k-th best can rank (then ties by name).
        chosen = scores[candidates]
        k = min(top_k, len(chosen))
        cut = np.partition(chosen, len(chosen) - k)[len(chosen) - k]
        hits = [
            (self._entries[names[i]].entry, float(scores[i]))
            for i in candidates[chosen >= cut].tolist()
        ]
        return sorted(hits, key=_best_first)[:top_k]

    def _doc_matrix(self) -> tuple[list[str], npt.NDArray[np.float32], dict[str, int]]:
        import numpy as np

        if self._matrix is None:
            assert self._vectors is not None
            names = list(self._entries)
            rows = [self._embed(self._entries[name].pieces) for name in names]
            zero = np.zeros(self._vectors.dimension, dtype=np.float32)
            matrix = np.stack([zero if row is None else row for row in rows])
            self._matrix = (names, matrix.astype(np.float32), {n: i for i, n in enumerate(names)})
        return self._matrix

    def _embed(self, pieces: list[int]) -> npt.NDArray[np.float32] | None:
        """The unit vector of a text's word pieces, each weighted by its rarity in the
        catalog (an IDF), or None for a text without known pieces."""
        import numpy as np

        if not pieces or self._vectors is None:
            return None
        count = len(self._entries)
        weights = np.array(
            [math.log((count + 1) / (self._piece_counts.get(row, 0) + 0.5)) for row in pieces],
            dtype=np.float32,
        )
        summed = weights @ self._vectors.vectors[pieces]
        norm = float(np.linalg.norm(summed))
        return summed / norm if norm > 0 else None

    def _add(self, name: str, source: object, entry: CatalogEntry) -> None:
        own: dict[str, float] = {}
        for text, weight in entry.fields():
            for term in terms(text):
                own[term] = own.get(term, 0.0) + weight
        # The length is the tool's own words: synonyms should not make a text "longer".
        length = sum(own.values())
        counts = expanded(own)
        pieces: list[int] = []
        if self._vectors is not None:
            text = " ".join(text for text, _ in entry.fields())
            pieces = self._vectors.pieces(text, STOP_WORDS)
            for row in set(pieces):
                self._piece_counts[row] = self._piece_counts.get(row, 0) + 1
            self._matrix = None
        self._entries[name] = _Indexed(source, entry, counts, length, pieces)
        self._total_length += length
        for term, tf in counts.items():
            self._postings.setdefault(term, {})[name] = tf
        self.reindexed += 1

    def _remove(self, name: str) -> None:
        item = self._entries.pop(name, None)
        if item is None:
            return
        self._total_length -= item.length
        for row in set(item.pieces):
            self._piece_counts[row] -= 1
            if not self._piece_counts[row]:
                del self._piece_counts[row]
        if self._vectors is not None:
            self._matrix = None
        for term in item.terms:
            postings = self._postings[term]
            del postings[name]
            if not postings:
                del self._postings[term]
