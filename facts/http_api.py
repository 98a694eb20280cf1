"""The HTTP API's contract: its routes, its request limits and the proxy Lambdas' environment.

Read by the program (the API's routes, the IAM policy callers attach, the Lambdas' environment),
by the proxy Lambdas (which route a request takes, what they refuse, where their settings are)
and by the client (how many texts and bytes one request to the API may carry).
"""

from __future__ import annotations

ROUTE_METHOD = "POST"
# The embedding API's native shape, and OpenAI's (clients take `base_url=…/v1`).
NATIVE_ROUTE = "/embed"
OPENAI_BASE_PATH = "/v1"
OPENAI_ROUTE = f"{OPENAI_BASE_PATH}/embeddings"
ROUTES = (NATIVE_ROUTE, OPENAI_ROUTE)

# What the proxy accepts in one request: Cohere's limit of texts per call, and a body well under
# API Gateway's payload limit.
MAX_INPUTS = 96
MAX_BODY_BYTES = 1_000_000

# The proxy Lambda's environment: the backend (facts/identifiers.py BACKENDS) and the SageMaker
# endpoint name or Bedrock model id it calls.
BACKEND_VARIABLE = "EMBED_BACKEND"
TARGET_VARIABLE = "EMBED_TARGET"
# The authorizer Lambda's environment (`httpApiAuth: apiKey`): the secret holding the key.
API_KEY_SECRET_VARIABLE = "EMBED_API_KEY_SECRET_ARN"
