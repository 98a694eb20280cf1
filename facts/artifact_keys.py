"""Where artifacts live in the artifact bucket: written by the loader, read by everyone else.

`{key_prefix}{org}/{name}/{40-hex revision}/[{variant}/]{format version}/model.tar.gz`, a
`manifest.json` beside it; the variant and format version keep a live Model's bytes from ever
being rewritten (docs/packager.md).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

ARCHIVE_NAME = "model.tar.gz"
MANIFEST_NAME = "manifest.json"
_ARCHIVE_KEY = re.compile(
    r"(?:^|/)(?P<model>[^/]+/[^/]+)/[0-9a-f]{40}/(?:onnx(?:-[A-Za-z0-9_.-]+)?-py\d+/)?"
    r"(?:\d+-[0-9a-f]{16}/)?model\.tar\.gz$"
)


@dataclass(frozen=True)
class ArtifactLocation:
    """The archive key and the manifest key beside it."""

    bucket: str
    key: str

    @property
    def manifest_key(self) -> str:
        return self.key.rsplit("/", 1)[0] + "/" + MANIFEST_NAME

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def artifact_location(
    bucket: str,
    key_prefix: str,
    model_id: str,
    revision: str,
    format_version: str,
    variant: str | None = None,
) -> ArtifactLocation:
    """`{key_prefix}{model_id}/{revision}/[{variant}/]{format_version}/model.tar.gz` in `bucket`."""
    folder = f"{key_prefix}{model_id}/{revision}/" + (f"{variant}/" if variant else "")
    return ArtifactLocation(bucket, f"{folder}{format_version}/{ARCHIVE_NAME}")


def source_revision(url: str, etag: str, version_id: str | None) -> str:
    """40-hex id of one version of a source archive (its URL, ETag and VersionId): the same
    object always maps to the same key, like a Hub commit sha.
    """
    identity = f"{url}\n{etag.strip(chr(34))}\n{version_id or ''}"
    return hashlib.sha1(identity.encode()).hexdigest()


def model_id_from_key(key_or_url: str) -> str | None:
    """`org/name` when a key (or URL) follows the layout above, else None."""
    match = _ARCHIVE_KEY.search(key_or_url)
    return match.group("model") if match else None
