"""The artifact record in the bucket: the manifest, the idempotence check and deletion."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from facts.artifact_keys import ArtifactLocation
from facts.identifiers import parse_s3_url
from facts.loader_contract import LoaderResult
from loader.errors import ChecksumMismatch, UploadError

_MISSING = ("404", "NoSuchKey", "NotFound", "NoSuchBucket")


def _is_missing(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code")) in _MISSING


def write_manifest(s3: Any, location: ArtifactLocation, result: LoaderResult, etag: str) -> None:
    """Record what was built beside the archive; written only after the archive is complete."""
    document = {**result.as_dict(), "etag": etag}
    s3.put_object(
        Bucket=location.bucket,
        Key=location.manifest_key,
        Body=json.dumps(document, indent=2, sort_keys=True).encode(),
        ContentType="application/json",
    )


def find_existing(s3: Any, location: ArtifactLocation, format_version: str) -> LoaderResult | None:
    """The recorded result when the archive at the key is the one the manifest describes: the
    current format version, and the ETag and size recorded (else it is rebuilt, not trusted).
    """
    try:
        raw = s3.get_object(Bucket=location.bucket, Key=location.manifest_key)["Body"].read()
        head = s3.head_object(Bucket=location.bucket, Key=location.key)
    except ClientError as error:
        if _is_missing(error):
            return None
        raise
    try:
        manifest = json.loads(raw)
        result = LoaderResult.from_dict(manifest)
        etag = manifest["etag"]
    except (ValueError, KeyError, TypeError):
        return None
    if (
        result.format_version != format_version
        or result.model_data_url != location.url
        or head.get("ETag") != etag
        or head.get("ContentLength") != result.size_bytes
    ):
        return None
    return result


def lookup_existing(
    s3: Any, location: ArtifactLocation, version: str, model: str, expected_sha256: str | None
) -> LoaderResult | None:
    """The recorded artifact when it is already there (checked against `expected_sha256`)."""
    try:
        existing = find_existing(s3, location, version)
    except ClientError as error:
        raise UploadError(
            f"cannot read s3://{location.bucket}/{location.manifest_key}: {error}",
            step="check-existing",
            model=model,
        ) from error
    if existing and expected_sha256 and existing.sha256 != expected_sha256:
        raise ChecksumMismatch(
            f"the artifact at {location.url} has sha256 {existing.sha256}, "
            f"expected {expected_sha256}",
            step="verify-sha256",
            model=model,
        )
    return existing


def recorded_sha256(s3: Any, location: ArtifactLocation) -> str | None:
    """The sha256 the manifest beside `location` records; None without a readable manifest."""
    try:
        raw = s3.get_object(Bucket=location.bucket, Key=location.manifest_key)["Body"].read()
    except ClientError as error:
        if _is_missing(error):
            return None
        raise
    try:
        recorded = json.loads(raw).get("sha256")
    except (ValueError, AttributeError):
        return None
    return recorded if isinstance(recorded, str) else None


def delete_artifact(s3: Any, model_data_url: str, only_if_sha256: str | None = None) -> bool:
    """Delete an archive and its manifest; False when there was nothing (of that sha256) to delete.

    `only_if_sha256`: a replacement that rebuilt the same key is not removed by its predecessor's
    delete.
    """
    bucket, key = parse_s3_url(model_data_url)
    location = ArtifactLocation(bucket, key)
    if only_if_sha256 is not None and recorded_sha256(s3, location) != only_if_sha256:
        return False
    existed = True
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if not _is_missing(error):
            raise
        existed = False
    try:
        s3.delete_object(Bucket=bucket, Key=key)
        s3.delete_object(Bucket=bucket, Key=location.manifest_key)
    except ClientError as error:
        if not _is_missing(error):
            raise
        return False
    return existed
