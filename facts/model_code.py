"""When a model is its repository's own code: `auto_map` in its config.json (standard library only).

This project runs no repository code; transformers would silently build its own class for the
same `model_type`, and the weights would not fit it: wrong vectors, no failure. Only the ONNX
engine serves such a model (docs/inference.md).
"""

from __future__ import annotations

from typing import Any

CONFIG_FILE = "config.json"
# The classes sentence-transformers' Transformer module loads: AutoConfig, then AutoModel.
CUSTOM_CODE_CLASSES = ("AutoConfig", "AutoModel")


def custom_code(config: Any) -> dict[str, str]:
    """The `auto_map` entries of a parsed config.json that send AutoConfig/AutoModel to its code."""
    auto_map = config.get("auto_map") if isinstance(config, dict) else None
    if not isinstance(auto_map, dict):
        return {}
    return {name: str(auto_map[name]) for name in CUSTOM_CODE_CLASSES if name in auto_map}


def custom_code_problem(classes: dict[str, str]) -> str:
    """Why PyTorch cannot run a model whose config maps `classes` to its repository's code."""
    mapped = ", ".join(f"{name} to {target!r}" for name, target in classes.items())
    return (
        f"its {CONFIG_FILE} maps {mapped}: the model is its repository's own Python code, which "
        "this project does not run (transformers would build its own class of the same "
        "model_type instead, and give wrong vectors)"
    )


TOKENIZER_CONFIG_FILE = "tokenizer_config.json"


def custom_tokenizer(tokenizer_config: Any) -> str | None:
    """The repository class a parsed tokenizer_config.json's `tokenizer_class` is (None: none).

    transformers 4 (every image's) then asks for `trust_remote_code`, which the container
    refuses at load once deployed, or, where the library has a class of that name
    (Qwen2Tokenizer), builds it without the repository's changes. A `tokenizer_class` that
    `auto_map` does not send to code (BertTokenizer) is the library's: then this is None.
    """
    if not isinstance(tokenizer_config, dict):
        return None
    auto_map, name = tokenizer_config.get("auto_map"), tokenizer_config.get("tokenizer_class")
    targets = auto_map.get("AutoTokenizer") if isinstance(auto_map, dict) else None
    if not isinstance(name, str) or not isinstance(targets, (str, list)):
        return None
    base = name.removesuffix("Fast")
    for target in [targets] if isinstance(targets, str) else targets:
        if isinstance(target, str) and target.rsplit(".", 1)[-1] in (base, base + "Fast"):
            return target
    return None


def custom_tokenizer_problem(name: str, target: str) -> str:
    """Why no engine can serve a model whose tokenizer is its repository's code."""
    return (
        f"its {TOKENIZER_CONFIG_FILE} names tokenizer_class {name!r}, which its auto_map sends to "
        f"the repository's own code ({target!r}): the endpoint runs no repository code, so "
        "transformers would refuse to load it without that code or build its own class of the "
        "same name in its place, which need not tokenize alike. Choose a model whose tokenizer "
        "is one of transformers' own (a tokenizer_class such as BertTokenizer)"
    )


# Tokenizers whose vocabulary transformers reads with pickle: TransfoXL's (CVE-2023-7018; not
# guarded on transformers 4.26, the py39 image's), from `pretrained_vocab_file`, which a
# tokenizer_config.json can point at any packaged file.
PICKLING_TOKENIZERS = ("TransfoXLTokenizer",)
PICKLE_PATH_KEYS = ("pretrained_vocab_file",)


def pickling_tokenizer_problem(tokenizer_config: Any) -> str | None:
    """Why a parsed tokenizer_config.json could make transformers unpickle a file (None: no)."""
    if not isinstance(tokenizer_config, dict):
        return None
    name = tokenizer_config.get("tokenizer_class")
    keys = [key for key in PICKLE_PATH_KEYS if tokenizer_config.get(key) is not None]
    if name not in PICKLING_TOKENIZERS and not keys:
        return None
    what = f"tokenizer_class {name!r}" if name in PICKLING_TOKENIZERS else f"{keys[0]!r}"
    return (
        f"its {TOKENIZER_CONFIG_FILE} names {what}: transformers reads that tokenizer's "
        "vocabulary with pickle, which can run code in the endpoint. Choose a model with "
        "another tokenizer"
    )
