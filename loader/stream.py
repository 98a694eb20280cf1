"""The streaming pipeline: tar entries → stored-block gzip → multipart upload (+ sha256 aside)."""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from loader.archive import END_OF_ARCHIVE, StoredGzipWriter, TarEntry, tar_header, tar_padding
from loader.errors import DownloadError
from loader.multipart import MultipartUpload


class BackgroundSha256:
    """sha256 of the parts, on its own thread: hashlib releases the GIL, so hashing overlaps
    the producer's download and framing instead of adding to it."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._parts: queue.Queue[bytes | None] = queue.Queue(maxsize=2)
        self._thread = threading.Thread(target=self._run, name="archive-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (part := self._parts.get()) is not None:
            self._digest.update(part)

    def feed(self, part: bytes) -> None:
        self._parts.put(part)

    def hexdigest(self) -> str:
        """Wait for every fed part, then the digest. Also ends the thread (call it once)."""
        self._parts.put(None)
        self._thread.join()
        return self._digest.hexdigest()


class ArchiveStream:
    """Writes members one after another; `finish()` returns the archive's sha256 hex.

    Built by `archive_upload`, which wires the hasher to the upload's parts.
    """

    def __init__(self, upload: MultipartUpload, hasher: BackgroundSha256, model: str) -> None:
        self._upload = upload
        self._hasher = hasher
        self._model = model
        self.size = 0
        self.files: list[str] = []
        self._finished = False
        self._gzip = StoredGzipWriter(self._emit)

    def _emit(self, data: bytes | bytearray | memoryview) -> None:
        self.size += len(data)
        self._upload.write(data)

    def add_directory(self, name: str) -> None:
        self._gzip.write(tar_header(TarEntry(name, 0, is_directory=True)))

    def add_file(self, name: str, size: int, chunks: Iterable[bytes]) -> None:
        """Header, then the chunks as they arrive; the size is checked before the padding."""
        self._gzip.write(tar_header(TarEntry(name, size)))
        written = 0
        for chunk in chunks:
            written += len(chunk)
            if written > size:
                break
            self._gzip.write(chunk)
        if written != size:
            raise DownloadError(
                f"got {written} bytes where {size} were announced",
                step="stream-file",
                model=self._model,
                file=name,
            )
        self._gzip.write(tar_padding(size))
        self.files.append(name)

    def finish(self) -> str:
        """End the archive, queue its last part and return the sha256 of every byte uploaded."""
        self._gzip.write(END_OF_ARCHIVE)
        self._gzip.close()
        self._upload.flush()
        self._finished = True
        return self._hasher.hexdigest()

    def close(self) -> None:
        """Stop the hashing thread when the archive was abandoned part-way."""
        if not self._finished:
            self._finished = True
            self._hasher.hexdigest()


@contextmanager
def archive_upload(
    s3: Any, bucket: str, key: str, *, model: str, part_size: int
) -> Iterator[tuple[MultipartUpload, ArchiveStream]]:
    """A multipart upload and the archive writer feeding it; aborts and stops threads on error."""
    hasher = BackgroundSha256()
    stream: ArchiveStream | None = None
    try:
        with MultipartUpload(
            s3, bucket, key, model=model, part_size=part_size, on_part=hasher.feed
        ) as upload:
            stream = ArchiveStream(upload, hasher, model)
            yield upload, stream
    finally:
        if stream is not None:
            stream.close()
        else:
            hasher.hexdigest()
