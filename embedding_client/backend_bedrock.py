"""Amazon Bedrock embedding models, each in its own request shape (facts/bedrock_formats.py),
through bedrock-runtime InvokeModel."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from embedding_client.backend import (
    DEFAULT_OPTIONS,
    EmbeddingResult,
    InputTooLargeError,
    ResponseFormatError,
)
from embedding_client.batching import check_texts
from embedding_client.transport import MAX_ATTEMPTS, botocore_failure, cached_client, client_error
from facts import bedrock_formats
from facts.embedding_api import EmbeddingOptions


@dataclass(frozen=True)
class BedrockBackend:
    model_id: str
    region: str | None = None
    endpoint_url: str | None = None
    max_attempts: int = MAX_ATTEMPTS
    _clients: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def embed(
        self, texts: list[str], options: EmbeddingOptions = DEFAULT_OPTIONS
    ) -> EmbeddingResult:
        from botocore.exceptions import BotoCoreError, ClientError

        check_texts(texts)
        target = f"Bedrock model {self.model_id}"
        try:
            client = cached_client(
                self._clients, "bedrock-runtime", self.region, self.endpoint_url, self.max_attempts
            )
        except BotoCoreError as error:
            raise botocore_failure(error, target) from None

        try:
            invoke = bedrock_formats.invoker(client, self.model_id)
            return bedrock_formats.embed_texts(invoke, self.model_id, texts, options)
        except bedrock_formats.BedrockRequestError as error:
            raise InputTooLargeError(str(error)) from None
        except bedrock_formats.BedrockResponseError as error:
            raise ResponseFormatError(f"{target}: {error}") from None
        except ClientError as error:
            raise client_error(error, target, service_is_model=True) from None
        except BotoCoreError as error:
            raise botocore_failure(error, target) from None
