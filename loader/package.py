"""Packaging a Hub model at a pinned commit into a reproducible archive in S3."""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from facts.artifact_keys import ArtifactLocation, artifact_location
from facts.onnx_runtime import RuntimeWheel
from loader.archive import TarEntry, gzip_size, tar_size
from loader.artifacts import LoaderResult, find_existing, write_manifest
from loader.errors import (
    ChecksumMismatch,
    GatedRepoAccessDenied,
    LoaderError,
    UploadError,
)
from loader.event import LoaderRequest
from loader.hub import fetch_snapshot, stream_file
from loader.modules import MAX_MODULES_BYTES, MODULES_FILE, UnsupportedModules, check_modules
from loader.multipart import MultipartUpload, part_size_for
from loader.selection import NoWeightsError, RepoFile, is_weights, select_files
from loader.stream import ArchiveStream, archive_upload
from loader.version import container_code, format_version

log = logging.getLogger(__name__)


def code_files(runtime: RuntimeWheel | None = None) -> dict[str, bytes]:
    """Everything the archive ships under `code/` (see loader/version.py)."""
    return container_code(runtime)


def parent_directories(paths: list[str]) -> list[str]:
    """Every folder that holds one of `paths` (tar entries of their own, for strict extractors)."""
    folders = set()
    for path in paths:
        parts = path.split("/")[:-1]
        folders.update("/".join(parts[: depth + 1]) for depth in range(len(parts)))
    return sorted(folders)


def lookup_existing(
    s3: Any, location: ArtifactLocation, version: str, request: LoaderRequest
) -> LoaderResult | None:
    """The recorded artifact when it is already there (checked against `expected_sha256`)."""
    try:
        existing = find_existing(s3, location, version)
    except ClientError as error:
        raise UploadError(
            f"cannot read s3://{location.bucket}/{location.manifest_key}: {error}",
            step="check-existing",
            model=request.model_id,
        ) from error
    if existing and request.expected_sha256 and existing.sha256 != request.expected_sha256:
        raise ChecksumMismatch(
            f"the artifact at {location.url} has sha256 {existing.sha256}, "
            f"expected {request.expected_sha256}",
            step="verify-sha256",
            model=request.model_id,
        )
    return existing


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


def finish_upload(
    s3: Any,
    upload: MultipartUpload,
    stream: ArchiveStream,
    location: ArtifactLocation,
    request: LoaderRequest,
    result_fields: dict[str, Any],
) -> LoaderResult:
    """Verify, complete the upload, record the manifest; any failure leaves no object behind."""
    sha256 = stream.finish()
    if request.expected_sha256 and sha256 != request.expected_sha256:
        raise ChecksumMismatch(
            f"built archive has sha256 {sha256}, expected {request.expected_sha256}; "
            "the upload was aborted",
            step="verify-sha256",
            model=request.model_id,
        )
    etag = upload.complete()
    result = LoaderResult(
        model_data_url=location.url,
        sha256=sha256,
        size_bytes=stream.size,
        files=tuple(stream.files),
        format_version=format_version(request.runtime),
        **result_fields,
    )
    try:
        write_manifest(s3, location, result, etag)
    except Exception as error:
        s3.delete_object(Bucket=location.bucket, Key=location.key)
        raise UploadError(
            f"could not write the manifest, removed the archive: {error}",
            step="write-manifest",
            model=request.model_id,
        ) from error
    return result


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
        selected = select_files(model, snapshot.files, request.engine)
    except NoWeightsError as error:
        raise LoaderError(str(error), step="select-files", model=model) from error
    location = artifact_location(
        request.bucket, request.key_prefix, model, snapshot.revision, request.artifact_variant
    )
    existing = lookup_existing(s3, location, version, request)
    if existing is not None:
        log.info("artifact already present, nothing to do: %s", location.url)
        return existing

    modules = checked_modules_file(model, snapshot.revision, selected, token)
    code = code_files(request.runtime)
    files: dict[str, RepoFile | bytes] = {item.path: item for item in selected}
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

    with archive_upload(
        s3, location.bucket, location.key, model=model, part_size=part_size_for(total)
    ) as (upload, stream):
        for entry in entries:
            if entry.is_directory:
                stream.add_directory(entry.name)
                continue
            value = files[entry.name]
            chunks = (
                stream_file(model, snapshot.revision, value, token)
                if isinstance(value, RepoFile)
                else [value]
            )
            stream.add_file(entry.name, entry.size, chunks)
        weights = sum(item.size for item in selected if is_weights(item.path))
        result = finish_upload(
            s3,
            upload,
            stream,
            location,
            request,
            {"revision": snapshot.revision, "weights_bytes": weights},
        )
    log.info("packaged %s: sha256 %s, %d bytes", location.url, result.sha256, result.size_bytes)
    return result
