"""HTTP framing for the local endpoint: a request body in, and a close the client can read past.

`http.server` parses the request line and headers but leaves the body to the handler. A body is
framed by exactly one non-negative `Content-Length` or by `Transfer-Encoding: chunked` (what curl
sends for stdin), never both (RFC 9112 §6.3). The socket's timeout bounds every read, so a client
that promises more than it sends gets a 408 instead of holding a thread forever.

A connection closed while the client's bytes are still unread makes the kernel send a reset,
which can destroy the answer before the client reads it; the server therefore closes lingering
(RFC 9112 §9.6): it stops writing, reads what is left for a bounded time, then closes.
"""

from __future__ import annotations

import socket
import time
from email.message import Message
from http.server import ThreadingHTTPServer
from typing import Any, BinaryIO

# A chunk-size line is a hex number and optional extensions; anything longer is not a chunk.
MAX_CHUNK_LINE = 1024
MAX_TRAILER_LINES = 64
# An oversized body up to this size is read and dropped before the 413, so that the client, still
# sending, reads the answer instead of a reset; a larger one is answered at once.
MAX_DISCARDED_BYTES = 64 * 1024 * 1024
# A burst of new connections waits in the listen queue (the kernel caps it at somaxconn).
LISTEN_BACKLOG = 1024
# How long a closing connection is read from, at most, before it is closed anyway.
LINGER_SECONDS = 2.0


class BodyError(Exception):
    """The body cannot be read as sent; `status` is the answer. The connection is then closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _too_large(size: int, max_bytes: int) -> BodyError:
    limit = f"{max_bytes / 1_000_000:g} MB"
    return BodyError(413, f"request body is {size} bytes; SageMaker Serverless accepts {limit}")


def _exact(rfile: BinaryIO, size: int, what: str) -> bytes:
    data = rfile.read(size)
    if len(data) < size:
        raise BodyError(400, f"{what} ended after {len(data)} of {size} bytes")
    return data


def _content_length(values: list[str], rfile: BinaryIO, max_bytes: int) -> bytes:
    if len(values) > 1:
        raise BodyError(400, f"Content-Length is given {len(values)} times; send it once")
    text = values[0].strip()
    if not (text.isascii() and text.isdigit()):
        raise BodyError(400, f"Content-Length must be a whole number of bytes, got {text!r}")
    length = int(text)
    if length > max_bytes:
        if length <= MAX_DISCARDED_BYTES:
            while length > 0 and (chunk := rfile.read(min(length, 1 << 16))):
                length -= len(chunk)
        raise _too_large(int(text), max_bytes)
    return _exact(rfile, length, "the body")


def _chunk_size(rfile: BinaryIO) -> int:
    line = rfile.readline(MAX_CHUNK_LINE + 1)
    if not line.endswith(b"\n"):
        raise BodyError(400, "the chunked body ended inside a chunk-size line")
    size = line.split(b";", 1)[0].strip()
    if not size or size.strip(b"0123456789abcdefABCDEF"):
        raise BodyError(400, "Transfer-Encoding is chunked but a chunk size is not hex")
    return int(size, 16)


def _chunked(rfile: BinaryIO, max_bytes: int) -> bytes:
    body = bytearray()
    while True:
        size = _chunk_size(rfile)
        if size == 0:
            break
        if len(body) + size > max_bytes:
            raise _too_large(len(body) + size, max_bytes)
        body += _exact(rfile, size, "a chunk")
        if rfile.readline(3) not in (b"\r\n", b"\n"):
            raise BodyError(400, "a chunk is longer than its size")
    for _ in range(MAX_TRAILER_LINES):  # trailer fields, then the empty line
        if rfile.readline(MAX_CHUNK_LINE) in (b"\r\n", b"\n", b""):
            return bytes(body)
    raise BodyError(400, f"more than {MAX_TRAILER_LINES} trailer lines")


def read_body(headers: Message, rfile: BinaryIO, max_bytes: int, timeout: float) -> bytes:
    """The body the headers frame, or BodyError naming the header and what is allowed."""
    lengths = headers.get_all("Content-Length") or []
    encodings = headers.get_all("Transfer-Encoding") or []
    try:
        if encodings:
            if lengths:
                raise BodyError(400, "send Content-Length or Transfer-Encoding, not both")
            coding = ",".join(encodings).strip().lower()
            if coding != "chunked":
                message = f"Transfer-Encoding {coding!r} is not supported; allowed: chunked"
                raise BodyError(501, message)
            return _chunked(rfile, max_bytes)
        return _content_length(lengths, rfile, max_bytes) if lengths else b""
    except TimeoutError:  # the socket timeout
        raise BodyError(408, f"the request body did not arrive within {timeout:g} s") from None


class LingeringServer(ThreadingHTTPServer):
    """A thread per connection, a deep listen queue, and lingering closes."""

    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True

    def shutdown_request(self, request: Any) -> None:
        deadline = time.monotonic() + LINGER_SECONDS
        try:
            request.shutdown(socket.SHUT_WR)  # the answer is complete: the client reads EOF
            while (left := deadline - time.monotonic()) > 0:
                request.settimeout(left)
                if not request.recv(1 << 16):
                    break
        except OSError:
            pass  # the client is gone, or took longer than the linger: close anyway
        self.close_request(request)
