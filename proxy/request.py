"""Parse and validate an API Gateway HTTP API (payload format 2.0) request into an EmbedRequest.

Everything here is pure so that each bad-request rule is a unit test. The body follows the
endpoint's inference contract: `{"inputs": str | [str], "parameters": {...}}`.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

MAX_INPUTS = 96
MAX_BODY_BYTES = 1_000_000
# Parameters each backend understands; anything else is a 400 naming the allowed ones.
COMMON_PARAMETERS = ("normalize", "truncate")
BEDROCK_PARAMETERS = COMMON_PARAMETERS + ("dimensions", "input_type")


class BadRequest(ValueError):
    """The caller's request is invalid; the message says which field and what is allowed."""


@dataclass(frozen=True)
class EmbedRequest:
    """A validated request: the texts in order and the options the caller set."""

    texts: tuple[str, ...]
    # None: not sent, so the backend's own default applies (the endpoint and bedrock_formats
    # both normalize and truncate by default).
    normalize: bool | None = None
    truncate: bool | None = None
    dimensions: int | None = None
    input_type: str | None = None


def _raw_body(event: dict[str, Any]) -> bytes:
    body = event.get("body")
    if body is None or body == "":
        raise BadRequest('request body is empty: send JSON {"inputs": ["text", ...]}')
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("request body is marked base64 but does not decode") from None
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def _texts(inputs: Any) -> tuple[str, ...]:
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list):
        raise BadRequest(
            f"field 'inputs' must be a string or a list of strings, got {type(inputs).__name__}"
        )
    if not inputs:
        raise BadRequest("field 'inputs' is an empty list: send at least one text")
    if len(inputs) > MAX_INPUTS:
        raise BadRequest(
            f"field 'inputs' has {len(inputs)} texts; at most {MAX_INPUTS} per request"
        )
    for index, text in enumerate(inputs):
        if not isinstance(text, str):
            raise BadRequest(f"inputs[{index}] must be a string, got {type(text).__name__}")
        if not text.strip():
            raise BadRequest(f"inputs[{index}] is empty")
    return tuple(inputs)


def _flag(parameters: dict[str, Any], name: str) -> bool | None:
    value = parameters.get(name)
    if value is not None and not isinstance(value, bool):
        raise BadRequest(f"parameters.{name} must be true or false, got {value!r}")
    return value


def parse_request(event: dict[str, Any], backend: str) -> EmbedRequest:
    """The validated request in an HTTP API event, or BadRequest."""
    raw = _raw_body(event)
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequest(f"request body has {len(raw)} bytes; at most {MAX_BODY_BYTES}")
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequest(f"request body is not valid JSON: {error}") from None
    if not isinstance(payload, dict):
        raise BadRequest('request body must be a JSON object {"inputs": [...]}')
    unknown = sorted(set(payload) - {"inputs", "parameters"})
    if unknown:
        raise BadRequest(
            f"unknown field {unknown[0]!r}: expected 'inputs' and optional 'parameters'"
        )
    if "inputs" not in payload:
        raise BadRequest("field 'inputs' is required: a string or a list of strings")
    parameters = payload.get("parameters")
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise BadRequest("field 'parameters' must be an object")
    allowed = BEDROCK_PARAMETERS if backend == "bedrock" else COMMON_PARAMETERS
    unknown = sorted(set(parameters) - set(allowed))
    if unknown:
        raise BadRequest(
            f"unknown parameter {unknown[0]!r} for backend {backend}: "
            f"expected any of {', '.join(allowed)}"
        )
    dimensions = parameters.get("dimensions")
    if dimensions is not None and (isinstance(dimensions, bool) or not isinstance(dimensions, int)):
        raise BadRequest(f"parameters.dimensions must be an integer, got {dimensions!r}")
    input_type = parameters.get("input_type")
    if input_type is not None and not isinstance(input_type, str):
        raise BadRequest(f"parameters.input_type must be a string, got {input_type!r}")
    return EmbedRequest(
        texts=_texts(payload["inputs"]),
        normalize=_flag(parameters, "normalize"),
        truncate=_flag(parameters, "truncate"),
        dimensions=dimensions,
        input_type=input_type,
    )
