"""The HTTP API's authorizer for `httpApiAuth: apiKey`: a bearer token, compared in constant time.

Accepts the secret's AWSCURRENT value and, for API_KEY_ROTATION_OVERLAP_SECONDS after a rotation,
its AWSPREVIOUS one; re-reads it after API_KEY_CACHE_SECONDS (facts/http_api.py). Rotation and
revocation: docs/bedrock-and-http-api.md. Answers the simple format `{"isAuthorized": bool}`.
"""

from __future__ import annotations

import functools
import hmac
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import boto3

from facts.http_api import API_KEY_CACHE_SECONDS, API_KEY_ROTATION_OVERLAP_SECONDS
from facts.http_api import API_KEY_SECRET_VARIABLE as SECRET_VARIABLE

logger = logging.getLogger("embed-authorizer")
logger.setLevel(logging.INFO)

CURRENT_STAGE = "AWSCURRENT"
PREVIOUS_STAGE = "AWSPREVIOUS"


@dataclass(frozen=True)
class AcceptedKeys:
    """The secret's keys as read at `read_at` (epoch seconds, as is `current_created`)."""

    current: str
    # The key the last rotation replaced; None when never rotated, revoked or past the overlap.
    previous: str | None
    current_created: float
    read_at: float

    def previous_until(self) -> float:
        """When the previous key stops being accepted."""
        return self.current_created + API_KEY_ROTATION_OVERLAP_SECONDS

    def match(self, token: str, now: float) -> str | None:
        """Which key `token` is (`current` or `previous`), comparing in constant time."""
        given = token.encode("utf-8")
        # Both comparisons always run, so the answer's timing does not tell which key matched.
        is_current = hmac.compare_digest(given, self.current.encode("utf-8"))
        is_previous = self.previous is not None and hmac.compare_digest(
            given, self.previous.encode("utf-8")
        )
        if is_current:
            return "current"
        if is_previous and now < self.previous_until():
            return "previous"
        return None


_cache: dict[str, AcceptedKeys] = {}


@functools.lru_cache(maxsize=1)
def _secrets_client() -> Any:
    return boto3.client("secretsmanager")


def _previous_key(client: Any, secret_arn: str) -> str | None:
    try:
        answer = client.get_secret_value(SecretId=secret_arn, VersionStage=PREVIOUS_STAGE)
    except client.exceptions.ResourceNotFoundException:
        return None  # never rotated, or the previous key was revoked
    return answer["SecretString"]


def read_keys(secret_arn: str, now: float) -> AcceptedKeys:
    """The current key, and the previous one while the rotation overlap lasts."""
    client = _secrets_client()
    current = client.get_secret_value(SecretId=secret_arn, VersionStage=CURRENT_STAGE)
    created = current["CreatedDate"].timestamp()
    in_overlap = now < created + API_KEY_ROTATION_OVERLAP_SECONDS
    previous = _previous_key(client, secret_arn) if in_overlap else None
    return AcceptedKeys(current["SecretString"], previous, created, now)


def accepted_keys(secret_arn: str, now: float) -> AcceptedKeys:
    """The keys, re-read once API_KEY_CACHE_SECONDS have passed since the last read."""
    cached = _cache.get(secret_arn)
    if cached is not None and 0 <= now - cached.read_at < API_KEY_CACHE_SECONDS:
        return cached
    keys = read_keys(secret_arn, now)
    _cache[secret_arn] = keys
    return keys


def bearer_token(headers: dict[str, str]) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (any capitalization)."""
    value = {name.lower(): v for name, v in (headers or {}).items()}.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authorize(headers: dict[str, str], secret_arn: str, now: float) -> bool:
    """Whether the request's bearer token is a key the secret holds and that is still accepted."""
    token = bearer_token(headers)
    if token is None:
        logger.info("refused: no bearer token")
        return False
    keys = accepted_keys(secret_arn, now)
    matched = keys.match(token, now)
    if matched is None:
        logger.info("refused: the token is not an accepted API key")
    elif matched == "previous":
        # Tells the operator that clients still use the old key, and until when it works.
        remaining = int(keys.previous_until() - now)
        logger.info("accepted the previous API key; it stops working in %d s", remaining)
    return matched is not None


def handler(event: dict[str, Any], context: Any) -> dict[str, bool]:
    """Authorize the request when its bearer token is the stack's key (or the one it replaced)."""
    allowed = authorize(event.get("headers") or {}, os.environ[SECRET_VARIABLE], time.time())
    return {"isAuthorized": allowed}
