"""What a model's sentence-transformers files say about turning tokens into one vector (no torch).

Read once at load: `modules.json` (which modules run), the Pooling config,
`sentence_bert_config.json` (max_seq_length, do_lower_case) and
`config_sentence_transformers.json` (prompts).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from facts.sentence_modules import (
    MODULES_FILE,
    PROMPTS_FILE,
    ModelFilesError,
    parse_json,
    parse_modules,
    parse_prompts,
)

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


def read_file(path: str) -> bytes | None:
    """The bytes of the model's file at `path`; None when the model has no such file."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise ModelFilesError(f"cannot read {os.path.basename(path)}: {error}") from error


def read_json(path: str) -> Any | None:
    """The JSON document in the model's file at `path`; None when the model has no such file."""
    data = read_file(path)
    return None if data is None else parse_json(os.path.basename(path), data)


def pooling_modes(config: dict[str, Any]) -> tuple[str, ...]:
    """The pooling modes of a `1_Pooling/config.json`, new (`pooling_mode`) or legacy flags."""
    if not isinstance(config, dict):
        raise ModelFilesError("the Pooling config is not a JSON object")
    if "pooling_mode" in config:
        raw = config["pooling_mode"]
        names = [raw] if isinstance(raw, str) else raw
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise ModelFilesError(
                f"the Pooling config's pooling_mode is {raw!r}: expected a mode name or a list "
                f"of them, from {list(POOLING_MODES)}"
            )
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


def read_settings(model_dir: str) -> EmbeddingSettings:
    """Pooling, normalization and sequence length from the model's sentence-transformers files."""
    prompts = parse_prompts(read_file(os.path.join(model_dir, PROMPTS_FILE)))
    modules_file = read_file(os.path.join(model_dir, MODULES_FILE))
    if modules_file is None:
        config = read_json(os.path.join(model_dir, "sentence_bert_config.json")) or {}
        return EmbeddingSettings(
            transformer_path=model_dir,
            pooling_modes=("mean",),
            normalize=True,
            max_seq_length=int(config.get("max_seq_length") or 0),
            do_lower_case=bool(config.get("do_lower_case", False)),
            prompts=prompts.prompts,
            default_prompt_name=prompts.default_prompt_name,
        )
    modules = parse_modules(modules_file)
    transformer_path = os.path.normpath(os.path.join(model_dir, modules[0].path))
    pooling_paths = [module.path for module in modules if module.kind == "Pooling"]
    modes: tuple[str, ...] = ("mean",)
    include_prompt = True
    if pooling_paths:
        config = read_json(os.path.join(model_dir, pooling_paths[0], "config.json"))
        if config is None:
            raise ModelFilesError(f"the Pooling module's {pooling_paths[0]}/config.json is missing")
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
        normalize=any(module.kind == "Normalize" for module in modules),
        max_seq_length=int(transformer_config.get("max_seq_length") or 0),
        do_lower_case=bool(transformer_config.get("do_lower_case", False)),
        dense_paths=tuple(module.path for module in modules if module.kind == "Dense"),
        prompts=prompts.prompts,
        default_prompt_name=prompts.default_prompt_name,
        include_prompt=include_prompt,
    )
