"""A bounded, concurrent S3 multipart upload fed by `write()` calls.

The producer (HTTP → tar → gzip → sha256) appends bytes; every `part_size` bytes become one part,
queued (bounded) for a small pool of uploader threads, so downloading overlaps uploading and memory
stays at most (1 + queue_depth + workers) × part_size whatever the model size. Nothing touches disk.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loader.errors import UploadError

log = logging.getLogger(__name__)

MiB = 1024 * 1024
PART_SIZE = 8 * MiB  # 10,000 parts × 8 MiB ≈ 84 GB: a 50 GB model fits with room to spare
MAX_PARTS = 10_000
MAX_PART_SIZE = 5 * 1024 * MiB
UPLOAD_WORKERS = 4
QUEUE_DEPTH = 2
CHECKSUM_ALGORITHM = "CRC32"


def part_size_for(total_size: int | None) -> int:
    """8 MiB parts, grown (in whole MiB) only when the archive would need more than 10,000."""
    if total_size is None or total_size <= PART_SIZE * MAX_PARTS:
        return PART_SIZE
    size = math.ceil(total_size / MAX_PARTS / MiB) * MiB
    if size > MAX_PART_SIZE:
        raise ValueError(f"an archive of {total_size} bytes exceeds S3's 10,000 × 5 GiB limit")
    return size


@dataclass
class _Failure:
    error: BaseException | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class MultipartUpload:
    """Use as a context manager: completes nothing by itself; aborts on any exception inside."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        key: str,
        *,
        model: str,
        part_size: int = PART_SIZE,
        workers: int = UPLOAD_WORKERS,
        queue_depth: int = QUEUE_DEPTH,
        on_part: Callable[[bytes], None] | None = None,
    ) -> None:
        self._s3, self.bucket, self.key, self._model = s3, bucket, key, model
        self.part_size = part_size
        self._on_part = on_part  # sees every part, in order, before it is queued
        self._flushed = False
        self._workers = workers
        self._queue: queue.Queue[tuple[int, bytes] | None] = queue.Queue(maxsize=queue_depth)
        self._buffer = bytearray()
        self._next_part = 1
        self._parts: dict[int, dict[str, Any]] = {}
        self._failure = _Failure()
        self._threads: list[threading.Thread] = []
        self.upload_id: str | None = None
        self.completed = False

    # --- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> MultipartUpload:
        try:
            # CRC32 per part, as boto3's transfer manager does: every part is checked end to end,
            # and S3 keeps a cheap composite checksum instead of a full-object one.
            created = self._s3.create_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                ContentType="application/gzip",
                ChecksumAlgorithm=CHECKSUM_ALGORITHM,
            )
        except Exception as error:
            raise self._error("create-multipart-upload", error) from error
        self.upload_id = created["UploadId"]
        for index in range(self._workers):
            thread = threading.Thread(target=self._upload_parts, name=f"part-uploader-{index}")
            thread.daemon = True
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if not self.completed:
            self.abort()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._buffer += data
        while len(self._buffer) >= self.part_size:
            with memoryview(self._buffer) as view:
                part = bytes(view[: self.part_size])  # one copy, not slice-then-copy
            del self._buffer[: self.part_size]
            self._enqueue(part)

    def flush(self) -> None:
        """Queue the last (short) part; after this, `on_part` has seen every byte."""
        if self._flushed:
            return
        self._flushed = True
        if self._buffer or self._next_part == 1:
            self._enqueue(bytes(self._buffer))
            self._buffer = bytearray()

    def complete(self) -> str:
        """Upload the last part, wait for all, then CompleteMultipartUpload; returns the ETag."""
        self.flush()
        self._stop_workers()
        self._raise_if_failed()
        parts = [self._parts[number] for number in sorted(self._parts)]
        try:
            done = self._s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": parts},
            )
        except Exception as error:
            raise self._error("complete-multipart-upload", error) from error
        self.completed = True
        return done["ETag"]

    def abort(self) -> None:
        """Stop the uploaders and abort the upload so S3 keeps no parts and no object."""
        with self._failure.lock:
            if self._failure.error is None:
                self._failure.error = RuntimeError("aborted")
        self._stop_workers()
        if self.upload_id is None:
            return
        upload_id, self.upload_id = self.upload_id, None
        try:
            self._s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload_id)
        except Exception:  # never mask the error that made us abort
            log.exception(
                "could not abort multipart upload %s of s3://%s/%s",
                upload_id,
                self.bucket,
                self.key,
            )

    # --- internals ---------------------------------------------------------------------------

    def _enqueue(self, part: bytes) -> None:
        if self._next_part > MAX_PARTS:
            raise UploadError(
                f"the archive needs more than {MAX_PARTS} parts of {self.part_size} bytes",
                step="upload-part",
                model=self._model,
            )
        item = (self._next_part, part)
        self._next_part += 1
        if self._on_part is not None:
            self._on_part(part)
        while True:
            self._raise_if_failed()
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def _upload_parts(self) -> None:
        while (item := self._queue.get()) is not None:
            number, body = item
            if self._failure.error is not None:
                continue  # drain so the producer never blocks on a dead pool
            try:
                answer = self._s3.upload_part(
                    Bucket=self.bucket,
                    Key=self.key,
                    UploadId=self.upload_id,
                    PartNumber=number,
                    Body=body,
                    ChecksumAlgorithm=CHECKSUM_ALGORITHM,
                )
                # With a checksum algorithm, S3 requires each part's checksum at completion.
                self._parts[number] = {
                    "PartNumber": number,
                    "ETag": answer["ETag"],
                    "ChecksumCRC32": answer["ChecksumCRC32"],
                }
            except Exception as error:  # surfaced to the producer by _raise_if_failed
                with self._failure.lock:
                    if self._failure.error is None:
                        self._failure.error = self._error(f"upload-part {number}", error)

    def _stop_workers(self) -> None:
        threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            thread.join()

    def _raise_if_failed(self) -> None:
        error = self._failure.error
        if error is not None:
            raise error

    def _error(self, step: str, error: Exception) -> UploadError:
        return UploadError(
            f"S3 upload to s3://{self.bucket}/{self.key} failed: {error}",
            step=step,
            model=self._model,
        )
