"""Requests and answers of an embedding target, pure: texts into request bodies under the
target's limits, answers back into one result; and the base of every endpoint serving this
project's container, which states its own limits in answer to an info request.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from embedding_client.backend import (
    DEFAULT_OPTIONS,
    EmbeddingResult,
    EndpointError,
    InputTooLargeError,
    ResponseFormatError,
)
from facts.embedding_api import EmbeddingOptions, ResponseError, read_response
from facts.serverless import MAX_PAYLOAD_BYTES as SAGEMAKER_MAX_BODY_BYTES

# Texts per request when the endpoint states no limit (an older artifact without info requests).
DEFAULT_BATCH_SIZE = 32
# At most this many texts per request even when the endpoint takes more: each request must also
# finish within SageMaker's 60 s invocation timeout on a few vCPUs.
MAX_AUTO_BATCH_SIZE = 256
INFO_REQUEST = b'{"info":true}'


def request_body(texts: Sequence[str], options: EmbeddingOptions = DEFAULT_OPTIONS) -> bytes:
    """The native request: `{"inputs": [...], "parameters": {...}}` (only options that are set)."""
    document: dict[str, Any] = {"inputs": list(texts)}
    parameters = options.as_parameters()
    if parameters:
        document["parameters"] = parameters
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def encoded_size(text: str) -> int:
    """Bytes a text adds to a request body: its JSON string and a comma."""
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8")) + 1


def plan_batches(
    texts: Sequence[str],
    *,
    max_texts: int,
    max_body_bytes: int,
    options: EmbeddingOptions = DEFAULT_OPTIONS,
) -> list[list[str]]:
    """Consecutive groups of texts whose request bodies fit `max_body_bytes` and `max_texts`."""
    if max_texts < 1:
        raise ValueError(f"max_texts must be at least 1, got {max_texts}")
    envelope = len(request_body([], options))
    batches: list[list[str]] = []
    current: list[str] = []
    size = envelope
    for index, text in enumerate(texts):
        encoded = encoded_size(text)
        if envelope + encoded > max_body_bytes:
            raise InputTooLargeError(
                f"text {index} is {len(text.encode('utf-8'))} bytes; one request to this target "
                f"holds at most {max_body_bytes} bytes: split the text"
            )
        if current and (len(current) >= max_texts or size + encoded > max_body_bytes):
            batches.append(current)
            current, size = [], envelope
        current.append(text)
        size += encoded
    if current:
        batches.append(current)
    return batches


def parse_embeddings(raw: bytes | str, expected: int, target: str) -> EmbeddingResult:
    """Check and decode a native or OpenAI response (float or base64) for `expected` texts."""
    try:
        document = json.loads(raw)
    except ValueError as error:
        raise ResponseFormatError(
            f"{target} answered with a body that is not JSON: {error}"
        ) from None
    try:
        return read_response(document, expected)
    except ResponseError as error:
        raise ResponseFormatError(f"{target}: {error}") from None


def merge_results(parts: Sequence[EmbeddingResult], target: str) -> EmbeddingResult:
    """One result from the results of consecutive batches."""
    dimensions = {part.dimensions for part in parts}
    if len(dimensions) != 1:
        raise ResponseFormatError(f"{target} returned different dimensions across batches")
    tokens = [part.prompt_tokens for part in parts]
    return EmbeddingResult(
        vectors=[vector for part in parts for vector in part.vectors],
        dimensions=parts[0].dimensions,
        model=parts[0].model,
        prompt_tokens=None if None in tokens else sum(tokens),  # type: ignore[arg-type]
    )


def embed_in_batches(
    texts: Sequence[str],
    options: EmbeddingOptions,
    *,
    max_texts: int,
    max_body_bytes: int,
    send: Callable[[bytes], bytes],
    target: str,
) -> EmbeddingResult:
    """Send the texts in planned batches through `send(body) -> answer`; one merged result."""
    check_texts(texts)
    parts = [
        parse_embeddings(send(request_body(batch, options)), len(batch), target)
        for batch in plan_batches(
            texts, max_texts=max_texts, max_body_bytes=max_body_bytes, options=options
        )
    ]
    return merge_results(parts, target)


def endpoint_batch_size(info: Mapping[str, Any] | None, options: EmbeddingOptions) -> int:
    """Texts per request: what the endpoint states (capped), else 32."""
    limits = (info or {}).get("max_texts_per_request") or {}
    stated = limits.get(options.encoding_format)
    if isinstance(stated, int) and stated > 0:
        return min(stated, MAX_AUTO_BATCH_SIZE)
    return DEFAULT_BATCH_SIZE


def cached_info(cache: dict[str, Any], send: Callable[[bytes], bytes]) -> dict[str, Any] | None:
    """The endpoint's info, asked once per backend (None when it refuses the request as unknown)."""
    if "answer" not in cache:
        try:
            cache["answer"] = read_info(send(INFO_REQUEST))
        except EndpointError as error:
            if not error.refuses_the_input:
                raise
            cache["answer"] = None
    return cache["answer"]


def read_info(raw: bytes) -> dict[str, Any] | None:
    """An endpoint's answer to `{"info": true}`, or None when it is not one (an older artifact)."""
    try:
        document = json.loads(raw)
    except ValueError:
        return None
    return document if isinstance(document, dict) and "max_texts_per_request" in document else None


def check_texts(texts: Sequence[str]) -> None:
    """Refuse an empty request before anything is sent."""
    if not texts:
        raise InputTooLargeError("no texts to embed")


class ProjectEndpointBackend(ABC):
    """What an endpoint serving this project's container offers: `info`, and `embed` in batches.

    Subclasses say how a body is sent (`sender`); batches are `batch_size`, else the endpoint's
    stated limit, asked only when the texts exceed one default batch.
    """

    batch_size: int | None
    _info: dict[str, Any]

    @property
    @abstractmethod
    def target(self) -> str:
        """The endpoint as error messages name it."""

    @abstractmethod
    def sender(self) -> Callable[[bytes], bytes]:
        """Sends one request body, returns the response body."""

    def info(self) -> dict[str, Any] | None:
        """What the endpoint serves and its per-request limits (None for an older artifact)."""
        return cached_info(self._info, self.sender())

    def embed(
        self, texts: list[str], options: EmbeddingOptions = DEFAULT_OPTIONS
    ) -> EmbeddingResult:
        check_texts(texts)
        batch_size = self.batch_size
        if batch_size is None and len(texts) > DEFAULT_BATCH_SIZE:
            batch_size = endpoint_batch_size(self.info(), options)
        return embed_in_batches(
            texts,
            options,
            max_texts=batch_size or DEFAULT_BATCH_SIZE,
            max_body_bytes=SAGEMAKER_MAX_BODY_BYTES,
            send=self.sender(),
            target=self.target,
        )
