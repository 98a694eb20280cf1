"""What a model's sentence-transformers files say about turning tokens into one vector (no torch).

Read once at load: `modules.json` (which modules run), the Pooling config,
`sentence_bert_config.json` (max_seq_length, do_lower_case) and
`config_sentence_transformers.json` (prompts).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from facts.sentence_modules import MODULES_FILE, PROMPTS_FILE, SUPPORTED_MODULES, module_kind

logger = logging.getLogger(__name__)

# Concatenation order of several pooling modes, as in sentence-transformers.
POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
_LEGACY_POOLING_KEYS = (
    ("pooling_mode_cls_token", "cls"),
    ("pooling_mode_max_tokens", "max"),
    ("pooling_mode_mean_tokens", "mean"),
    ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens"),
    ("pooling_mode_weightedmean_tokens", "weightedmean"),
    ("pooling_mode_lasttoken", "lasttoken"),
)
_POOLING_ALIASES = {"mean_sqrt_len": "mean_sqrt_len_tokens", "last_token": "lasttoken"}


class ModelFilesError(ValueError):
    """The model folder's sentence-transformers files describe something this script cannot do."""


@dataclass(frozen=True)
class EmbeddingSettings:
    """What the model's sentence-transformers files say about turning tokens into one vector."""

    transformer_path: str
    pooling_modes: tuple[str, ...]
    normalize: bool
    max_seq_length: int
    do_lower_case: bool
    # Folders of the Dense modules applied after pooling, in modules.json order.
    dense_paths: tuple[str, ...] = ()
    # Named prompts (prefixes) and the one sentence-transformers applies when none is asked for.
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    # Pooling's `include_prompt`: False leaves the prompt's tokens out of the pooled vector.
    include_prompt: bool = True


def read_json(path: str) -> Any | None:
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        raise ModelFilesError(f"cannot read {os.path.basename(path)}: {error}") from error


def pooling_modes(config: dict[str, Any]) -> tuple[str, ...]:
    """The pooling modes of a `1_Pooling/config.json`, new (`pooling_mode`) or legacy flags."""
    if "pooling_mode" in config:
        raw = config["pooling_mode"]
        names = [raw] if isinstance(raw, str) else list(raw)
        modes = tuple(_POOLING_ALIASES.get(name, name) for name in names)
    else:
        modes = tuple(mode for key, mode in _LEGACY_POOLING_KEYS if config.get(key))
    unknown = [mode for mode in modes if mode not in POOLING_MODES]
    if unknown:
        raise ModelFilesError(
            f"unsupported pooling mode(s) {unknown} in the Pooling config; "
            f"supported: {list(POOLING_MODES)}"
        )
    return modes or ("mean",)


def read_prompts(model_dir: str) -> tuple[dict[str, str], str | None]:
    """The model's named prompts and default prompt name (`config_sentence_transformers.json`)."""
    config = read_json(os.path.join(model_dir, PROMPTS_FILE)) or {}
    prompts = config.get("prompts") or {}
    if not isinstance(prompts, dict) or not all(
        isinstance(name, str) and isinstance(text, str) for name, text in prompts.items()
    ):
        raise ModelFilesError(f"{PROMPTS_FILE}: 'prompts' must map names to prefix strings")
    default = config.get("default_prompt_name") or None
    if default is not None and default not in prompts:
        raise ModelFilesError(
            f"{PROMPTS_FILE}: default_prompt_name {default!r} is not one of its prompts "
            f"{sorted(prompts)}"
        )
    return dict(prompts), default


def read_settings(model_dir: str) -> EmbeddingSettings:
    """Pooling, normalization and sequence length from the model's sentence-transformers files."""
    prompts, default_prompt_name = read_prompts(model_dir)
    modules = read_json(os.path.join(model_dir, MODULES_FILE))
    if modules is None:
        config = read_json(os.path.join(model_dir, "sentence_bert_config.json")) or {}
        return EmbeddingSettings(
            transformer_path=model_dir,
            pooling_modes=("mean",),
            normalize=True,
            max_seq_length=int(config.get("max_seq_length") or 0),
            do_lower_case=bool(config.get("do_lower_case", False)),
            prompts=prompts,
            default_prompt_name=default_prompt_name,
        )
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise ModelFilesError("modules.json must be a list of objects with 'type' and 'path'")
    entries = [(str(m.get("type", "")), str(m.get("path", ""))) for m in modules]
    kinds = [(module_kind(kind), path) for kind, path in entries]
    unsupported = [
        f"{module_type} ({path})"
        for module_type, path in entries
        if module_kind(module_type) not in SUPPORTED_MODULES
    ]
    if unsupported:
        raise ModelFilesError(
            f"modules.json lists module(s) this endpoint cannot run: {unsupported}; "
            f"supported: {list(SUPPORTED_MODULES)}"
        )
    if not kinds or kinds[0][0] != "Transformer":
        raise ModelFilesError("modules.json must start with a Transformer module")
    _check_dense_order([kind for kind, _ in kinds])
    transformer_path = os.path.normpath(os.path.join(model_dir, kinds[0][1]))
    pooling_paths = [path for kind, path in kinds if kind == "Pooling"]
    modes: tuple[str, ...] = ("mean",)
    include_prompt = True
    if pooling_paths:
        config = read_json(os.path.join(model_dir, pooling_paths[0], "config.json")) or {}
        modes = pooling_modes(config)
        include_prompt = config.get("include_prompt", True) is not False
    transformer_config = {}
    for name in ("sentence_bert_config.json", "sentence_xlnet_config.json"):
        found = read_json(os.path.join(transformer_path, name))
        if found is not None:
            transformer_config = found
            break
    return EmbeddingSettings(
        transformer_path=transformer_path,
        pooling_modes=modes,
        normalize=any(kind == "Normalize" for kind, _ in kinds),
        max_seq_length=int(transformer_config.get("max_seq_length") or 0),
        do_lower_case=bool(transformer_config.get("do_lower_case", False)),
        dense_paths=tuple(path for kind, path in kinds if kind == "Dense"),
        prompts=prompts,
        default_prompt_name=default_prompt_name,
        include_prompt=include_prompt,
    )


def _check_dense_order(kinds: Sequence[str]) -> None:
    """Dense projects the pooled vector: it must follow Pooling and precede Normalize."""
    dense = [index for index, kind in enumerate(kinds) if kind == "Dense"]
    if not dense:
        return
    pooling = [index for index, kind in enumerate(kinds) if kind == "Pooling"]
    normalize = [index for index, kind in enumerate(kinds) if kind == "Normalize"]
    if not pooling or min(dense) < min(pooling) or (normalize and max(dense) > min(normalize)):
        raise ModelFilesError(
            f"modules.json has Dense modules in an order this endpoint cannot run: {list(kinds)}; "
            "Dense modules must come after Pooling and before Normalize"
        )
