"""The proxy Lambda behind the HTTP API (payload 2.0): `POST /embed` and `POST /v1/embeddings`.

A thin shell: parse, call the target with a cached client, answer in the route's shape. Bad
requests are 400 naming the field; upstream failures keep their cause (429, 504, else 502). Logs:
one JSON line per request with sizes and timings, never the texts.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
import uuid
from typing import Any

import boto3
from botocore.config import Config

from facts.embedding_api import INTERNAL_ERROR_MESSAGE, openai_error
from facts.http_api import OPENAI_ROUTE
from facts.proxy_budget import (
    UPSTREAM_CONNECT_TIMEOUT_SECONDS,
    UPSTREAM_MAX_ATTEMPTS,
    UPSTREAM_READ_TIMEOUT_SECONDS,
)
from proxy.request import BadRequest, parse_request, route_of
from proxy.upstream import (
    ProxyTarget,
    UpstreamError,
    embed_with_bedrock,
    embed_with_sagemaker,
    upstream_error,
)

logger = logging.getLogger("embed-proxy")
logger.setLevel(logging.INFO)

# The upstream call ends before the Lambda's own timeout (facts/proxy_budget.py); retries are
# set here, not left to botocore's default (AWS_MAX_ATTEMPTS), which would outlast it.
CLIENT_CONFIG = Config(
    connect_timeout=UPSTREAM_CONNECT_TIMEOUT_SECONDS,
    read_timeout=UPSTREAM_READ_TIMEOUT_SECONDS,
    retries={"mode": "standard", "total_max_attempts": UPSTREAM_MAX_ATTEMPTS},
)
_SERVICES = {"sagemaker": "sagemaker-runtime", "bedrock": "bedrock-runtime"}


@functools.lru_cache(maxsize=8)
def _cached_client(service: str, region: str | None, endpoint_url: str | None) -> Any:
    return boto3.client(
        service, region_name=region, endpoint_url=endpoint_url, config=CLIENT_CONFIG
    )


def client_for(backend: str) -> Any:
    """A boto3 client for the backend, reused across warm invocations."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    return _cached_client(_SERVICES[backend], region, os.environ.get("AWS_ENDPOINT_URL"))


def _answer(status: int, body: str, headers: dict[str, str] | None = None) -> dict:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", **(headers or {})},
        "body": body,
        "isBase64Encoded": False,
    }


def _error(
    route: str,
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
    request_id: str | None = None,
) -> dict:
    """An error in the route's own shape, with the request id that finds the logged detail."""
    if request_id:
        message = f"{message} (request id {request_id})"
        headers = {**(headers or {}), "x-request-id": request_id}
    document = openai_error(status, message) if route == OPENAI_ROUTE else {"error": message}
    return _answer(status, json.dumps(document), headers)


def _log(**fields: Any) -> None:
    logger.info(json.dumps(fields, sort_keys=True))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Embed the request's texts with the configured backend, in the route's shape.

    A failure nobody foresaw is logged with its trace and answered in the route's shape with the
    fixed internal-error message and a request id, never its own text (nor API Gateway's bare
    "Internal Server Error" for a Lambda that raised).
    """
    try:
        return _handle(event, context)
    except Exception:
        request_id = getattr(context, "aws_request_id", None) or uuid.uuid4().hex
        logger.exception("unexpected failure (request id %s)", request_id)
        return _error(route_of(event), 500, INTERNAL_ERROR_MESSAGE, None, request_id)


def _handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    started = time.monotonic()
    target = ProxyTarget.from_env()
    route = route_of(event)
    method = event.get("requestContext", {}).get("http", {}).get("method", "POST")
    if method != "POST":
        message = f"method {method} is not allowed: use POST"
        return _error(route, 405, message, {"allow": "POST"})
    try:
        request = parse_request(event, target.backend)
        client = client_for(target.backend)
        try:
            if target.backend == "sagemaker":
                body = embed_with_sagemaker(client, target.target, request)
            else:
                body = embed_with_bedrock(client, target.target, request)
        except (BadRequest, UpstreamError):
            raise
        except Exception as error:  # noqa: BLE001 (boto3/botocore errors are mapped, others re-raised)
            raise upstream_error(error, target) from error
    except BadRequest as error:
        _log(step="parse", status=400, backend=target.backend, route=route, error=str(error))
        return _error(route, 400, str(error))
    except UpstreamError as error:
        request_id = getattr(context, "aws_request_id", None) or uuid.uuid4().hex
        _log(
            step="invoke",
            status=error.status,
            backend=target.backend,
            error=error.detail,
            request_id=request_id,
        )
        headers = {"retry-after": "1"} if error.status == 429 else None
        return _error(route, error.status, error.message, headers, request_id)
    _log(
        step="done",
        status=200,
        backend=target.backend,
        target=target.target,
        route=route,
        texts=len(request.request.texts),
        ms=round((time.monotonic() - started) * 1000),
    )
    return _answer(200, body)
