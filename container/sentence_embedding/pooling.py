"""One vector per text from token vectors, as sentence-transformers' Pooling computes it.

numpy only, no torch: the ONNX engine's pipeline and the loader's int8 quality check import it
without PyTorch; the torch engine hands its tensors over with `.numpy()` (no copy).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# The least token count (or weight) a mean divides by, as sentence-transformers' Pooling clamps it.
MEAN_EPSILON = 1e-9
# The least norm a vector is divided by, as torch.nn.functional.normalize (sentence-transformers').
NORM_EPSILON = 1e-12
# How far a graph's mean-pooling head (loader/pooling_head.py) may be from `pool`, relative to the
# vectors' largest value (at least 1): checked when the loader adds it and when the engine loads.
MAX_HEAD_ERROR = 1e-4


def pool(
    modes: Sequence[str], token_embeddings: np.ndarray, attention_mask: np.ndarray
) -> np.ndarray:
    """(batch, hidden × len(modes)) from (batch, length, hidden) token vectors and their mask."""
    batch, seq_len, hidden = token_embeddings.shape
    dtype = token_embeddings.dtype
    mask = attention_mask.astype(dtype, copy=False)
    rows = np.arange(batch)
    pooled: list[np.ndarray] = []
    for mode in modes:
        if mode == "cls":
            first = attention_mask.argmax(axis=1)  # first real token, any padding side
            pooled.append(token_embeddings[rows, first])
        elif mode == "max":
            masked = np.where(mask[:, :, None] == 0, dtype.type(-np.inf), token_embeddings)
            pooled.append(masked.max(axis=1))
        elif mode in ("mean", "mean_sqrt_len_tokens"):
            summed = np.matmul(mask[:, None, :], token_embeddings)[:, 0, :]
            counts = np.maximum(mask.sum(axis=1, keepdims=True), dtype.type(MEAN_EPSILON))
            pooled.append(summed / (counts if mode == "mean" else np.sqrt(counts)))
        elif mode == "weightedmean":
            positions = np.arange(1, seq_len + 1, dtype=dtype)
            left_padding = attention_mask.argmax(axis=1).astype(dtype)
            weighted = mask * (positions[None, :] - left_padding[:, None])
            summed = np.matmul(weighted[:, None, :], token_embeddings)[:, 0, :]
            total = np.maximum(weighted.sum(axis=1, keepdims=True), dtype.type(MEAN_EPSILON))
            pooled.append(summed / total)
        elif mode == "lasttoken":
            # The last real token; a row without one gives zeros (its mask is 0 everywhere).
            from_end = attention_mask[:, ::-1].argmax(axis=1)
            last = seq_len - from_end - 1
            pooled.append(token_embeddings[rows, last] * mask[rows, last][:, None])
    return np.concatenate(pooled, axis=-1)


def unit_length(vectors: np.ndarray) -> np.ndarray:
    """Each row divided by its norm (at least NORM_EPSILON), as sentence-transformers' Normalize."""
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), NORM_EPSILON)


def mean_head_problem(
    token_embeddings: np.ndarray, attention_mask: np.ndarray, mean: np.ndarray, unit: np.ndarray
) -> str | None:
    """Why a graph's head outputs (`mean`, `unit`) are not `pool`'s mean of its tokens, or None."""
    expected = pool(("mean",), token_embeddings, attention_mask)
    for what, got, wanted in (("mean", mean, expected), ("unit mean", unit, unit_length(expected))):
        scale = max(1.0, float(np.abs(wanted).max()))
        error = float(np.abs(np.asarray(got) - wanted).max()) / scale
        if not error <= MAX_HEAD_ERROR:  # NaN too
            return f"its {what} is {error:.2g} from its tokens' mean (> {MAX_HEAD_ERROR})"
    return None
