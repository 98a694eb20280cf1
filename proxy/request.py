"""Parse and validate an API Gateway HTTP API (payload format 2.0) request into a ProxyRequest.

The bodies are the embedding API's (facts/embedding_api.py), with the proxy's own limits and, for
Bedrock on the native route, Cohere's `input_type`.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from facts.embedding_api import EmbeddingRequest, InputError, decode_json, parse_document
from facts.http_api import (
    MAX_BODY_BYTES,
    MAX_INPUTS,
    NATIVE_ROUTE,
    OPENAI_ROUTE,
    ROUTES,
    route_shape_problem,
)


class BadRequest(ValueError):
    """The caller's request is invalid; the message says which field and what is allowed."""


@dataclass(frozen=True)
class ProxyRequest:
    """A validated request: the embedding API's request, its route and the body to forward."""

    request: EmbeddingRequest
    route: str
    # The body as received (SageMaker endpoints speak the same API and take it as is).
    body: bytes
    input_type: str | None = None  # Cohere on Bedrock only


def route_of(event: dict[str, Any]) -> str:
    """The route's path (`/embed` or `/v1/embeddings`) of an HTTP API event."""
    http = event.get("requestContext", {}).get("http", {})
    return str(event.get("rawPath") or http.get("path") or NATIVE_ROUTE)


def _shape(route: str) -> str:
    """The route's request, as its error messages show it."""
    return '{"input": ..., "model": ...}' if route == OPENAI_ROUTE else '{"inputs": ["text", ...]}'


def _raw_body(event: dict[str, Any], route: str) -> bytes:
    body = event.get("body")
    if body is None or body == "":
        raise BadRequest(f"request body is empty: send JSON {_shape(route)}")
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("request body is marked base64 but does not decode") from None
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def _input_type(document: dict[str, Any], route: str, backend: str) -> str | None:
    """Take Cohere's `input_type` out of the native parameters (Bedrock only)."""
    parameters = document.get("parameters")
    if route != NATIVE_ROUTE or not isinstance(parameters, dict) or "input_type" not in parameters:
        return None
    if backend != "bedrock":
        raise BadRequest(
            "parameters.input_type is a Bedrock (Cohere) option; this API is SageMaker"
        )
    value = parameters.pop("input_type")
    if not isinstance(value, str):
        raise BadRequest(f"parameters.input_type must be a string, got {value!r}")
    return value


def parse_request(event: dict[str, Any], backend: str) -> ProxyRequest:
    """The validated request in an HTTP API event, or BadRequest naming the field."""
    route = route_of(event)
    if route not in ROUTES:
        raise BadRequest(f"no route {route}; POST {NATIVE_ROUTE} or {OPENAI_ROUTE}")
    raw = _raw_body(event, route)
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequest(f"request body has {len(raw)} bytes; at most {MAX_BODY_BYTES}")
    try:
        document = decode_json(raw, "request body")
    except InputError as error:
        raise BadRequest(str(error)) from None
    if not isinstance(document, dict):
        raise BadRequest(f"request body must be a JSON object {_shape(route)}")
    problem = route_shape_problem(route, document)
    if problem is not None:
        raise BadRequest(problem)
    input_type = _input_type(document, route, backend)
    try:
        request = parse_document(document)
    except InputError as error:
        raise BadRequest(str(error)) from None
    if request.shape == "info":
        raise BadRequest("info requests are answered by the endpoint itself, not through the API")
    # A SageMaker endpoint states its own limit (413, with both encodings' counts), and OpenAI
    # clients batch by 100 (llama-index) to 1,000 (LangChain): only Bedrock's calls are capped.
    if backend == "bedrock" and len(request.texts) > MAX_INPUTS:
        raise BadRequest(f"{len(request.texts)} texts in one request; at most {MAX_INPUTS}")
    body = raw if input_type is None else json.dumps(document).encode("utf-8")
    return ProxyRequest(request=request, route=route, body=body, input_type=input_type)
