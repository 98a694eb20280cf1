"""The one way the client reaches a target: a POST over HTTP or a boto3 client, and one retry
policy (full-jitter exponential backoff) that `embed` and `embed file` both wait by.

Plain HTTP retries 429/502/503/504 here; AWS APIs use botocore's adaptive mode, unless the caller
paces itself (`embed file`: one attempt per call).
"""

from __future__ import annotations

import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from embedding_client.backend import EmbeddingClientError, EndpointError, TargetError
from facts.embedding_api import JSON_CONTENT_TYPE as CONTENT_TYPE
from facts.embedding_api import model_server_message

MAX_ATTEMPTS = 8
# 60 s invocation limit plus a cold start's queueing; the SDK default of 60 s would cut it off.
READ_TIMEOUT_SECONDS = 90
RETRYABLE_STATUS = (429, 502, 503, 504)
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 20.0


@dataclass(frozen=True)
class Backoff:
    """Full-jitter exponential backoff: before retry `n`, a uniform wait up to base·2ⁿ (capped)."""

    base_seconds: float = BACKOFF_BASE_SECONDS
    cap_seconds: float = BACKOFF_CAP_SECONDS

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap_seconds, self.base_seconds * 2**attempt))


def _error_message(body: bytes) -> str:
    """The `message` of a JSON error body when there is one, else the body as text."""
    return model_server_message(body.decode("utf-8", errors="replace").strip())


def post_with_retries(
    request_factory: Callable[[], urllib.request.Request],
    target: str,
    *,
    attempts: int = MAX_ATTEMPTS,
    timeout: float = READ_TIMEOUT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> bytes:
    """POST, retrying 429/502/503/504 with jittered backoff; other errors raise at once."""
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(request_factory(), timeout=timeout) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            body = error.read()
            if error.code not in RETRYABLE_STATUS or attempt == attempts - 1:
                raise EndpointError(target, error.code, _error_message(body)) from None
        except TimeoutError:
            raise EndpointError(target, None, f"no answer within {timeout:g} s") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise EndpointError(target, None, f"cannot connect: {reason}") from None
        sleep(Backoff().delay(attempt))
    raise AssertionError("unreachable")


def json_post(
    url: str, body: bytes, headers: dict[str, str] | None = None
) -> urllib.request.Request:
    """A POST of a JSON body (`headers` replace the default content headers when given)."""
    default = {"Content-Type": CONTENT_TYPE, "Accept": CONTENT_TYPE}
    return urllib.request.Request(url, data=body, method="POST", headers=headers or default)


def aws_client(
    service: str,
    region: str | None,
    endpoint_url: str | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    session: Any = None,
) -> Any:
    """A boto3 client with adaptive retries and a long read (`max_attempts=1`: caller paces)."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={
            "mode": "adaptive" if max_attempts > 1 else "standard",
            "total_max_attempts": max_attempts,
        },
        read_timeout=READ_TIMEOUT_SECONDS,
        connect_timeout=10,
    )
    # A session of its own unless given: credentials and region are read now, not cached.
    session = session or boto3.session.Session(region_name=region)
    return session.client(service, region_name=region, endpoint_url=endpoint_url, config=config)


def cached_client(
    cache: dict[str, Any],
    service: str,
    region: str | None,
    endpoint_url: str | None,
    max_attempts: int,
    session: Any = None,
) -> Any:
    """One boto3 client per backend and retry setting (clients are thread-safe; `embed file`
    calls often), so a copy with other retries gets its own."""
    key = f"{service}/{max_attempts}"
    return cache.get(key) or cache.setdefault(
        key, aws_client(service, region, endpoint_url, max_attempts, session=session)
    )


def botocore_failure(error: Exception, target: str) -> EmbeddingClientError:
    """No credentials or region: the target cannot be reached at all; else the call failed."""
    from botocore.exceptions import NoCredentialsError, NoRegionError, PartialCredentialsError

    if isinstance(error, (NoCredentialsError, PartialCredentialsError, NoRegionError)):
        return TargetError(f"{target}: {error} (configure AWS credentials, or pass --region)")
    return EndpointError(target, None, str(error))


def client_error(error: Any, target: str, *, service_is_model: bool = False) -> EndpointError:
    """An EndpointError from a botocore ClientError, keeping the container's own message.

    SageMaker's own 4xx is about the call; Bedrock's (`service_is_model`) can be about the texts.
    """
    response = error.response
    details = response.get("Error", {})
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = details.get("Code", "")
    if "OriginalStatusCode" in response or "OriginalMessage" in response:
        # ModelError: the container answered non-2xx; report what the container said.
        original_status = response.get("OriginalStatusCode", status)
        message = model_server_message(response.get("OriginalMessage", ""))
        return EndpointError(target, original_status, message, code)
    return EndpointError(
        target, status, details.get("Message", str(error)), code, from_model=service_is_model
    )
