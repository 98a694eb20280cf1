"""Packaging a Hub model at a pinned commit into a reproducible archive in S3."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from facts.artifact_keys import artifact_location
from facts.model_code import CONFIG_FILE
from loader.archive import Member, TarEntry, gzip_size, tar_size
from loader.artifacts import LoaderResult, lookup_existing
from loader.errors import GatedRepoAccessDenied, LoaderError
from loader.event import LoaderRequest
from loader.hub import fetch_snapshot, stream_file
from loader.modules import MAX_MODULES_BYTES, MODULES_FILE, UnsupportedModules, check_modules
from loader.publish import code_files, publish
from loader.repo_configs import checked_config_file
from loader.selection import NoWeightsError, RepoFile, select_files
from loader.upload import part_size_for
from loader.version import format_version

log = logging.getLogger(__name__)


def parent_directories(paths: list[str]) -> list[str]:
    """Every folder that holds one of `paths` (tar entries of their own, for strict extractors)."""
    folders = set()
    for path in paths:
        parts = path.split("/")[:-1]
        folders.update("/".join(parts[: depth + 1]) for depth in range(len(parts)))
    return sorted(folders)


def checked_modules_file(
    model: str, revision: str, selected: list[RepoFile], token: str | None
) -> bytes | None:
    """modules.json's bytes (when the repo has one), refused if the script cannot run it.

    Read before any upload starts, so an unsupported model stops packaging with nothing written;
    the same bytes then go into the archive (no second download).
    """
    item = next((f for f in selected if f.path == MODULES_FILE), None)
    if item is None:
        return None
    if item.size > MAX_MODULES_BYTES:
        raise UnsupportedModules(
            f"modules.json is {item.size} bytes, over {MAX_MODULES_BYTES}: not a "
            "sentence-transformers module list",
            step="check-modules",
            model=model,
            file=MODULES_FILE,
        )
    data = b"".join(stream_file(model, revision, item, token))
    check_modules(model, data, [f.path for f in selected])
    return data


def package_hub_model(request: LoaderRequest, s3: Any, token: str | None) -> LoaderResult:
    """Resolve, select, stream every file into one archive upload; idempotent per commit."""
    version = format_version(request.runtime)
    model = request.model_id
    snapshot = fetch_snapshot(model, request.revision, token)
    if snapshot.gated and not token:
        raise GatedRepoAccessDenied(
            f"'{model}' is a gated repo and no token was given: accept its terms on the Hub, then "
            "set a token of that account (config secret hfToken, or hfTokenSecretArn)",
            step="list-files",
            model=model,
        )
    try:
        selected = select_files(model, snapshot.files, request.engine, request.onnx_file)
    except NoWeightsError as error:
        raise LoaderError(str(error), step="select-files", model=model) from error
    location = artifact_location(
        request.bucket, request.key_prefix, model, snapshot.revision, request.artifact_variant
    )
    existing = lookup_existing(s3, location, version, model, request.expected_sha256)
    if existing is not None:
        log.info("artifact already present, nothing to do: %s", location.url)
        return existing

    config = None
    if request.engine == "torch":
        config = checked_config_file(model, snapshot.revision, selected, token)
    modules = checked_modules_file(model, snapshot.revision, selected, token)
    code = code_files(request.runtime)
    files: dict[str, RepoFile | bytes] = {item.path: item for item in selected}
    if config is not None:
        files[CONFIG_FILE] = config
    if modules is not None:
        files[MODULES_FILE] = modules
    files.update(code)
    entries = [TarEntry(d, 0, is_directory=True) for d in parent_directories(list(files))]
    entries += [
        TarEntry(name, value.size if isinstance(value, RepoFile) else len(value))
        for name, value in files.items()
    ]
    entries.sort(key=lambda e: e.name.encode("utf-8"))
    total = gzip_size(tar_size(entries))
    log.info("packaging %s@%s: %d files, %d bytes", model, snapshot.revision, len(files), total)

    def members() -> Iterator[Member]:
        for entry in entries:
            value = files.get(entry.name)
            if isinstance(value, RepoFile):
                yield entry, stream_file(model, snapshot.revision, value, token)
            else:  # a folder, or bytes already in memory
                yield entry, () if value is None else (value,)

    result = publish(
        s3, location, request, snapshot.revision, members(), part_size=part_size_for(total)
    )
    log.info("packaged %s: sha256 %s, %d bytes", location.url, result.sha256, result.size_bytes)
    return result
