"""The Hub token from Secrets Manager (so it never travels in the event or the Pulumi state)."""

from __future__ import annotations

import json
from typing import Any

from loader.errors import LoaderError

_TOKEN_KEYS = ("hf_token", "HF_TOKEN", "token")


def token_from_secret(secrets_client: Any, secret_arn: str, model_id: str) -> str:
    """The secret's string: the raw token, or a JSON object with hf_token/HF_TOKEN/token."""
    try:
        value = secrets_client.get_secret_value(SecretId=secret_arn)
    except Exception as error:
        raise LoaderError(
            f"cannot read secret {secret_arn}: {type(error).__name__} (the loader role needs "
            "secretsmanager:GetSecretValue on it)",
            step="read-token-secret",
            model=model_id,
        ) from None  # the chained error could echo the request; keep the message ours
    text = (value.get("SecretString") or "").strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            document = {}
        for key in _TOKEN_KEYS:
            if isinstance(document.get(key), str) and document[key]:
                return document[key]
        raise LoaderError(
            f"secret {secret_arn} is a JSON object without any of the keys {list(_TOKEN_KEYS)}",
            step="read-token-secret",
            model=model_id,
        )
    if not text:
        raise LoaderError(
            f"secret {secret_arn} has no SecretString", step="read-token-secret", model=model_id
        )
    return text
