"""Texts in, sentence vectors out: prompts, tokenizer, engine, pooling, Dense, dimensions, norm.

Every step but the transformer's forward pass is shared by the engines (torch_engine.py), so
both answer with sentence-transformers' vectors: `encode(texts, prompt_name=…, truncate_dim=…,
normalize_embeddings=…)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from facts.embedding_api import EmbeddingOptions, InputError, max_vectors
from facts.sagemaker_endpoints import DEFAULT_PROMPT_VARIABLE, MAX_BATCH_SIZE_VARIABLE
from facts.sentence_modules import PROMPTS_FILE, ModelFilesError

from .batches import length_runs
from .cut import cut_texts
from .environment import ContainerSettings, read_environment
from .model_files import EmbeddingSettings
from .pooling import pool

# Texts run through the transformer this many at a time, longest first (as sentence-transformers
# does), so one long text does not pad a whole large request; within a batch, texts of similar
# length share a forward pass (batches.py), so short ones are not padded to the longest.
ENCODE_BATCH_SIZE = 32


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
    tokenizer: Any
    engine: Any  # TorchEngine or another engine with `token_embeddings(features)`
    settings: EmbeddingSettings
    dimensions: int
    dense: tuple[Any, ...] = ()
    # The stack's default prompt name, else the model's own default (sentence-transformers').
    default_prompt_name: str | None = None

    def max_texts_per_request(self, dimensions: int, encoding_format: str) -> int:
        """The batch limit, also bounded so the response fits the platform's response limit."""
        environment = read_environment()
        by_response = max_vectors(dimensions, encoding_format, environment.response_limit_bytes)
        return max(1, min(environment.max_batch_size, by_response))

    def prompt_for(self, options: EmbeddingOptions) -> str:
        """The prefix a request asks for: literal, named, the stack's default, the model's."""
        if options.prompt is not None:
            return options.prompt
        name = options.prompt_name or self.default_prompt_name
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
                f"{read_environment().response_limit_bytes}-byte response limit: "
                "send smaller batches",
                status=413,
            )

    def embed(self, texts: Sequence[str], options: EmbeddingOptions) -> tuple[torch.Tensor, int]:
        """(float32 vectors in request order, tokens read) for `texts`."""
        dimensions = self.output_dimensions(options)
        prompt = self.prompt_for(options)
        inputs = self._prepared(texts, prompt)
        tokenizer = self.tokenizer
        settings = self.settings
        tokenizer.truncation_side = options.truncation_direction
        if not options.truncate:
            self._check_lengths(inputs)
        else:  # what truncation would drop is not read: a 4 MB text costs what 2 KB does
            inputs = cut_texts(
                tokenizer, inputs, settings.max_seq_length, options.truncation_direction
            )
        prompt_length = (
            self._prompt_length(prompt) if prompt and not settings.include_prompt else None
        )
        normalize = settings.normalize if options.normalize is None else options.normalize
        order = sorted(range(len(inputs)), key=lambda index: -len(inputs[index]))
        vectors: list[torch.Tensor | None] = [None] * len(inputs)
        tokens = 0
        with torch.inference_mode():
            for start in range(0, len(order), ENCODE_BATCH_SIZE):
                chunk = order[start : start + ENCODE_BATCH_SIZE]
                features = tokenizer(
                    [inputs[index] for index in chunk],
                    padding=True,
                    truncation="longest_first",
                    max_length=settings.max_seq_length,
                    return_tensors="pt",
                )
                tokens += int(features["attention_mask"].sum())
                side = getattr(tokenizer, "padding_side", "right")
                for rows, length in length_runs(features["attention_mask"], side):
                    run = {name: tensor[rows, :length] for name, tensor in features.items()}
                    mask = run["attention_mask"]
                    token_vectors = self.engine.token_embeddings(run)
                    if prompt_length is not None:
                        mask = exclude_prompt(mask, prompt_length)
                    pooled = torch.from_numpy(
                        pool(settings.pooling_modes, token_vectors.numpy(), mask.numpy())
                    )
                    for layer in self.dense:
                        pooled = layer(pooled)
                    pooled = pooled[:, :dimensions]
                    if normalize:
                        pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                    for position, row in enumerate(rows):
                        vectors[chunk[row]] = pooled[position]
        stacked = torch.stack([vector for vector in vectors if vector is not None])
        return stacked.to(torch.float32), tokens

    def _prepared(self, texts: Sequence[str], prompt: str) -> list[str]:
        # Surrounding whitespace goes, as in sentence-transformers' Transformer.tokenize.
        prepared = [prompt + text.strip() for text in texts]
        if self.settings.do_lower_case:
            prepared = [text.lower() for text in prepared]
        return prepared

    def _check_lengths(self, inputs: Sequence[str]) -> None:
        """With truncate=false, a text longer than max_seq_length tokens is the caller's error."""
        limit = self.settings.max_seq_length
        # A text cut to its window is too long already (the part kept holds more than `limit`
        # tokens), so no more of it is read than truncation would read.
        parts = cut_texts(self.tokenizer, inputs, limit, "right")
        lengths = [len(ids) for ids in self.tokenizer(parts, truncation=False)["input_ids"]]
        too_long = [index for index, length in enumerate(lengths) if length > limit]
        if too_long:
            cut = parts != list(inputs)
            raise InputError(
                f"inputs {too_long[:20]} are longer than the max_seq_length of {limit} tokens "
                f"(the model's, or the stack's maxSeqLength; longest: "
                f"{'over ' if cut else ''}{max(lengths)}); shorten them or send "
                '"truncate": true'
            )

    def _prompt_length(self, prompt: str) -> int:
        """Tokens of the prompt alone, less a trailing special token (as sentence-transformers)."""
        ids = self.tokenizer([prompt], truncation=True, max_length=self.settings.max_seq_length)[
            "input_ids"
        ][0]
        special = set(getattr(self.tokenizer, "all_special_ids", []) or [])
        return len(ids) - 1 if ids and ids[-1] in special else len(ids)


def exclude_prompt(attention_mask: torch.Tensor, prompt_length: int) -> torch.Tensor:
    """The mask with the prompt's tokens (and any left padding before them) zeroed, for pooling."""
    mask = attention_mask.clone()
    padding = mask.to(torch.int32).argmax(dim=1)
    positions = torch.arange(mask.size(1)).unsqueeze(0)
    mask[positions < (padding + prompt_length).unsqueeze(1)] = 0
    return mask


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
