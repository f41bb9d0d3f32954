"""Search beyond shared words: the synonym vocabulary (index time) and the static word
vectors (query time)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from archon_gateway.catalog.search_index import CatalogEntry, SearchIndex
from archon_gateway.catalog.token_vectors import DATA, TokenVectors, shared_vectors


def indexed(index: SearchIndex, tools: dict[str, str]) -> SearchIndex:
    entries = [
        CatalogEntry(name, name.split("_")[0], description=text) for name, text in tools.items()
    ]
    index.sync(entries, lambda entry: entry.name, lambda entry: entry)
    return index


def names(index: SearchIndex, query: str) -> list[str]:
    return [entry.name for entry, _ in index.search(query, 3)]


def test_a_tool_is_found_by_a_synonym_of_the_words_it_uses() -> None:
    index = indexed(
        SearchIndex(),
        {
            "fs_delete_directory": "Delete a directory and everything in it.",
            "fs_list_directory": "List the entries of a directory.",
            "fs_read_file": "Read the contents of a file.",
        },
    )

    assert names(index, "remove the folder")[0] == "fs_delete_directory"
    assert names(index, "fetch the file")[0] == "fs_read_file"


def test_word_vectors_find_a_tool_that_shares_no_word_with_the_query() -> None:
    tools = {
        "weather_forecast": "Daily weather forecast for a city.",
        "text_translate": "Translate text between languages.",
        "billing_invoice": "Create an invoice for a customer.",
    }
    query = "will it rain in Oslo tomorrow"

    assert names(indexed(SearchIndex(), tools), query) == []
    assert names(indexed(SearchIndex(shared_vectors()), tools), query)[0] == "weather_forecast"


def test_the_shipped_word_vectors_load_as_unit_vectors() -> None:
    vectors = shared_vectors()

    assert vectors is not None
    assert vectors.dimension == 96
    lengths = np.linalg.norm(vectors.vectors, axis=1)
    assert np.allclose(lengths, 1.0, atol=0.02)
    assert vectors.pieces("Kubernetes pods", skip={"pods"})  # word pieces of an unknown word


def test_word_vectors_that_are_not_finite_are_refused(tmp_path: Path) -> None:
    with np.load(DATA) as data:
        vectors = data["vectors"].copy()
        scales = data["scales"].copy()
        ids = data["ids"]
    scales[3] = np.inf
    broken = tmp_path / "vectors.npz"
    np.savez(broken, ids=ids, vectors=vectors, scales=scales)

    with pytest.raises(ValueError, match="finite vector"):
        TokenVectors.load(broken)


@pytest.mark.parametrize("with_vectors", [False, True], ids=["bm25", "bm25+vectors"])
def test_a_namespace_limits_the_results_to_that_namespace(with_vectors: bool) -> None:
    index = indexed(
        SearchIndex(shared_vectors() if with_vectors else None),
        {
            "fs_delete_file": "Delete a file.",
            "s3_delete_objects": "Delete objects from a bucket.",
            "s3_list_buckets": "List the buckets.",
            "fs_read_file": "Read a file.",
        },
    )

    found = index.search("delete the file", 5, namespace="s3")

    assert found[0][0].name == "s3_delete_objects"
    assert {entry.namespace for entry, _ in found} == {"s3"}
    assert index.search("delete the file", 5, namespace="nothing") == []
