"""The local endpoint (`python -m embedding_client serve`), or any server with SageMaker's
container contract: POST {url}/invocations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from embedding_client.batching import ProjectEndpointBackend
from embedding_client.transport import (
    MAX_ATTEMPTS,
    READ_TIMEOUT_SECONDS,
    json_post,
    post_with_retries,
)


@dataclass(frozen=True)
class HttpBackend(ProjectEndpointBackend):
    url: str
    # None: as many texts per request as the endpoint states (see `endpoint_batch_size`).
    batch_size: int | None = None
    timeout: float = READ_TIMEOUT_SECONDS
    max_attempts: int = MAX_ATTEMPTS
    _info: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def _post(self, body: bytes) -> bytes:
        invocations = self.url.rstrip("/") + "/invocations"
        return post_with_retries(
            lambda: json_post(invocations, body),
            self.url,
            attempts=self.max_attempts,
            timeout=self.timeout,
        )

    @property
    def target(self) -> str:
        return self.url

    def sender(self) -> Callable[[bytes], bytes]:
        return self._post
