"""Texts in, sentence vectors out: prompts, tokenizer, engine, pooling, Dense, dimensions, norm.

Every step but the transformer's forward pass is shared by the engines (torch_engine.py), so
both answer with sentence-transformers' vectors: `encode(texts, prompt_name=…, truncate_dim=…,
normalize_embeddings=…)`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from facts.embedding_api import EmbeddingOptions, InputError, max_vectors
from facts.sagemaker_endpoints import DEFAULT_PROMPT_VARIABLE, MAX_BATCH_SIZE_VARIABLE
from facts.sentence_modules import PROMPTS_FILE, ModelFilesError

from .batches import length_runs
from .cut import cut_text, cut_texts
from .dense import apply_dense
from .environment import ContainerSettings
from .model_files import EmbeddingSettings
from .pooling import pool, unit_length
from .time_budget import TimeBudget
from .tokenization import BatchTokenizer

# Texts run through the transformer this many at a time, longest first (as sentence-transformers
# does), so one long text does not pad a whole large request; within a batch, texts of similar
# length share a forward pass (batches.py), so short ones are not padded to the longest.
ENCODE_BATCH_SIZE = 32


def _check_finite(vectors: np.ndarray) -> None:
    """Refuse to answer NaN or infinity: JSON has no such number, and no client can use one.

    One dot product first (0.5 us for one vector): NaN or infinity anywhere reaches it; a float32
    overflow of the squares only sends it on to the exact check.
    """
    flat = vectors.reshape(-1)
    if math.isfinite(flat.dot(flat)):
        return
    rows = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
    if rows.size == 0:
        return
    raise InputError(
        f"the model gave NaN or infinity for {rows.size} of {len(vectors)} inputs (the first: "
        f"input {int(rows[0])}); this model cannot embed them",
        status=422,
    )


def deployment_prompt_name(
    settings: EmbeddingSettings, environment: ContainerSettings
) -> str | None:
    """The stack's default prompt name (EMBEDDING_DEFAULT_PROMPT_NAME), one of the model's."""
    name = environment.default_prompt_name
    if name is not None and name not in settings.prompts:
        raise ModelFilesError(
            f"{DEFAULT_PROMPT_VARIABLE} is {name!r}, which is not one of the model's prompts "
            f"{sorted(settings.prompts)} ({PROMPTS_FILE})"
        )
    return name


@dataclass(frozen=True, eq=False)
class EmbeddingModel:
    """The loaded model, what `model_fn` returns and `predict_fn` receives."""

    model_id: str
    tokenizer: Any  # transformers' tokenizer: offsets (cut.py), length checks, special ids
    batch_tokenizer: BatchTokenizer  # the same tokenizer's backend, for the forward passes
    engine: Any  # TorchEngine or another engine with `token_embeddings(features)`
    settings: EmbeddingSettings
    # The container's settings, read once by model_fn: a container's environment is fixed.
    environment: ContainerSettings
    dimensions: int
    dense: tuple[Any, ...] = ()
    # The stack's default prompt name, else the model's own default (sentence-transformers').
    default_prompt_name: str | None = None

    def max_texts_per_request(self, dimensions: int, encoding_format: str) -> int:
        """The batch limit, also bounded so the response fits the platform's response limit."""
        environment = self.environment
        by_response = max_vectors(dimensions, encoding_format, environment.response_limit_bytes)
        return max(1, min(environment.max_batch_size, by_response))

    def prompt_for(self, options: EmbeddingOptions) -> str:
        """The prefix a request asks for: literal, named, the stack's default, the model's."""
        if options.prompt is not None:
            return options.prompt
        name = self.default_prompt_name if options.prompt_name is None else options.prompt_name
        if name is None:
            return ""
        if name not in self.settings.prompts:
            raise InputError(
                f"prompt_name {name!r} is not one of this model's prompts: "
                f'{sorted(self.settings.prompts) or "it has none"} (or send a literal "prompt")'
            )
        return self.settings.prompts[name]

    def output_dimensions(self, options: EmbeddingOptions) -> int:
        """The vector size a request asks for (Matryoshka truncation), checked against the model."""
        if options.dimensions is None:
            return self.dimensions
        if not 1 <= options.dimensions <= self.dimensions:
            raise InputError(
                f'"dimensions" is {options.dimensions}; this model gives 1 to {self.dimensions}'
            )
        return options.dimensions

    def check_request_size(self, count: int, options: EmbeddingOptions) -> None:
        """Refuse more texts than one response can carry, naming the limit for each encoding."""
        dimensions = self.output_dimensions(options)
        limit = self.max_texts_per_request(dimensions, options.encoding_format)
        if count > limit:
            other = "base64" if options.encoding_format == "float" else "float"
            raise InputError(
                f"{count} inputs in one request; the limit for {dimensions} dimensions in "
                f"{options.encoding_format} is {limit} ({other}: "
                f"{self.max_texts_per_request(dimensions, other)}), set by "
                f"{MAX_BATCH_SIZE_VARIABLE} and the "
                f"{self.environment.response_limit_bytes}-byte response limit: "
                "send smaller batches",
                status=413,
            )

    def embed(self, texts: Sequence[str], options: EmbeddingOptions) -> tuple[np.ndarray, int]:
        """(float32 vectors in request order, tokens read) for `texts`; every value finite."""
        vectors, tokens = self._embedded(texts, options)
        _check_finite(vectors)
        return vectors, tokens

    def _embedded(self, texts: Sequence[str], options: EmbeddingOptions) -> tuple[np.ndarray, int]:
        dimensions = self.output_dimensions(options)
        prompt = self.prompt_for(options)
        inputs = self._prepared(texts, prompt)
        settings = self.settings
        side = options.truncation_direction
        if not options.truncate:
            self._check_lengths(inputs, prompt)
        else:  # what truncation would drop is not read: a 4 MB text costs what 2 KB does
            inputs = cut_texts(self.tokenizer, inputs, settings.max_seq_length, side)
        prompt_length = (
            self._prompt_length(prompt, side) if prompt and not settings.include_prompt else None
        )
        normalize = settings.normalize if options.normalize is None else options.normalize
        if len(inputs) == 1:  # one text: no order to keep, no padding, one forward pass
            features = self.batch_tokenizer.encode(inputs, side)
            tokens = int(features["attention_mask"].sum())
            return self._vectors(features, prompt_length, dimensions, normalize), tokens
        order = sorted(range(len(inputs)), key=lambda index: -len(inputs[index]))
        vectors = np.empty((len(inputs), dimensions), dtype=np.float32)
        tokens = 0
        budget = TimeBudget(self.environment.max_request_seconds, inputs)
        for start in range(0, len(order), ENCODE_BATCH_SIZE):
            chunk = np.array(order[start : start + ENCODE_BATCH_SIZE])
            texts = [inputs[index] for index in chunk]
            features = self.batch_tokenizer.encode(texts, side)
            tokens += int(features["attention_mask"].sum())
            for rows, run in _runs(features, self.batch_tokenizer.padding_side):
                vectors[chunk[rows]] = self._vectors(run, prompt_length, dimensions, normalize)
            budget.spent(texts)
        return vectors, tokens

    def _vectors(
        self,
        features: dict[str, np.ndarray],
        prompt_length: int | None,
        dimensions: int,
        normalize: bool,
    ) -> np.ndarray:
        """One pass's sentence vectors (float32, C-contiguous): pooled, Dense, cut, normalized.

        A graph's pooling head (onnx_engine.py) gives the mean when the model pools by mean and
        the prompt is pooled with the text; then, with nothing to do between pooling and
        normalizing, its unit-length output is the answer as it is.
        """
        settings = self.settings
        if self.engine.mean_head and settings.pooling_modes == ("mean",) and prompt_length is None:
            unit = normalize and not self.dense and dimensions == self.dimensions
            pooled = self.engine.mean_pooled(features, unit)
            if unit:
                return pooled
        else:
            mask = features["attention_mask"]
            if prompt_length is not None:
                mask = exclude_prompt(mask, prompt_length)
            pooled = pool(settings.pooling_modes, self.engine.token_embeddings(features), mask)
        if self.dense:
            pooled = apply_dense(self.dense, pooled)
        if dimensions < pooled.shape[1]:
            pooled = np.ascontiguousarray(pooled[:, :dimensions])
        return unit_length(pooled) if normalize else pooled

    def _prepared(self, texts: Sequence[str], prompt: str) -> list[str]:
        # Surrounding whitespace goes, as in sentence-transformers' Transformer.tokenize.
        prepared = [prompt + text.strip() for text in texts]
        if self.settings.do_lower_case:
            prepared = [text.lower() for text in prepared]
        return prepared

    def _check_lengths(self, inputs: Sequence[str], prompt: str) -> None:
        """With truncate=false, a text longer than max_seq_length tokens is the caller's error.

        `inputs` carry the prompt; the error counts its tokens, so a long prompt is not blamed on
        the texts alone.
        """
        limit = self.settings.max_seq_length
        # A text cut to its window is too long already (the part kept holds more than `limit`
        # tokens), so no more of it is read than truncation would read.
        parts = cut_texts(self.tokenizer, inputs, limit, "right")
        lengths = [len(ids) for ids in self.tokenizer(parts, truncation=False)["input_ids"]]
        too_long = [index for index, length in enumerate(lengths) if length > limit]
        if not too_long:
            return
        prompt_tokens, prompt_cut = self._prompt_tokens(prompt, limit)
        if prompt_tokens >= limit:
            raise InputError(
                f"the prompt is {'over ' if prompt_cut else ''}{prompt_tokens} tokens, as long "
                f"as the max_seq_length of {limit} or longer: no text fits beside it; send a "
                'shorter prompt or "truncate": true'
            )
        cut = parts != list(inputs)
        more = len(too_long) - 20
        shown = f"{too_long[:20]}" + (f" and {more} more" if more > 0 else "")
        share = f", with the prompt's {prompt_tokens} tokens" if prompt else ""
        raise InputError(
            f"inputs {shown} are longer than the max_seq_length of {limit} tokens "
            f"(the model's, or the stack's maxSeqLength; longest: "
            f"{'over ' if cut else ''}{max(lengths)}{share}); "
            'shorten them or send "truncate": true'
        )

    def _prompt_tokens(self, prompt: str, limit: int) -> tuple[int, bool]:
        """(tokens of the prompt as it is sent, whether only its first `limit` were read)."""
        if not prompt:
            return 0, False
        (prepared,) = self._prepared([""], prompt)
        part = cut_text(self.tokenizer, prepared, limit, "right")
        return len(self.tokenizer(part, add_special_tokens=False)["input_ids"]), part != prepared

    def _prompt_length(self, prompt: str, side: str) -> int:
        """Tokens of the prompt alone, less a trailing special token (as sentence-transformers)."""
        features = self.batch_tokenizer.encode([prompt], side)
        ids = features["input_ids"][0].tolist()
        special = set(getattr(self.tokenizer, "all_special_ids", []) or [])
        return len(ids) - 1 if ids and ids[-1] in special else len(ids)


def _runs(
    features: dict[str, np.ndarray], padding_side: str
) -> Iterator[tuple[Any, dict[str, np.ndarray]]]:
    """(rows, their features) per forward pass (batches.py); the whole batch as it is, uncopied."""
    mask = features["attention_mask"]
    for rows, length in length_runs(mask, padding_side):
        if len(rows) == mask.shape[0] and length == mask.shape[1]:
            yield slice(None), features
        else:
            yield rows, {name: array[rows, :length] for name, array in features.items()}


def exclude_prompt(attention_mask: np.ndarray, prompt_length: int) -> np.ndarray:
    """The mask with the prompt's tokens (and any left padding before them) zeroed, for pooling."""
    padding = attention_mask.argmax(axis=1)
    positions = np.arange(attention_mask.shape[1])[None, :]
    return np.where(positions < (padding + prompt_length)[:, None], 0, attention_mask)


def effective_max_length(
    settings: EmbeddingSettings, tokenizer: Any, engine: Any, cap: int | None
) -> int:
    """The configured max_seq_length, else the tokenizer's, capped by the position embeddings.

    The stack's `maxSeqLength`, `cap`, lowers it further (never past what the model reads).
    """
    limits = [settings.max_seq_length] if settings.max_seq_length > 0 else []
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < 1_000_000:
        limits.append(tokenizer_limit)
    if engine.max_position_embeddings:
        limits.append(engine.max_position_embeddings)
    model_limit = min(limits) if limits else 512
    return model_limit if cap is None else min(model_limit, cap)
