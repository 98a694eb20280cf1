"""What every embedding target is to the client: one `EmbeddingBackend` protocol, its result, and
the errors the commands report instead of a traceback (the endpoint's own message, unchanged).
The targets: one `backend_*.py` module each; `stack_outputs.py` picks a stack's.
"""

from __future__ import annotations

from typing import Protocol

from facts.embedding_api import EmbeddingOptions, EmbeddingResponse

THROTTLING_CODES = ("ThrottlingException", "Throttling", "TooManyRequestsException")
# Answers that mean "send less, later": throttling, and a serverless endpoint still scaling up.
RETRY_LATER_CODES = (*THROTTLING_CODES, "ModelNotReadyException")
# 4xx statuses that refuse the caller or the address, whatever the request holds.
TARGET_STATUSES = (401, 403, 404, 405, 407)


# One vector per input text, in input order; the tokens the model read, when it says.
EmbeddingResult = EmbeddingResponse
DEFAULT_OPTIONS = EmbeddingOptions(normalize=True)


class EmbeddingBackend(Protocol):
    def embed(
        self, texts: list[str], options: EmbeddingOptions = DEFAULT_OPTIONS
    ) -> EmbeddingResult:
        """Vectors for `texts` with the embedding API's `options`."""
        ...


class EmbeddingClientError(Exception):
    """Base class: anything the `embed` command reports instead of a traceback."""


class InputTooLargeError(EmbeddingClientError):
    """A single text cannot fit one request to this target."""


class TargetError(EmbeddingClientError):
    """The target cannot be resolved (missing stack outputs, unknown backend, no credentials)."""


class EndpointError(EmbeddingClientError):
    """The endpoint or service answered with an error; `message` is its text, verbatim."""

    def __init__(
        self,
        target: str,
        status: int | None,
        message: str,
        code: str = "",
        *,
        from_model: bool = True,
    ) -> None:
        self.target = target
        self.status = status
        self.code = code
        self.message = message
        # False: the service in front of the model answered (SageMaker's own 4xx: no such
        # endpoint, credentials), so no input would fare better.
        self.from_model = from_model
        if status is None:
            super().__init__(f"{target}: {message}")
        else:
            super().__init__(
                f"{target} answered HTTP {status}{f' {code}' if code else ''}: {message}"
            )

    @property
    def is_throttling(self) -> bool:
        """The target asks for fewer requests (throttling, 429, a model still scaling up)."""
        return self.code in RETRY_LATER_CODES or self.status == 429

    @property
    def is_client_error(self) -> bool:
        """The request was refused (4xx, not throttling): sending it again will not help."""
        if self.is_throttling:
            return False
        return self.status is not None and 400 <= self.status < 500

    @property
    def refuses_the_input(self) -> bool:
        """A 4xx about these inputs: other inputs may pass. Not auth, not a wrong target."""
        return self.is_client_error and self.from_model and self.status not in TARGET_STATUSES


class ResponseFormatError(EmbeddingClientError):
    """The target answered 2xx with a body that is not `{"embeddings", "model", "dimensions"}`."""
