"""The options the loader does not ship, as patches over it, so the benchmark can measure them.

Each patch swaps one piece of the loader in this tree (see docs/loader.md, "Library or
hand-written: measured"); the hand-written loader as a whole is measured from git history instead.
Applied inside a benchmark child process only.
"""

from __future__ import annotations

import gzip
import hashlib
import queue
import tarfile
import threading
import types
from collections.abc import Callable, Iterable, Iterator

import loader.publish
import loader.upload
from loader.archive import DIRECTORY_MODE, FILE_MODE, Buffer, Member

MiB = 1024 * 1024


def _fixed_chunks(data: Iterable[Buffer], size: int) -> Iterator[bytes]:
    """Re-cut `data` into `size`-byte pieces: zlib then sees the same calls whatever the network."""
    pending = bytearray()
    for chunk in data:
        pending += chunk
        while len(pending) >= size:
            yield bytes(pending[:size])
            del pending[:size]
    yield bytes(pending)


def stdlib_gzip(data: Iterable[Buffer]) -> Iterator[Buffer]:
    """gzip.GzipFile(mtime=0, compresslevel=0) fed 1 MiB writes, in place of the stored writer."""
    out: list[bytes] = []

    class Sink:
        def write(self, chunk: bytes) -> int:
            out.append(bytes(chunk))
            return len(chunk)

        def flush(self) -> None:
            pass

    with gzip.GzipFile(fileobj=Sink(), mode="wb", mtime=0, compresslevel=0) as zipped:
        for piece in _fixed_chunks(data, MiB):
            zipped.write(piece)
            yield from out
            out.clear()
    yield from out


class _ChunkFile:
    """read(n) over an iterator of chunks: what tarfile.addfile copies a member from."""

    def __init__(self, chunks: Iterable[Buffer]) -> None:
        self._chunks = iter(chunks)
        self._buffer = bytearray()

    def read(self, size: int) -> bytes:
        while len(self._buffer) < size and (chunk := next(self._chunks, None)) is not None:
            self._buffer += chunk
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data


def tarfile_stream(members: Iterable[Member], model: str) -> Iterator[Buffer]:
    """tarfile.open(mode="w|") writing every member (headers, data, end padding to 10 KiB).

    tarfile pushes a whole member into its file object before addfile() returns, and the upload
    pulls, so the writer runs on its own thread behind a bounded queue.
    """
    pipe: queue.Queue[Buffer | BaseException | None] = queue.Queue(maxsize=8)

    class Sink:
        def write(self, chunk: bytes) -> int:
            pipe.put(chunk)
            return len(chunk)

    def write() -> None:
        try:
            with tarfile.open(
                fileobj=Sink(), mode="w|", format=tarfile.PAX_FORMAT, encoding="utf-8", bufsize=MiB
            ) as tar:
                tar.copybufsize = MiB
                for entry, chunks in members:
                    info = tarfile.TarInfo(entry.name)
                    info.size, info.mtime, info.uid, info.gid = entry.size, 0, 0, 0
                    info.uname = info.gname = ""
                    info.mode = DIRECTORY_MODE if entry.is_directory else FILE_MODE
                    info.type = tarfile.DIRTYPE if entry.is_directory else tarfile.REGTYPE
                    tar.addfile(info, None if entry.is_directory else _ChunkFile(chunks))
            pipe.put(None)
        except BaseException as error:  # handed to the reader's thread
            pipe.put(error)

    threading.Thread(target=write, name="tarfile-writer", daemon=True).start()
    while (item := pipe.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        yield item


class ThreadedSha256:
    """hashlib.sha256 look-alike hashing on its own thread (hashlib releases the GIL), as the
    hand-written loader did; `hexdigest()` waits for every queued part."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._parts: queue.Queue[bytes | None] = queue.Queue(maxsize=2)
        self._thread = threading.Thread(target=self._run, name="archive-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (part := self._parts.get()) is not None:
            self._digest.update(part)

    def update(self, data: bytes) -> None:
        self._parts.put(data)

    def hexdigest(self) -> str:
        self._parts.put(None)
        self._thread.join()
        return self._digest.hexdigest()


PATCHES: dict[str, Callable[[], None]] = {
    "stdlib-gzip": lambda: setattr(loader.publish, "stored_gzip", stdlib_gzip),
    "tarfile-stream": lambda: setattr(loader.publish, "tar_stream", tarfile_stream),
    "sha256-thread": lambda: setattr(
        loader.upload, "hashlib", types.SimpleNamespace(sha256=ThreadedSha256)
    ),
}
