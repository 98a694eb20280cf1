"""The HTTP API's authorizer for `httpApiAuth: apiKey`: a bearer token, compared in constant time.

OpenAI clients cannot sign SigV4; they send `Authorization: Bearer <key>`. The key lives in a
Secrets Manager secret (the stack creates it); this function reads it once per container and
again after CACHE_SECONDS, so a rotated key takes effect within that time (and within API
Gateway's own result cache). Answers the simple response format: `{"isAuthorized": bool}`.
"""

from __future__ import annotations

import functools
import hmac
import logging
import os
import time
from typing import Any

import boto3

from facts.http_api import API_KEY_SECRET_VARIABLE as SECRET_VARIABLE

logger = logging.getLogger("embed-authorizer")
logger.setLevel(logging.INFO)

CACHE_SECONDS = 300
_cache: dict[str, tuple[float, str]] = {}


@functools.lru_cache(maxsize=1)
def _secrets_client() -> Any:
    return boto3.client("secretsmanager")


def current_key(secret_arn: str, now: float | None = None) -> str:
    """The secret's value, cached for CACHE_SECONDS."""
    now = time.monotonic() if now is None else now
    cached = _cache.get(secret_arn)
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    value = _secrets_client().get_secret_value(SecretId=secret_arn)["SecretString"]
    _cache[secret_arn] = (now, value)
    return value


def bearer_token(headers: dict[str, str]) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (any capitalization)."""
    value = {name.lower(): v for name, v in (headers or {}).items()}.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def handler(event: dict[str, Any], context: Any) -> dict[str, bool]:
    """Authorize the request when its bearer token equals the stack's key."""
    token = bearer_token(event.get("headers") or {})
    if token is None:
        logger.info("refused: no bearer token")
        return {"isAuthorized": False}
    expected = current_key(os.environ[SECRET_VARIABLE])
    allowed = hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8"))
    if not allowed:
        logger.info("refused: the token is not the API key")
    return {"isAuthorized": allowed}
