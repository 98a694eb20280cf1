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
