"""What a model's small JSON files say at a pinned commit, read from the Hub before any deploy.

Read by the packager's `check`: the prompt names (with the container's own reader), and whether
config.json makes the model its repository's own code (facts/model_code.py). The loader asks
again for a sha pin whose check preview could not make.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from facts.model_code import (
    CONFIG_FILE,
    TOKENIZER_CONFIG_FILE,
    custom_code,
    custom_code_problem,
    custom_tokenizer,
    custom_tokenizer_problem,
    pickling_tokenizer_problem,
)
from facts.onnx_runtime import ONNX_MODEL_FILE
from facts.sentence_modules import PROMPTS_FILE, ModelFilesError, Prompts, parse_prompts
from facts.weight_files import LOADED_INDEXES, index_problem
from loader.errors import LoaderError
from loader.hub import stream_file
from loader.selection import RepoFile, names_in_folder

# These files are a few hundred bytes to a few KB; anything this large is not one.
MAX_CONFIG_BYTES = 1024 * 1024
# tokenizer_config.json lists every added token: over 1 MiB for Gemma 3's (EmbeddingGemma).
MAX_TOKENIZER_CONFIG_BYTES = 32 * 1024 * 1024
# A sharded checkpoint's index maps each tensor to a shard: about 100 KB for a 70B model.
MAX_INDEX_BYTES = 16 * 1024 * 1024


def read_repo_file(
    model_id: str,
    commit: str,
    files: Iterable[RepoFile],
    path: str,
    token: str | None = None,
    max_bytes: int = MAX_CONFIG_BYTES,
) -> bytes | None:
    """The bytes of the small file `path` at `commit`; None when the repo has no such file."""
    item = next((f for f in files if f.path == path), None)
    if item is None:
        return None
    if item.size > max_bytes:
        raise LoaderError(
            f"{path} is {item.size} bytes, over {max_bytes}",
            step=f"read-{path}",
            model=model_id,
            file=path,
        )
    return b"".join(stream_file(model_id, commit, item, token))


def parse_repo_json(model_id: str, path: str, data: bytes) -> dict[str, Any]:
    """The JSON object in `data` (the file `path`); LoaderError naming the file otherwise."""
    step = f"read-{path}"
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise LoaderError(
            f"{path} is not JSON: {error}", step=step, model=model_id, file=path
        ) from error
    if not isinstance(document, dict):
        raise LoaderError(f"{path} is not a JSON object", step=step, model=model_id, file=path)
    return document


def read_repo_json(
    model_id: str, commit: str, files: Iterable[RepoFile], path: str, token: str | None = None
) -> dict[str, Any] | None:
    """The JSON object in `path` at `commit`; None when the repo has no such file."""
    data = read_repo_file(model_id, commit, files, path, token)
    return None if data is None else parse_repo_json(model_id, path, data)


def checked_prompts_file(
    model_id: str, commit: str, files: Iterable[RepoFile], token: str | None = None
) -> bytes | None:
    """`PROMPTS_FILE`'s bytes (None: the repo has none), refused before any upload when the
    container would refuse it at load; the same bytes then go into the archive."""
    data = read_repo_file(model_id, commit, files, PROMPTS_FILE, token)
    if data is not None:
        _parsed_prompts(model_id, data)
    return data


def _parsed_prompts(model_id: str, data: bytes | None) -> Prompts:
    try:
        return parse_prompts(data)
    except ModelFilesError as error:
        raise LoaderError(
            str(error), step=f"read-{PROMPTS_FILE}", model=model_id, file=PROMPTS_FILE
        ) from error


def prompt_names(
    model_id: str, commit: str, files: Iterable[RepoFile], token: str | None = None
) -> tuple[str, ...]:
    """The prompt names of `PROMPTS_FILE` at `commit` (sorted); () when the repo has no file.

    Parsed as the container parses it at load, so a file it would refuse is refused here.
    """
    data = read_repo_file(model_id, commit, files, PROMPTS_FILE, token)
    return tuple(sorted(_parsed_prompts(model_id, data).prompts))


def custom_code_classes(
    model_id: str, commit: str, files: Iterable[RepoFile], token: str | None = None
) -> dict[str, str]:
    """config.json's auto_map entries that make the model its repository's code ({}: none)."""
    return custom_code(read_repo_json(model_id, commit, files, CONFIG_FILE, token))


def checked_config_file(
    model_id: str, commit: str, files: Iterable[RepoFile], token: str | None = None
) -> bytes | None:
    """config.json's bytes, read before any upload; LoaderError if the model is custom code.

    For a PyTorch archive: the same bytes then go into the archive (no second download).
    """
    data = read_repo_file(model_id, commit, files, CONFIG_FILE, token)
    classes = {} if data is None else custom_code(parse_repo_json(model_id, CONFIG_FILE, data))
    if classes:
        raise LoaderError(
            f"{custom_code_problem(classes)}. Package it for the ONNX engine (inferenceEngine "
            f"auto or onnx) if the repository ships {ONNX_MODEL_FILE}",
            step="check-model-code",
            model=model_id,
            file=CONFIG_FILE,
        )
    return data


def check_tokenizer_code(
    model_id: str, commit: str, files: Iterable[RepoFile], token: str | None = None
) -> None:
    """LoaderError, before any upload, when the tokenizer is the repository's own code."""
    data = read_repo_file(
        model_id, commit, files, TOKENIZER_CONFIG_FILE, token, MAX_TOKENIZER_CONFIG_BYTES
    )
    document = None if data is None else parse_repo_json(model_id, TOKENIZER_CONFIG_FILE, data)
    target = custom_tokenizer(document)
    problem = pickling_tokenizer_problem(document)
    if target is not None:
        problem = custom_tokenizer_problem(str(document["tokenizer_class"]), target)
    if problem is not None:
        raise LoaderError(
            problem, step="check-model-code", model=model_id, file=TOKENIZER_CONFIG_FILE
        )


def checked_weight_indexes(
    model_id: str, commit: str, files: Iterable[RepoFile], token: str | None = None
) -> dict[str, bytes]:
    """Each packaged index of a sharded checkpoint (path → bytes), read before any upload;
    LoaderError when one names files other than its folder's shards (facts/weight_files.py).
    """
    files = list(files)
    checked = {}
    for item in files:
        folder, _, name = item.path.rpartition("/")
        if name not in LOADED_INDEXES:
            continue
        data = read_repo_file(model_id, commit, files, item.path, token, MAX_INDEX_BYTES)
        assert data is not None  # listed above
        beside = names_in_folder((f.path for f in files), folder)
        problem = index_problem(item.path, data, beside)
        if problem is not None:
            raise LoaderError(
                f"{problem}; choose a revision or model whose index names its shards only",
                step="check-weight-index",
                model=model_id,
                file=item.path,
            )
        checked[item.path] = data
    return checked
