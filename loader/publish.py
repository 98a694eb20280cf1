"""The steps every source ends with: frame the members, upload, verify, record the manifest.

`loader/package.py` (a Hub repo) and `loader/source.py` (an archive already in S3) each decide
which members go into the archive, in which order; both hand them to `publish`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from facts.artifact_keys import ArtifactLocation
from facts.loader_contract import LoaderRequest, LoaderResult
from loader.archive import Member, TarEntry, stored_gzip, tar_stream
from loader.artifacts import recorded_sha256, write_manifest
from loader.errors import ChecksumMismatch, UploadError
from loader.selection import is_weights
from loader.upload import ArchiveReader, upload_archive
from loader.version import format_version


def publish(
    s3: Any,
    location: ArtifactLocation,
    request: LoaderRequest,
    revision: str,
    members: Iterable[Member],
    part_size: int,
    quantization_report: dict[str, Any] | None = None,
) -> LoaderResult:
    """Stream `members` into the archive at `location` and record it; a failure leaves nothing."""
    model = request.model_id
    files: list[TarEntry] = []
    # A key, once recorded, keeps its bytes: a Model may name it (facts/artifact_keys.py).
    recorded = recorded_sha256(s3, location)

    def listed(members: Iterable[Member]) -> Iterator[Member]:
        for entry, chunks in members:
            if not entry.is_directory:
                files.append(entry)
            yield entry, chunks

    def verify(sha256: str) -> None:
        if request.expected_sha256 and sha256 != request.expected_sha256:
            raise ChecksumMismatch(
                f"built archive has sha256 {sha256}, expected {request.expected_sha256}; "
                "the upload was aborted",
                step="verify-sha256",
                model=model,
            )
        if recorded and sha256 != recorded:
            raise ChecksumMismatch(
                f"{location.url} already records sha256 {recorded}, and this build gives "
                f"{sha256}: an archive key is never rewritten with other bytes (a Model may "
                "serve it); the upload was aborted. Delete that archive and its manifest by "
                "hand if no Model uses it",
                step="verify-immutable-key",
                model=model,
            )

    reader = ArchiveReader(stored_gzip(tar_stream(listed(members), model)), verify)
    etag = upload_archive(
        s3, location.bucket, location.key, reader, part_size=part_size, model=model
    )
    result = LoaderResult(
        model_data_url=location.url,
        revision=revision,
        sha256=reader.sha256,
        size_bytes=reader.size,
        weights_bytes=sum(entry.size for entry in files if is_weights(entry.name)),
        files=tuple(entry.name for entry in files),
        format_version=format_version(
            request.runtime, request.onnx_fusion, request.onnx_quantization
        ),
        quantization_report=quantization_report,
    )
    try:
        write_manifest(s3, location, result, etag)
    except Exception as error:
        s3.delete_object(Bucket=location.bucket, Key=location.key)
        raise UploadError(
            f"could not write the manifest, removed the archive: {error}",
            step="write-manifest",
            model=model,
        ) from error
    return result
