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
from loader.selection import is_module_folder

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
        problem = _module_problem(module, paths)
        if problem is not None:
            raise UnsupportedModules(problem, step=_STEP, model=model_id, file=MODULES_FILE)
    return modules


def _module_problem(module: SentenceModule, packaged: set[str]) -> str | None:
    """Why the container could not run `module` from the packaged files (None: it can).

    Modules live at the root or in one folder such as `1_Pooling`: files elsewhere are not
    packaged, and a Pooling config that is not there would leave the endpoint pooling by mean.
    """
    where = f"the {module.kind} module in '{module.path}'"
    if module.path and not is_module_folder(module.path):
        return (
            f"{where} is not at the repository's root nor in a module folder such as "
            "'1_Pooling' (digits, '_', a name), where the loader packages a module's files"
        )
    prefix = f"{module.path}/" if module.path else ""
    needed = {"Dense": [f"{prefix}config.json"], "Pooling": [f"{prefix}config.json"]}
    if module.path:  # a Transformer in a folder of its own (older sentence-transformers)
        needed["Transformer"] = [f"{prefix}config.json"]
    missing = [path for path in needed.get(module.kind, []) if path not in packaged]
    if module.kind == "Dense" and not any(f"{prefix}{name}" in packaged for name in DENSE_WEIGHTS):
        missing.append(" or ".join(f"{prefix}{name}" for name in DENSE_WEIGHTS))
    return f"{where} lacks {missing} in the repo" if missing else None
