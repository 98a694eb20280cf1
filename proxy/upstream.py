"""Call the model behind the proxy (SageMaker endpoint or Bedrock model) and map its errors.

Each call takes its boto3 client as an argument, so tests pass clients built for moto's
sagemaker-runtime or the Bedrock fixture server and the same code runs in the Lambda.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from facts.bedrock_formats import BedrockRequestError, BedrockResponseError, embed_texts, invoker
from facts.embedding_api import (
    JSON_CONTENT_TYPE,
    ResponseError,
    Usage,
    model_server_message,
    read_response,
    render_response,
)
from facts.http_api import BACKEND_VARIABLE, TARGET_VARIABLE
from facts.identifiers import BACKENDS
from proxy.request import BadRequest, ProxyRequest

# Titan takes one text per call: 96 texts one after another could approach API Gateway's 30 s.
BEDROCK_CONCURRENCY = 8

# Upstream error codes a caller can fix by waiting (429) and by changing its input (400).
_RETRY_LATER = {
    "ThrottlingException",
    "ModelNotReadyException",
    "ServiceQuotaExceededException",
    "TooManyRequestsException",
}
_TIMEOUTS = {"ModelTimeoutException", "RequestTimeout"}


@dataclass(frozen=True)
class ProxyTarget:
    """Which model the proxy serves; read from the Lambda's environment."""

    backend: str
    target: str  # SageMaker endpoint name, or Bedrock model id

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ProxyTarget:
        backend = env.get(BACKEND_VARIABLE, "")
        if backend not in BACKENDS:
            raise RuntimeError(
                f"environment variable {BACKEND_VARIABLE} is {backend!r}: expected one of "
                f"{', '.join(BACKENDS)}"
            )
        target = env.get(TARGET_VARIABLE, "")
        if not target:
            raise RuntimeError(
                f"environment variable {TARGET_VARIABLE} is empty: expected the SageMaker "
                "endpoint name or the Bedrock model id"
            )
        return cls(backend=backend, target=target)


class UpstreamError(Exception):
    """The model behind the proxy failed: `status` and `message` for the caller, `detail` logged."""

    def __init__(self, status: int, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail or message


def embed_with_sagemaker(client: Any, endpoint_name: str, request: ProxyRequest) -> str:
    """One InvokeEndpoint call with the caller's body; the answer is checked and passed on."""
    response = client.invoke_endpoint(
        EndpointName=endpoint_name,
        ContentType=JSON_CONTENT_TYPE,
        Accept=JSON_CONTENT_TYPE,
        Body=request.body,
    )
    raw = response["Body"].read()
    where = f"SageMaker endpoint {endpoint_name}"
    try:
        read_response(json.loads(raw), len(request.request.texts))
    except (ValueError, UnicodeDecodeError) as error:
        detail = str(error) if isinstance(error, ResponseError) else f"not JSON: {raw[:200]!r}"
        raise UpstreamError(502, f"{where} returned an unusable answer: {detail}") from None
    return raw.decode("utf-8")


def embed_with_bedrock(client: Any, model_id: str, request: ProxyRequest) -> str:
    """InvokeModel call(s) in the model's own format, answered in the caller's shape."""
    try:
        invoke = invoker(client, model_id)
        result = embed_texts(
            invoke,
            model_id,
            request.request.texts,
            request.request.options,
            request.input_type,
            concurrency=BEDROCK_CONCURRENCY,
        )
    except BedrockRequestError as error:
        raise BadRequest(str(error)) from None
    except BedrockResponseError as error:
        raise UpstreamError(502, f"Bedrock model {model_id}: {error}") from None
    usage = Usage(result.prompt_tokens or 0)
    return render_response(request.request, result.vectors, result.model, usage)


def _client_error(error: ClientError, target: ProxyTarget) -> UpstreamError:
    details = error.response.get("Error", {})
    code = str(details.get("Code", "Unknown"))
    message = str(details.get("Message", error))
    where = (
        f"SageMaker endpoint {target.target}"
        if target.backend == "sagemaker"
        else f"Bedrock model {target.target}"
    )
    # AWS's message may name the account, the role's ARN or the endpoint's URL: logged only.
    text, detail = f"{where} failed: {code}", f"{where} failed: {code}: {message}"
    if code in _RETRY_LATER:
        return UpstreamError(429, f"{text}: retry later", detail)
    if code in _TIMEOUTS:
        return UpstreamError(504, f"{text}: it timed out", detail)
    if code == "ModelError":  # the container answered with an error of its own
        original = details.get("OriginalStatusCode") or error.response.get("OriginalStatusCode")
        original_message = error.response.get("OriginalMessage") or message
        detail = f"{where} model error ({original}): {original_message}"
        if str(original).startswith("4"):  # our inference script's word on the caller's input
            return UpstreamError(400, model_server_message(original_message), detail)
        return UpstreamError(502, f"{where} model error ({original})", detail)
    if code == "ValidationException" and target.backend == "bedrock":
        # The proxy validated the request, so what is left is the model's own input limit.
        return UpstreamError(400, f"{text}: {message}")
    return UpstreamError(502, text, detail)


def upstream_error(error: Exception, target: ProxyTarget) -> UpstreamError:
    """The HTTP status and message for an exception raised while calling the target."""
    if isinstance(error, ClientError):
        return _client_error(error, target)
    # botocore's text names the endpoint URL: logged only.
    if isinstance(error, (ReadTimeoutError, ConnectTimeoutError)):
        text = f"{target.backend} call to {target.target} timed out"
        return UpstreamError(504, text, f"{text}: {error}")
    if isinstance(error, BotoCoreError):
        text = f"{target.backend} call to {target.target} failed ({type(error).__name__})"
        return UpstreamError(502, text, f"{text}: {error}")
    raise error
