"""Where artifacts live in the bucket (pure)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

ARCHIVE_NAME = "model.tar.gz"
MANIFEST_NAME = "manifest.json"
_S3_URL = re.compile(r"^s3://(?P<bucket>[^/]+)/(?P<key>.+)$")


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
    bucket: str, key_prefix: str, model_id: str, revision: str
) -> ArtifactLocation:
    """`{key_prefix}{model_id}/{revision}/model.tar.gz` in `bucket`."""
    return ArtifactLocation(bucket, f"{key_prefix}{model_id}/{revision}/{ARCHIVE_NAME}")


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/key` → (bucket, key); ValueError naming the url otherwise."""
    match = _S3_URL.match(url)
    if not match:
        raise ValueError(f"{url!r} is not an s3://bucket/key URL")
    return match["bucket"], match["key"]


def source_revision(url: str, etag: str, version_id: str | None) -> str:
    """40-hex id of one version of a source archive (its URL, ETag and VersionId).

    A new training output at the same URL gets a new ETag, hence a new key; the same object always
    maps to the same key, like a Hub commit sha does.
    """
    identity = f"{url}\n{etag.strip(chr(34))}\n{version_id or ''}"
    return hashlib.sha1(identity.encode()).hexdigest()
