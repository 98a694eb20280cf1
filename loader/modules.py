"""Refuse, at packaging time, a model whose `modules.json` code/inference.py cannot run.

Without this, such a model packages fine and fails `model_fn` inside the endpoint: a failed
health check minutes into a deploy. The list of kinds is the container's own
(`facts/sentence_modules.py`, which inference.py imports too).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from facts.sentence_modules import DENSE_WEIGHTS, MODULES_FILE, SUPPORTED_MODULES, module_kind
from loader.errors import LoaderError

# modules.json is a few hundred bytes; anything this large is not one and is not read whole.
MAX_MODULES_BYTES = 1024 * 1024
_STEP = "check-modules"


class UnsupportedModules(LoaderError):
    """modules.json lists a module kind the inference script cannot run, or is unreadable."""


def read_modules(model_id: str, data: bytes) -> list[tuple[str, str]]:
    """(type, path) of each modules.json entry; UnsupportedModules if it is not such a list."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise UnsupportedModules(
            f"modules.json is not valid JSON: {error}",
            step=_STEP,
            model=model_id,
            file=MODULES_FILE,
        ) from error
    if not isinstance(document, list) or not all(isinstance(m, dict) for m in document):
        raise UnsupportedModules(
            "modules.json must be a list of objects with 'type' and 'path'",
            step=_STEP,
            model=model_id,
            file=MODULES_FILE,
        )
    return [(str(m.get("type", "")), str(m.get("path", ""))) for m in document]


def check_modules(model_id: str, data: bytes, packaged: Iterable[str]) -> None:
    """Every module is a supported kind, and every Dense folder ships its config and weights."""
    modules = read_modules(model_id, data)
    unsupported = [
        f"{kind} ({path})" for kind, path in modules if module_kind(kind) not in SUPPORTED_MODULES
    ]
    if unsupported:
        raise UnsupportedModules(
            f"modules.json lists module(s) the endpoint's inference script cannot run: "
            f"{unsupported}; supported: {list(SUPPORTED_MODULES)} (from sentence_transformers). "
            "Choose another model, or package your own code with sourceModelDataUrl",
            step=_STEP,
            model=model_id,
            file=MODULES_FILE,
        )
    paths = set(packaged)
    for kind, folder in modules:
        if module_kind(kind) != "Dense":
            continue
        prefix = f"{folder}/" if folder else ""
        missing = []
        if f"{prefix}config.json" not in paths:
            missing.append(f"{prefix}config.json")
        if not any(f"{prefix}{name}" in paths for name in DENSE_WEIGHTS):
            missing.append(" or ".join(f"{prefix}{name}" for name in DENSE_WEIGHTS))
        if missing:
            raise UnsupportedModules(
                f"the Dense module in '{folder}' lacks {missing} in the repo",
                step=_STEP,
                model=model_id,
                file=MODULES_FILE,
            )
