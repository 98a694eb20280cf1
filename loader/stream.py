"""The streaming pipeline: tar entries → stored-block gzip → sha256 → multipart upload."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from loader.archive import END_OF_ARCHIVE, StoredGzipWriter, TarEntry, tar_header, tar_padding
from loader.errors import DownloadError
from loader.multipart import MultipartUpload


class ArchiveStream:
    """Writes members one after another; `finish()` returns the archive's sha256 hex."""

    def __init__(self, upload: MultipartUpload, model: str) -> None:
        self._upload = upload
        self._model = model
        self._sha256 = hashlib.sha256()
        self.size = 0
        self.files: list[str] = []
        self._gzip = StoredGzipWriter(self._emit)

    def _emit(self, data: bytes | bytearray | memoryview) -> None:
        self._sha256.update(data)
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
        self._gzip.write(END_OF_ARCHIVE)
        self._gzip.close()
        return self._sha256.hexdigest()
