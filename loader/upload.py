"""The archive's trip to S3: boto3's transfer manager reads the archive while it is being built.

A failed run leaves no object and no parts; nothing touches disk (docs/loader.md).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterable
from typing import Any

from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.exceptions import BotoCoreError, ClientError

from loader.archive import Buffer
from loader.errors import UploadError

MiB = 1024 * 1024
PART_SIZE = 8 * MiB  # 10,000 parts × 8 MiB ≈ 84 GB: a 50 GB model fits with room to spare
MAX_PARTS = 10_000
MAX_PART_SIZE = 5 * 1024 * MiB
UPLOAD_WORKERS = 4
QUEUE_DEPTH = 2  # parts read ahead of the uploaders: memory ≈ (1 + 2 + 4) × part size
CHECKSUM_ALGORITHM = "CRC32"


def part_size_for(total_size: int | None) -> int:
    """8 MiB parts, grown (in whole MiB) only when the archive would need more than 10,000."""
    if total_size is None or total_size <= PART_SIZE * MAX_PARTS:
        return PART_SIZE
    size = math.ceil(total_size / MAX_PARTS / MiB) * MiB
    if size > MAX_PART_SIZE:
        raise ValueError(f"an archive of {total_size} bytes exceeds S3's 10,000 × 5 GiB limit")
    return size


class _Stopped(Exception):
    """The upload already failed: stop building the archive (the upload's own error is raised)."""


class ArchiveReader:
    """A read()-able view of the archive's chunks; counts and hashes every byte it returns.

    `verify(sha256)` runs before the last byte is handed out, so a mismatch fails the transfer.
    """

    def __init__(self, chunks: Iterable[Buffer], verify: Callable[[str], None]) -> None:
        self._chunks = iter(chunks)
        self._verify = verify
        self._buffer = bytearray()
        self._ended = False
        self._digest = hashlib.sha256()
        self.size = 0
        self.sha256 = ""
        self.stopped: Callable[[], bool] = lambda: False

    def read(self, size: int = -1) -> bytes:
        if self.stopped():
            raise _Stopped
        while not self._ended and (size < 0 or len(self._buffer) < size):
            chunk = next(self._chunks, None)
            if chunk is None:
                self._ended = True
            else:
                self._buffer += chunk
        count = len(self._buffer) if size < 0 else min(size, len(self._buffer))
        with memoryview(self._buffer) as view:
            data = bytes(view[:count])  # one copy, not slice-then-copy
        del self._buffer[:count]
        self._digest.update(data)
        self.size += count
        if self._ended and not self._buffer and not self.sha256:
            self.sha256 = self._digest.hexdigest()
            self._verify(self.sha256)
        return data

    def close(self) -> None:
        """Close the chunk generators (and the HTTP responses they hold) after a failure."""
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


def _step(operation: str) -> str:
    """`UploadPart` → `upload-part`: the S3 call that failed, named as the loader's steps are."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", operation).lower()


def upload_archive(
    s3: Any, bucket: str, key: str, reader: ArchiveReader, *, part_size: int, model: str
) -> str:
    """Upload everything `reader` yields as one multipart object; returns its ETag."""
    config = TransferConfig(
        multipart_threshold=1,  # always multipart: CRC32 per part, one code path at every size
        multipart_chunksize=part_size,
        max_concurrency=UPLOAD_WORKERS,
        preferred_transfer_client="classic",
    )
    # s3transfer's knob (boto3's constructor does not take it): parts held in memory at once.
    config.max_in_memory_upload_chunks = UPLOAD_WORKERS + QUEUE_DEPTH
    extra_args = {"ContentType": "application/gzip", "ChecksumAlgorithm": CHECKSUM_ALGORITHM}
    try:
        with create_transfer_manager(s3, config) as manager:
            future = manager.upload(reader, bucket, key, extra_args=extra_args)
            # The manager keeps reading after a part fails (those parts are then skipped);
            # stopping the reader saves downloading the rest of the model for nothing.
            reader.stopped = future.done
            future.result()
        return s3.head_object(Bucket=bucket, Key=key)["ETag"]
    except (ClientError, BotoCoreError) as error:
        step = _step(getattr(error, "operation_name", None) or "upload")
        raise UploadError(
            f"S3 upload to s3://{bucket}/{key} failed: {error}", step=step, model=model
        ) from error
    finally:
        reader.close()
