"""The container's numpy pooling gives sentence-transformers' Pooling vectors, mode by mode."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from sentence_transformers.sentence_transformer.modules import Pooling

from tests.support.models import CONTAINER_DIR, container_module

pooling = container_module("pooling")

MODES = ["cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"]
LENGTHS = [7, 3, 1, 5]
WIDTH, HIDDEN = 7, 6


def padded_mask(side: str) -> np.ndarray:
    rows = [[1] * length + [0] * (WIDTH - length) for length in LENGTHS]
    return np.array([row if side == "right" else row[::-1] for row in rows], dtype=np.int64)


def reference(mode: str, tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    module = Pooling(HIDDEN, pooling_mode=mode)
    features = {
        "token_embeddings": torch.from_numpy(tokens),
        "attention_mask": torch.from_numpy(mask),
    }
    return module(features)["sentence_embedding"].numpy()


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("mode", MODES)
def test_each_mode_gives_sentence_transformers_vector_on_either_padding_side(mode, side):
    tokens = np.random.default_rng(23).standard_normal((len(LENGTHS), WIDTH, HIDDEN))
    tokens = tokens.astype(np.float32)
    mask = padded_mask(side)
    pooled = pooling.pool([mode], tokens, mask)
    assert pooled.dtype == np.float32
    np.testing.assert_allclose(pooled, reference(mode, tokens, mask), rtol=1e-5, atol=1e-6)


def test_several_modes_concatenate_in_the_order_given():
    tokens = np.random.default_rng(5).standard_normal((len(LENGTHS), WIDTH, HIDDEN))
    tokens = tokens.astype(np.float32)
    mask = padded_mask("right")
    pooled = pooling.pool(["max", "cls"], tokens, mask)
    expected = np.concatenate(
        [pooling.pool(["max"], tokens, mask), pooling.pool(["cls"], tokens, mask)], axis=1
    )
    np.testing.assert_array_equal(pooled, expected)


def test_the_module_imports_without_torch():
    # The loader's int8 quality check imports it where PyTorch is not installed.
    script = (
        "import sys; sys.modules['torch'] = None; "
        f"sys.path.insert(0, {str(CONTAINER_DIR)!r}); "
        "import sentence_embedding.pooling"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
