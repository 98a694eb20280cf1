"""Second source: repackage an existing `model.tar.gz` (e.g. a training job's output) from S3.

Streamed, entries normalised, our `code/` added at the end, keyed by the source object's URL,
ETag and VersionId: the same object always yields the same bytes at the same key.
"""

from __future__ import annotations

import json
import logging
import posixpath
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from botocore.exceptions import BotoCoreError, ClientError

from facts.artifact_keys import artifact_location, source_revision
from facts.identifiers import parse_s3_url
from facts.loader_contract import LoaderRequest, LoaderResult
from facts.model_code import CONFIG_FILE, custom_code, custom_code_problem
from facts.sentence_modules import MODULES_FILE, PROMPTS_FILE, ModelFilesError, parse_prompts
from facts.weight_files import LOADED_INDEXES, index_problem, loaded_weights, used_index
from loader.archive import Member, TarEntry
from loader.artifacts import lookup_existing
from loader.errors import SourceArchiveError
from loader.modules import MAX_MODULES_BYTES, check_modules
from loader.publish import publish
from loader.repo_configs import MAX_CONFIG_BYTES, MAX_INDEX_BYTES
from loader.selection import may_package, names_in_folder, pickled_weights_problem
from loader.upload import part_size_for
from loader.version import container_code, format_version

log = logging.getLogger(__name__)
READ_CHUNK = 1024 * 1024
CODE_FOLDER = "code"
# A training output's weights are already near-incompressible; 3× its compressed size leaves
# room for text-heavy archives when sizing parts (the upload still fails cleanly past 10,000).
_EXPANSION_ALLOWANCE = 3
_UNREADABLE = (tarfile.TarError, EOFError, zlib.error, OSError, ClientError, BotoCoreError)


def refuse_custom_code_archive(config: bytes, model: str) -> None:
    """A source archive runs on PyTorch only: refuse one that is its repository's own code
    (facts/model_code.py), before the upload completes. Non-JSON config is left to the model load.
    """
    try:
        classes = custom_code(json.loads(config.decode("utf-8")))
    except (UnicodeDecodeError, ValueError):
        return
    if classes:
        raise SourceArchiveError(
            f"{custom_code_problem(classes)}. A source archive runs on PyTorch only: choose a "
            "model transformers builds itself",
            step="read-source",
            model=model,
            file=CONFIG_FILE,
        )


def refuse_pickled_weights(request: LoaderRequest, paths: set[str]) -> None:
    """Refuse an archive whose weights are pickles only, once it was all read (safetensors may come
    after a `.bin`); the upload is then aborted.
    """
    url = request.source_model_data_url or ""
    problem = pickled_weights_problem(url, paths)
    if problem is not None and not request.allow_pickled_weights:
        raise SourceArchiveError(problem, step="read-source", model=request.model_id)


def is_checked_file(name: str) -> bool:
    """modules.json, the prompts and the weight indexes: read as they pass, checked once all
    is read."""
    return name in (MODULES_FILE, PROMPTS_FILE) or name.rpartition("/")[2] in LOADED_INDEXES


def read_checked_file(handle: IO[bytes], name: str, size: int, model: str) -> bytes:
    """modules.json, the prompts or an index, whole; one past its bound is refused rather
    than passed on unchecked (the container would read it)."""
    bound = {MODULES_FILE: MAX_MODULES_BYTES, PROMPTS_FILE: MAX_CONFIG_BYTES}.get(
        name, MAX_INDEX_BYTES
    )  # the bounds the Hub path reads these files with
    if size > bound:
        raise SourceArchiveError(
            f"{name} is {size} bytes, over the {bound} bytes such a file takes; it is not one",
            step="read-source",
            model=model,
            file=name,
        )
    return handle.read()


def check_source_files(model: str, checked: dict[str, bytes], kept: set[str]) -> None:
    """The archive's modules.json, prompts and the weight index transformers reads, as the
    loader checks a Hub repo's: an error (its upload then aborted) for one the container must
    not load.
    """
    for name, data in sorted(checked.items()):
        if name == MODULES_FILE:
            check_modules(model, data, kept)  # UnsupportedModules, step check-modules
            continue
        if name == PROMPTS_FILE:
            try:
                parse_prompts(data)
            except ModelFilesError as error:
                raise SourceArchiveError(str(error), step="read-source", model=model) from error
            continue
        beside = names_in_folder(kept, name.rpartition("/")[0])
        if name.rpartition("/")[2] not in used_index(beside, loaded_weights(beside)[1]):
            continue  # a leftover index beside the single file transformers reads instead
        problem = index_problem(name, data, beside)
        if problem is not None:
            raise SourceArchiveError(problem, step="read-source", model=model, file=name)


def member_name(member: tarfile.TarInfo, model: str) -> str:
    """The normalised relative path, or SourceArchiveError for absolute or escaping paths."""
    name = posixpath.normpath(member.name)
    if name.startswith("/") or name == ".." or name.startswith("../"):
        raise SourceArchiveError(
            f"entry {member.name!r} escapes the archive root", step="read-source", model=model
        )
    return name


@contextmanager
def _reading(url: str, model: str) -> Iterator[None]:
    """SourceArchiveError for whatever breaks while the source is read (headers or data)."""
    try:
        yield
    except _UNREADABLE as err:
        raise SourceArchiveError(
            f"cannot stream {url} as a gzip'd tar: {type(err).__name__}: {err}",
            step="read-source",
            model=model,
        ) from err


def _chunks(handle: IO[bytes], url: str, model: str) -> Iterator[bytes]:
    with _reading(url, model):
        while chunk := handle.read(READ_CHUNK):
            yield chunk


def _open_source(s3: Any, request: LoaderRequest) -> tuple[dict[str, Any], str, str]:
    url = request.source_model_data_url or ""
    bucket, key = parse_s3_url(url)
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        raise SourceArchiveError(
            f"cannot read {url}: {error} (does it exist, and may the loader role read it?)",
            step="read-source",
            model=request.model_id,
        ) from error
    return head, bucket, key


def package_source_archive(request: LoaderRequest, s3: Any) -> LoaderResult:
    """Stream the source archive into a new reproducible one that ships our inference code."""
    version = format_version()
    model = request.model_id
    url = request.source_model_data_url or ""
    head, source_bucket, source_key = _open_source(s3, request)
    version_id = head.get("VersionId")
    revision = source_revision(url, head["ETag"], version_id)
    location = artifact_location(request.bucket, request.key_prefix, model, revision, version)
    existing = lookup_existing(s3, location, version, model, request.expected_sha256)
    if existing is not None:
        return existing

    code = container_code()
    get_args = {"Bucket": source_bucket, "Key": source_key, "IfMatch": head["ETag"]}
    if version_id:
        get_args["VersionId"] = version_id

    def members() -> Iterator[Member]:
        seen: set[str] = set()
        left_out: list[str] = []
        checked: dict[str, bytes] = {}  # modules.json, prompts, indexes: read as they pass

        def folders(path: str) -> Iterator[Member]:
            parts = path.split("/")
            for depth in range(1, len(parts) + 1):
                folder = "/".join(parts[:depth])
                if folder not in seen:
                    seen.add(folder)
                    yield TarEntry(folder, is_directory=True), ()

        with _reading(url, model):
            body = s3.get_object(**get_args)["Body"]
            with tarfile.open(fileobj=body, mode="r|gz") as source:
                for member in source:
                    name = member_name(member, model)
                    # code/ is ours alone: the toolkit puts it first on sys.path and pip-installs
                    # a code/requirements.txt at startup, so none of the source's is kept.
                    if name in (".", CODE_FOLDER) or name.startswith(f"{CODE_FOLDER}/"):
                        continue
                    if member.isdir():
                        continue  # folders come with the files kept in them
                    if not member.isfile():
                        raise SourceArchiveError(
                            f"entry {member.name!r} is a link or special file; only regular "
                            "files and folders can be repackaged",
                            step="read-source",
                            model=model,
                        )
                    if name in seen:
                        raise SourceArchiveError(
                            f"entry {name!r} appears twice", step="read-source", model=model
                        )
                    if not may_package(name):
                        left_out.append(name)
                        continue
                    if "/" in name:
                        yield from folders(name.rsplit("/", 1)[0])
                    seen.add(name)
                    handle = source.extractfile(member)
                    assert handle is not None  # regular files always have one
                    # A larger config.json is not one: it is streamed as it is, unread.
                    if name == CONFIG_FILE and member.size <= MAX_CONFIG_BYTES:
                        data = handle.read()
                        refuse_custom_code_archive(data, model)
                        yield TarEntry(name, member.size), (data,)
                        continue
                    if is_checked_file(name):
                        checked[name] = read_checked_file(handle, name, member.size, model)
                        yield TarEntry(name, member.size), (checked[name],)
                        continue
                    yield TarEntry(name, member.size), _chunks(handle, url, model)
        if left_out:
            log.info("left out of %s: %d files, e.g. %s", url, len(left_out), left_out[:5])
        refuse_pickled_weights(request, seen)
        check_source_files(model, checked, seen)
        for name, data in code.items():
            yield from folders(name.rsplit("/", 1)[0])
            yield TarEntry(name, len(data)), (data,)

    part_size = part_size_for(head["ContentLength"] * _EXPANSION_ALLOWANCE)
    result = publish(s3, location, request, revision, members(), part_size=part_size)
    log.info("repackaged %s as %s (sha256 %s)", url, location.url, result.sha256)
    return result
