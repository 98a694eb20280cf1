"""A deployed SageMaker endpoint, through sagemaker-runtime InvokeEndpoint."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from embedding_client.batching import ProjectEndpointBackend
from embedding_client.transport import (
    CONTENT_TYPE,
    MAX_ATTEMPTS,
    botocore_failure,
    cached_client,
    client_error,
)


@dataclass(frozen=True)
class SageMakerBackend(ProjectEndpointBackend):
    endpoint_name: str
    region: str | None = None
    endpoint_url: str | None = None
    # None: as many texts per request as the endpoint states (see `endpoint_batch_size`).
    batch_size: int | None = None
    max_attempts: int = MAX_ATTEMPTS
    # A boto3 Session to call from (a stack's profile and assumed roles); None: the default one.
    session: Any = None
    _info: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def target(self) -> str:
        return f"SageMaker endpoint {self.endpoint_name}"

    def sender(self) -> Callable[[bytes], bytes]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            client = cached_client(
                self._clients,
                "sagemaker-runtime",
                self.region,
                self.endpoint_url,
                self.max_attempts,
                session=self.session,
            )
        except BotoCoreError as error:
            raise botocore_failure(error, self.target) from None

        def invoke(body: bytes) -> bytes:
            try:
                response = client.invoke_endpoint(
                    EndpointName=self.endpoint_name,
                    ContentType=CONTENT_TYPE,
                    Accept=CONTENT_TYPE,
                    Body=body,
                )
                return response["Body"].read()
            except ClientError as error:
                raise client_error(error, self.target) from None
            except BotoCoreError as error:
                raise botocore_failure(error, self.target) from None

        return invoke
