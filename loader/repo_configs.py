"""The model's named prompts at a pinned commit, read from the Hub before anything is deployed.

A stack's `defaultPromptName` that the model lacks would otherwise pass packaging and fail
`model_fn` in the endpoint, minutes into a deploy. The provider's `check` reads this at preview.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from facts.sentence_modules import PROMPTS_FILE
from loader.errors import LoaderError
from loader.hub import stream_file
from loader.selection import RepoFile

# config_sentence_transformers.json is a few hundred bytes; anything this large is not one.
MAX_PROMPTS_BYTES = 1024 * 1024
_STEP = "read-prompts"


def prompt_names(
    model_id: str, commit: str, files: Iterable[RepoFile], token: str | None = None
) -> tuple[str, ...]:
    """The prompt names of `PROMPTS_FILE` at `commit` (sorted); () when the repo has no file."""
    item = next((f for f in files if f.path == PROMPTS_FILE), None)
    if item is None:
        return ()
    if item.size > MAX_PROMPTS_BYTES:
        raise LoaderError(
            f"{PROMPTS_FILE} is {item.size} bytes, over {MAX_PROMPTS_BYTES}",
            step=_STEP,
            model=model_id,
            file=PROMPTS_FILE,
        )
    data = b"".join(stream_file(model_id, commit, item, token))
    try:
        prompts = json.loads(data.decode("utf-8")).get("prompts") or {}
    except (UnicodeDecodeError, ValueError, AttributeError) as error:
        raise LoaderError(
            f"{PROMPTS_FILE} is not a JSON object: {error}",
            step=_STEP,
            model=model_id,
            file=PROMPTS_FILE,
        ) from error
    if not isinstance(prompts, dict):
        raise LoaderError(
            f"{PROMPTS_FILE}: 'prompts' must map names to prefix strings",
            step=_STEP,
            model=model_id,
            file=PROMPTS_FILE,
        )
    return tuple(sorted(str(name) for name in prompts))
