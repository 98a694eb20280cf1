"""Refuse, at packaging time, a model whose `modules.json` code/inference.py cannot run.

Without this, such a model packages fine and fails `model_fn` inside the endpoint: a failed
health check minutes into a deploy. The rules are the container's own: both parse with
`facts/sentence_modules.py` (inference.py reads it from `code/facts/`).
"""

from __future__ import annotations

from collections.abc import Iterable

from facts.sentence_modules import (
    DENSE_WEIGHTS,
    MODULES_FILE,
    ModelFilesError,
    SentenceModule,
    parse_modules,
)
from loader.errors import LoaderError

# modules.json is a few hundred bytes; anything this large is not one and is not read whole.
MAX_MODULES_BYTES = 1024 * 1024
_STEP = "check-modules"


class UnsupportedModules(LoaderError):
    """modules.json lists modules the inference script cannot run, or is unreadable."""


def check_modules(
    model_id: str, data: bytes, packaged: Iterable[str]
) -> tuple[SentenceModule, ...]:
    """The modules, if the container runs them and every Dense folder ships config and weights."""
    try:
        modules = parse_modules(data)
    except ModelFilesError as error:
        raise UnsupportedModules(
            f"{error}. Choose another model: the endpoint runs no module code of its own",
            step=_STEP,
            model=model_id,
            file=MODULES_FILE,
        ) from error
    paths = set(packaged)
    for module in modules:
        if module.kind != "Dense":
            continue
        prefix = f"{module.path}/" if module.path else ""
        missing = []
        if f"{prefix}config.json" not in paths:
            missing.append(f"{prefix}config.json")
        if not any(f"{prefix}{name}" in paths for name in DENSE_WEIGHTS):
            missing.append(" or ".join(f"{prefix}{name}" for name in DENSE_WEIGHTS))
        if missing:
            raise UnsupportedModules(
                f"the Dense module in '{module.path}' lacks {missing} in the repo",
                step=_STEP,
                model=model_id,
                file=MODULES_FILE,
            )
    return modules
