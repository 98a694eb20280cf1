"""Reproducible tar + gzip framing, written by hand so no library or zlib build can change a byte.

The tar stream is POSIX ustar with a PAX extended header only when a name is long or non-ASCII, or
a file exceeds ustar's 8 GiB size field: every entry has mtime 0, uid/gid 0, empty user/group
names, mode 0644 (directories 0755). The gzip stream has no timestamp or file name (OS byte 255)
and holds deflate *stored* blocks of exactly 65,535 bytes, whatever the input chunking: weights do
not compress, and stored blocks are the one deflate encoding every implementation agrees on.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

BLOCK_SIZE = 512
END_OF_ARCHIVE = b"\0" * (2 * BLOCK_SIZE)
FILE_MODE = 0o644
DIRECTORY_MODE = 0o755
_USTAR_MAX_SIZE = 8**11 - 1
_PAX_HEADER_NAME = b"././@PaxHeader"

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


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def _ustar_header(name: bytes, size: int, typeflag: bytes, mode: int) -> bytes:
    header = b"".join(
        (
            name[:100].ljust(100, b"\0"),
            _octal(mode, 8),
            _octal(0, 8),  # uid
            _octal(0, 8),  # gid
            _octal(size if size <= _USTAR_MAX_SIZE else 0, 12),
            _octal(0, 12),  # mtime
            b" " * 8,  # checksum placeholder, counted as spaces
            typeflag,
            b"\0" * 100,  # linkname
            b"ustar\x0000",
            b"\0" * 32,  # uname
            b"\0" * 32,  # gname
            b"\0" * 16,  # devmajor, devminor: empty for non-device entries
            b"\0" * 155,  # prefix
        )
    ).ljust(BLOCK_SIZE, b"\0")
    checksum = b"%06o\0 " % sum(header)
    return header[:148] + checksum + header[156:]


def _pax_record(key: str, value: bytes) -> bytes:
    """`"<len> key=value\\n"` where <len> counts the whole record including its own digits."""
    payload = b" " + key.encode("ascii") + b"=" + value + b"\n"
    length = len(payload)
    while len(payload) + len(str(length)) != length:
        length = len(payload) + len(str(length))
    return str(length).encode("ascii") + payload


def tar_padding(size: int) -> bytes:
    """Zero bytes that round a member's data up to a whole 512-byte block."""
    return b"\0" * (-size % BLOCK_SIZE)


def tar_header(entry: TarEntry) -> bytes:
    """Header block(s) for one member, PAX-extended only when ustar cannot hold name or size."""
    name = entry.name + "/" if entry.is_directory else entry.name
    encoded = name.encode("utf-8")
    records = b""
    if len(encoded) > 100 or not name.isascii():
        records += _pax_record("path", encoded)
    if entry.size > _USTAR_MAX_SIZE:
        records += _pax_record("size", str(entry.size).encode("ascii"))
    typeflag, mode = (b"5", DIRECTORY_MODE) if entry.is_directory else (b"0", FILE_MODE)
    header = _ustar_header(encoded if name.isascii() else b"", entry.size, typeflag, mode)
    if not records:
        return header
    pax = _ustar_header(_PAX_HEADER_NAME, len(records), b"x", FILE_MODE)
    return pax + records + tar_padding(len(records)) + header


def tar_size(entries: list[TarEntry]) -> int:
    """Exact byte length of the tar stream for these entries."""
    total = len(END_OF_ARCHIVE)
    for entry in entries:
        total += len(tar_header(entry)) + entry.size + len(tar_padding(entry.size))
    return total


def gzip_size(payload_size: int) -> int:
    """Exact byte length of the stored-block gzip stream for a payload of this size."""
    full, rest = divmod(payload_size, STORED_BLOCK_MAX)
    blocks = full + 1  # the final block holds the remainder (possibly empty)
    return len(GZIP_HEADER) + payload_size + blocks * _STORED_BLOCK_OVERHEAD + _GZIP_TRAILER_SIZE


class StoredGzipWriter:
    """Gzip writer emitting fixed 65,535-byte stored blocks to `sink`, independent of chunking."""

    def __init__(self, sink: Callable[[bytes | memoryview], None]) -> None:
        self._sink = sink
        self._pending = bytearray()
        self._crc = 0
        self._size = 0
        self._closed = False
        sink(GZIP_HEADER)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        self._crc = zlib.crc32(view, self._crc)
        self._size += len(view)
        if self._pending:
            take = STORED_BLOCK_MAX - len(self._pending)
            self._pending += view[:take]
            view = view[take:]
            if len(self._pending) < STORED_BLOCK_MAX:
                return
            self._block(self._pending, final=False)
            self._pending = bytearray()
        while len(view) >= STORED_BLOCK_MAX:
            self._block(view[:STORED_BLOCK_MAX], final=False)
            view = view[STORED_BLOCK_MAX:]
        self._pending += view

    def close(self) -> None:
        """Final (possibly empty) stored block, then CRC-32 and length modulo 2**32."""
        if self._closed:
            return
        self._closed = True
        self._block(self._pending, final=True)
        self._pending = bytearray()
        self._sink(struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))

    def _block(self, data: bytes | bytearray | memoryview, *, final: bool) -> None:
        length = len(data)
        self._sink(struct.pack("<BHH", 1 if final else 0, length, length ^ 0xFFFF))
        self._sink(data)
