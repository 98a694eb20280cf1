"""The HTTP API's contract: its routes, its request limits and the proxy Lambdas' environment.

Read by the program, the proxy Lambdas and the client.
"""

from __future__ import annotations

ROUTE_METHOD = "POST"
# The embedding API's native shape, and OpenAI's (clients take `base_url=…/v1`).
NATIVE_ROUTE = "/embed"
OPENAI_BASE_PATH = "/v1"
OPENAI_ROUTE = f"{OPENAI_BASE_PATH}/embeddings"
ROUTES = (NATIVE_ROUTE, OPENAI_ROUTE)


def route_shape_problem(route: str, document: dict) -> str | None:
    """Why a JSON request `document` is not the shape `route` takes (None: it is): OpenAI's
    route takes OpenAI's request, the native route the native one (the local endpoint's
    OpenAI route too)."""
    if route == OPENAI_ROUTE and "input" not in document:
        return f'{OPENAI_ROUTE} takes OpenAI\'s request: {{"input": ..., "model": ...}}'
    if route == NATIVE_ROUTE and "input" in document:
        return f'{NATIVE_ROUTE} takes {{"inputs": ...}}; OpenAI clients: {OPENAI_ROUTE}'
    return None


# What the proxy accepts in one request: for a Bedrock target, Cohere's limit of texts per call
# (a SageMaker endpoint states its own); for both, a body well under API Gateway's payload limit.
MAX_INPUTS = 96
MAX_BODY_BYTES = 1_000_000

# The proxy Lambda's environment: the backend (facts/identifiers.py BACKENDS) and the SageMaker
# endpoint name or Bedrock model id it calls.
BACKEND_VARIABLE = "EMBED_BACKEND"
TARGET_VARIABLE = "EMBED_TARGET"
# The authorizer Lambda's environment (`httpApiAuth: apiKey`): the secret holding the key.
API_KEY_SECRET_VARIABLE = "EMBED_API_KEY_SECRET_ARN"

# The API key's lifecycle (`httpApiAuth: apiKey`, docs/bedrock-and-http-api.md). API Gateway reuses
# the authorizer's answer for the same Authorization header this long, and the authorizer re-reads
# the secret after API_KEY_CACHE_SECONDS: a revoked key stops working within their sum.
AUTHORIZER_RESULT_TTL_SECONDS = 15
API_KEY_CACHE_SECONDS = 15
API_KEY_REVOCATION_SECONDS = AUTHORIZER_RESULT_TTL_SECONDS + API_KEY_CACHE_SECONDS
# After a rotation the key it replaced (the secret's AWSPREVIOUS version) is still accepted until
# this long after the new AWSCURRENT version was created, so clients can move over.
API_KEY_ROTATION_OVERLAP_SECONDS = 3600
