"""The sentence-transformers files the container reads, and the one reader of modules.json, prompts.

The loader refuses, at packaging time, a model whose files say anything else; the inference script
refuses it at load. Both parse with the functions below, so what one packages the other runs (the
container gets a copy of this file in `code/facts/`: standard library only, Python 3.9-safe).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

MODULES_FILE = "modules.json"
SUPPORTED_MODULES = ("Transformer", "Pooling", "Dense", "Normalize")
# The only type prefix read as a kind; any other type is custom code, refused by its full name.
MODULE_TYPE_PREFIX = "sentence_transformers."
# A Dense module's weights, in order of preference.
DENSE_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
# Named prompts (name → prefix) and the model's own default prompt name.
PROMPTS_FILE = "config_sentence_transformers.json"


class ModelFilesError(ValueError):
    """The model's sentence-transformers files describe something the inference script cannot do."""


@dataclass(frozen=True)
class SentenceModule:
    """One modules.json entry: its kind (`Dense`, or a custom type's full name) and its folder."""

    kind: str
    path: str
    type: str


@dataclass(frozen=True)
class Prompts:
    """config_sentence_transformers.json's named prompts and the one applied when none is asked."""

    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None


def module_kind(module_type: str) -> str:
    """`sentence_transformers.models.Dense` (or a newer module path) → `Dense`; a type outside
    the package keeps its full name, so it is never taken for a built-in module.
    """
    if not module_type.startswith(MODULE_TYPE_PREFIX):
        return module_type
    return module_type.rsplit(".", 1)[-1]


def parse_json(name: str, data: bytes) -> Any:
    """The JSON document in `data` (the file `name`); ModelFilesError naming the file otherwise."""
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ModelFilesError(f"{name} is not valid JSON: {error}") from error


def parse_modules(data: bytes) -> tuple[SentenceModule, ...]:
    """The modules of a modules.json the inference script can run, in order; else ModelFilesError.

    Only supported kinds, a Transformer first, Dense modules between Pooling and Normalize.
    """
    document = parse_json(MODULES_FILE, data)
    if not isinstance(document, list) or not all(isinstance(m, dict) for m in document):
        raise ModelFilesError(f"{MODULES_FILE} must be a list of objects with 'type' and 'path'")
    types = [(str(m.get("type", "")), str(m.get("path", ""))) for m in document]
    modules = tuple(SentenceModule(module_kind(kind), path, kind) for kind, path in types)
    unsupported = [f"{m.type} ({m.path})" for m in modules if m.kind not in SUPPORTED_MODULES]
    if unsupported:
        raise ModelFilesError(
            f"{MODULES_FILE} lists module(s) the endpoint's inference script cannot run: "
            f"{unsupported}; supported: {list(SUPPORTED_MODULES)} (from sentence_transformers)"
        )
    outside = [m.path for m in modules if m.path.startswith(("/", "\\")) or ".." in m.path]
    if outside:
        raise ModelFilesError(
            f"{MODULES_FILE} lists module paths outside the model's folder: {outside}"
        )
    kinds = [module.kind for module in modules]
    if not kinds or kinds[0] != "Transformer":
        raise ModelFilesError(
            f"{MODULES_FILE} must start with a Transformer module; it lists {kinds or 'none'}"
        )
    _check_dense_order(kinds)
    return modules


def _check_dense_order(kinds: Sequence[str]) -> None:
    """Dense projects the pooled vector: it must follow Pooling and precede Normalize."""
    dense = [index for index, kind in enumerate(kinds) if kind == "Dense"]
    if not dense:
        return
    pooling = [index for index, kind in enumerate(kinds) if kind == "Pooling"]
    normalize = [index for index, kind in enumerate(kinds) if kind == "Normalize"]
    if not pooling or min(dense) < min(pooling) or (normalize and max(dense) > min(normalize)):
        raise ModelFilesError(
            f"{MODULES_FILE} has Dense modules in an order the endpoint cannot run: "
            f"{list(kinds)}; Dense modules must come after Pooling and before Normalize"
        )


def parse_prompts(data: bytes | None) -> Prompts:
    """The prompts of a config_sentence_transformers.json (None: the model has no such file)."""
    config = {} if data is None else parse_json(PROMPTS_FILE, data)
    if not isinstance(config, dict):
        raise ModelFilesError(f"{PROMPTS_FILE} must be a JSON object")
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
    return Prompts(dict(prompts), default)
