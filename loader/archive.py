"""Reproducible tar + gzip framing of a stream of members (pure: it only transforms iterators).

tar: PAX headers with normalised metadata. gzip: written by hand, stored blocks of exactly 65,535
bytes, since zlib's level-0 output depends on its build and buffering (docs/loader.md).
"""

from __future__ import annotations

import struct
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from loader.errors import DownloadError

BLOCK_SIZE = tarfile.BLOCKSIZE
END_OF_ARCHIVE = tarfile.NUL * (2 * BLOCK_SIZE)
FILE_MODE = 0o644
DIRECTORY_MODE = 0o755

GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
STORED_BLOCK_MAX = 65535
_STORED_BLOCK_OVERHEAD = 5
_GZIP_TRAILER_SIZE = 8


@dataclass(frozen=True)
class TarEntry:
    """One member: a directory (size 0) or a regular file of a known size."""

    name: str
    size: int = 0
    is_directory: bool = False


Member = tuple[TarEntry, Iterable[bytes]]
Buffer = bytes | bytearray | memoryview


def tar_header(entry: TarEntry) -> bytes:
    """Header block(s) for one member, PAX-extended only when ustar cannot hold name or size."""
    info = tarfile.TarInfo(entry.name)
    info.size, info.mtime, info.uid, info.gid, info.uname, info.gname = entry.size, 0, 0, 0, "", ""
    if entry.is_directory:
        info.type, info.mode = tarfile.DIRTYPE, DIRECTORY_MODE
    else:
        info.type, info.mode = tarfile.REGTYPE, FILE_MODE
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def tar_padding(size: int) -> bytes:
    """Zero bytes that round a member's data up to a whole 512-byte block."""
    return tarfile.NUL * (-size % BLOCK_SIZE)


def tar_size(entries: list[TarEntry]) -> int:
    """Exact byte length of the tar stream for these entries."""
    total = len(END_OF_ARCHIVE)
    for entry in entries:
        total += len(tar_header(entry)) + entry.size + len(tar_padding(entry.size))
    return total


def gzip_size(payload_size: int) -> int:
    """Exact byte length of the stored-block gzip stream for a payload of this size."""
    blocks = payload_size // STORED_BLOCK_MAX + 1  # the final block holds the rest (maybe none)
    return len(GZIP_HEADER) + payload_size + blocks * _STORED_BLOCK_OVERHEAD + _GZIP_TRAILER_SIZE


def tar_stream(members: Iterable[Member], model: str) -> Iterator[Buffer]:
    """The tar bytes of `members`, in order; each file's size is checked before its padding."""
    for entry, chunks in members:
        yield tar_header(entry)
        written = 0
        for chunk in chunks:
            written += len(chunk)
            if written > entry.size:
                break
            yield chunk
        if written != entry.size:
            raise DownloadError(
                f"got {written} bytes where {entry.size} were announced",
                step="stream-file",
                model=model,
                file=entry.name,
            )
        yield tar_padding(entry.size)
    yield END_OF_ARCHIVE


def _stored_block(data: Buffer, *, final: bool) -> Iterator[Buffer]:
    length = len(data)
    yield struct.pack("<BHH", 1 if final else 0, length, length ^ 0xFFFF)
    yield data  # a view of the caller's chunk: consumers copy it before asking for more


def stored_gzip(data: Iterable[Buffer]) -> Iterator[Buffer]:
    """Gzip of `data` in fixed 65,535-byte stored blocks, independent of how `data` is chunked."""
    yield GZIP_HEADER
    crc = size = 0
    pending = bytearray()
    for chunk in data:
        view = memoryview(chunk).cast("B")
        crc = zlib.crc32(view, crc)
        size += len(view)
        if pending:
            take = STORED_BLOCK_MAX - len(pending)
            pending += view[:take]
            view = view[take:]
            if len(pending) < STORED_BLOCK_MAX:
                continue
            yield from _stored_block(pending, final=False)
            pending = bytearray()
        while len(view) >= STORED_BLOCK_MAX:
            yield from _stored_block(view[:STORED_BLOCK_MAX], final=False)
            view = view[STORED_BLOCK_MAX:]
        pending += view
    yield from _stored_block(pending, final=True)
    yield struct.pack("<II", crc, size & 0xFFFFFFFF)  # CRC-32, then length modulo 2**32
