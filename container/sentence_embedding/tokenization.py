"""Texts to padded numpy token ids, through the Rust `tokenizers` library directly.

transformers' fast tokenizer is a Python wrapper around a `tokenizers.Tokenizer` (its
`backend_tokenizer`): each call validates its arguments, sets truncation and padding on the
backend, runs `encode_batch` and converts the encodings, which costs two to three times the
encoding itself for a short text. Here the backend is called directly, configured as the wrapper
configures it for `tokenizer(texts, padding=True, truncation="longest_first",
max_length=max_length)`, so the ids, masks and type ids are the wrapper's, as numpy int64 arrays.
The backend is a private copy: the wrapper, still used for offsets (cut.py) and length checks,
resets the truncation and padding of the one it holds on every call.

A slow (Python) tokenizer, or one without a padding token, goes through the wrapper as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

INPUT_IDS = "input_ids"
ATTENTION_MASK = "attention_mask"
TOKEN_TYPE_IDS = "token_type_ids"


class BatchTokenizer:
    """`encode(texts, side)`: {input_ids, attention_mask[, token_type_ids]} as int64 arrays."""

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.padding_side = getattr(tokenizer, "padding_side", "right")
        # The wrapper returns token_type_ids only for models that take them (not MPNet, T5, ...).
        self.with_type_ids = TOKEN_TYPE_IDS in getattr(tokenizer, "model_input_names", ())
        self._backend = self._own_backend(tokenizer)
        self._truncation_side: str | None = None

    def _own_backend(self, tokenizer: Any) -> Any:
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if not getattr(tokenizer, "is_fast", False) or backend is None:
            return None
        if tokenizer.pad_token is None:  # the wrapper refuses to pad; its error says why
            return None
        own = type(backend).from_str(backend.to_str())
        own.enable_padding(
            direction=self.padding_side,
            pad_id=tokenizer.pad_token_id,
            pad_type_id=tokenizer.pad_token_type_id,
            pad_token=tokenizer.pad_token,
        )
        if getattr(tokenizer, "split_special_tokens", False):
            own.encode_special_tokens = True
        return own

    def encode(self, texts: Sequence[str], truncation_side: str) -> dict[str, np.ndarray]:
        """The padded batch, each text truncated to max_length tokens from `truncation_side`."""
        if self._backend is None:
            return self._through_wrapper(texts, truncation_side)
        if truncation_side != self._truncation_side:
            self._backend.enable_truncation(
                self.max_length, stride=0, strategy="longest_first", direction=truncation_side
            )
            self._truncation_side = truncation_side
        # One text is encoded on this thread: `encode_batch` hands even one to the library's
        # thread pool and waits for it, which on two vCPUs competes with ONNX Runtime's threads.
        if len(texts) == 1:
            encodings = [self._backend.encode(texts[0], add_special_tokens=True)]
        else:
            encodings = self._backend.encode_batch(list(texts), add_special_tokens=True)
        features = {
            INPUT_IDS: np.array([encoding.ids for encoding in encodings], dtype=np.int64),
            ATTENTION_MASK: np.array(
                [encoding.attention_mask for encoding in encodings], dtype=np.int64
            ),
        }
        if self.with_type_ids:
            features[TOKEN_TYPE_IDS] = np.array(
                [encoding.type_ids for encoding in encodings], dtype=np.int64
            )
        return features

    def _through_wrapper(self, texts: Sequence[str], truncation_side: str) -> dict[str, np.ndarray]:
        self.tokenizer.truncation_side = truncation_side
        features = self.tokenizer(
            list(texts),
            padding=True,
            truncation="longest_first",
            max_length=self.max_length,
            return_tensors="np",
        )
        return {name: np.asarray(array, dtype=np.int64) for name, array in features.items()}
