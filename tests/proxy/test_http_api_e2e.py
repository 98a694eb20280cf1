"""Clients → a local stand-in for API Gateway → the proxy handler → the Bedrock fixture, moto's
sagemaker-runtime, or the local endpoint serving the real model through SageMaker Runtime's API.

The stand-in does what the HTTP API does for `POST /embed` and `POST /v1/embeddings`: with IAM
auth it checks the SigV4 signature (service `execute-api`) with botocore's own signer; with API-key
auth it runs the real authorizer Lambda (proxy/authorizer.py, its secret in moto's Secrets
Manager) on the request's headers. It answers 403 when either refuses, and turns the request into
a payload-format-2.0 event for the proxy handler.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from embedding_client.backend import EndpointError
from embedding_client.backend_http_api import HttpApiBackend
from facts.embedding_api import decode_vector
from proxy import authorizer as proxy_authorizer
from proxy import handler as proxy_handler
from tests.fixtures.aws import queue_sagemaker_results
from tests.support.local_http import LocalHttpServer

REGION = "us-east-1"
CREDENTIALS = Credentials("testing", "testing")


def _signature_is_valid(method: str, url: str, headers: dict[str, str], body: bytes) -> bool:
    authorization = headers.get("Authorization", "")
    if f"/{REGION}/execute-api/aws4_request" not in authorization:
        return False
    signed_names = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    lowered = {name.lower(): value for name, value in headers.items()}
    request = AWSRequest(
        method=method, url=url, data=body, headers={n: lowered[n] for n in signed_names}
    )
    request.context["timestamp"] = lowered["x-amz-date"]
    signer = SigV4Auth(CREDENTIALS, "execute-api", REGION)
    expected = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request
    )
    return authorization.endswith(f"Signature={expected}")


class _ApiGateway(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # "iam", or "apiKey" (the authorizer reads EMBED_API_KEY_SECRET_ARN from the environment).
    auth = "iam"

    def log_message(self, format: str, *args: object) -> None:
        return

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorized(self, url: str, body: bytes) -> bool:
        headers = dict(self.headers.items())
        if self.auth == "iam":
            return _signature_is_valid("POST", url, headers, body)
        event = {"type": "REQUEST", "headers": {k.lower(): v for k, v in headers.items()}}
        return proxy_authorizer.handler(event, None)["isAuthorized"]

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = f"http://{self.headers['Host']}{self.path}"
        if self.path not in ("/embed", "/v1/embeddings"):
            self._reply(404, b'{"message":"Not Found"}', {"content-type": "application/json"})
            return
        if not self._authorized(url, body):
            self._reply(403, b'{"message":"Forbidden"}', {"content-type": "application/json"})
            return
        event = {
            "version": "2.0",
            "routeKey": f"POST {self.path}",
            "rawPath": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("utf-8"),
            "isBase64Encoded": False,
            "requestContext": {"http": {"method": "POST", "path": self.path}},
        }
        answer = proxy_handler.handler(event, None)
        self._reply(answer["statusCode"], answer["body"].encode(), answer["headers"])


@pytest.fixture
def api_gateway() -> Iterator[str]:
    """The stand-in's `/embed` URL (what the stack exports as httpApiUrl), with IAM auth."""
    yield from _serve(_ApiGateway)


def _serve(handler: type[_ApiGateway]) -> Iterator[str]:
    with LocalHttpServer(handler) as server:
        yield f"{server.url}/embed"


@pytest.fixture
def credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS.secret_key)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_REGION", REGION)
    proxy_handler._cached_client.cache_clear()
    yield
    proxy_handler._cached_client.cache_clear()


def test_client_gets_bedrock_vectors_through_the_http_api(
    api_gateway, credentials, bedrock_api, monkeypatch
):
    monkeypatch.setenv("EMBED_BACKEND", "bedrock")
    monkeypatch.setenv("EMBED_TARGET", "cohere.embed-english-v3")
    monkeypatch.setenv("AWS_ENDPOINT_URL", bedrock_api.url)
    result = HttpApiBackend(api_gateway, REGION).embed(["a cat sat", "a dog ran", "stocks fell"])
    assert (result.model, result.dimensions, len(result.vectors)) == (
        "cohere.embed-english-v3",
        1024,
        3,
    )
    assert len(bedrock_api.calls) == 1  # one Cohere call for the whole batch


def test_client_gets_sagemaker_vectors_through_the_http_api(
    api_gateway, credentials, aws, monkeypatch
):
    monkeypatch.setenv("EMBED_BACKEND", "sagemaker")
    monkeypatch.setenv("EMBED_TARGET", f"embed-{uuid.uuid4().hex[:8]}")
    answer = {"embeddings": [[0.6, 0.8], [0.0, 1.0]], "model": "org/m", "dimensions": 2}
    queue_sagemaker_results(aws, json.dumps(answer))
    texts = [f"first {uuid.uuid4().hex}", f"second {uuid.uuid4().hex}"]
    result = HttpApiBackend(api_gateway, REGION).embed(texts)
    assert result.vectors == [[0.6, 0.8], [0.0, 1.0]]
    assert (result.model, result.dimensions) == ("org/m", 2)


def test_proxy_bad_request_reaches_the_client_verbatim(
    api_gateway, credentials, bedrock_api, monkeypatch
):
    monkeypatch.setenv("EMBED_BACKEND", "bedrock")
    monkeypatch.setenv("EMBED_TARGET", "amazon.titan-embed-text-v2:0")
    monkeypatch.setenv("AWS_ENDPOINT_URL", bedrock_api.url)
    bedrock_api.fail_next("ValidationException", "Input is too long for requested model.")
    with pytest.raises(EndpointError) as caught:
        HttpApiBackend(api_gateway, REGION).embed(["a"])
    assert caught.value.status == 400
    assert "Input is too long" in str(caught.value)


def test_request_signed_with_other_credentials_is_forbidden(
    api_gateway, credentials, bedrock_api, monkeypatch
):
    monkeypatch.setenv("EMBED_BACKEND", "bedrock")
    monkeypatch.setenv("EMBED_TARGET", "amazon.titan-embed-text-v2:0")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-right-secret")
    with pytest.raises(EndpointError) as caught:
        HttpApiBackend(api_gateway, REGION).embed(["a"])
    assert caught.value.status == 403
    assert bedrock_api.calls == []


# --- API-key auth and the OpenAI route, with clients nobody here wrote --------------------------


class _KeyedApiGateway(_ApiGateway):
    auth = "apiKey"


@pytest.fixture
def api_key(api_key_secret, credentials) -> str:
    """The stack's key in moto's Secrets Manager, as the authorizer Lambda finds it."""
    return api_key_secret.key


@pytest.fixture
def keyed_api(api_key) -> Iterator[str]:
    """The stand-in's base URL with API-key auth."""
    for url in _serve(_KeyedApiGateway):
        yield url.removesuffix("/embed")


@pytest.fixture
def proxy_to_the_local_endpoint(reference_endpoint, monkeypatch) -> None:
    """The proxy's SageMaker backend reaches the local endpoint through SageMaker Runtime's API."""
    monkeypatch.setenv("EMBED_BACKEND", "sagemaker")
    monkeypatch.setenv("EMBED_TARGET", "embedding-endpoint-dev")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", reference_endpoint.url)
    proxy_handler._cached_client.cache_clear()


def _reference_vectors(texts, **encode):
    from sentence_transformers import SentenceTransformer

    from tests.support.models import REFERENCE_MODEL_DIR

    model = SentenceTransformer(str(REFERENCE_MODEL_DIR), device="cpu")
    return model.encode(texts, normalize_embeddings=True, **encode)


def _cosines(ours, theirs):
    import numpy as np

    ours = np.asarray(ours, dtype=np.float64)
    theirs = np.asarray(theirs, dtype=np.float64)
    return (ours * theirs).sum(axis=1) / (
        np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1)
    )


@pytest.mark.parametrize("encoding_format", ["float", "base64"])
def test_openai_sdk_through_the_keyed_api_gets_sentence_transformers_vectors(
    keyed_api, api_key, proxy_to_the_local_endpoint, encoding_format
):
    from openai import OpenAI

    client = OpenAI(base_url=f"{keyed_api}/v1", api_key=api_key, max_retries=0)
    texts = ["A man is eating food.", "A man is riding a horse."]
    answer = client.embeddings.create(
        input=texts, model="embedding-endpoint", encoding_format=encoding_format
    )
    assert [item.index for item in answer.data] == [0, 1]
    assert answer.usage.prompt_tokens > 0
    # Asked for explicitly, base64 reaches the caller as sent: little-endian float32.
    vectors = [decode_vector(item.embedding, "vector") for item in answer.data]
    assert _cosines(vectors, _reference_vectors(texts)).min() >= 0.9999


def test_openai_sdk_dimensions_through_the_api_match_truncate_dim(
    keyed_api, api_key, proxy_to_the_local_endpoint
):
    from openai import OpenAI

    client = OpenAI(base_url=f"{keyed_api}/v1", api_key=api_key, max_retries=0)
    texts = ["A man is eating food.", "Stocks fell sharply."]
    answer = client.embeddings.create(input=texts, model="m", dimensions=64)
    vectors = [item.embedding for item in answer.data]
    assert {len(vector) for vector in vectors} == {64}
    assert _cosines(vectors, _reference_vectors(texts, truncate_dim=64)).min() >= 0.9999


def test_openai_sdk_with_a_wrong_key_is_refused(keyed_api, api_key, proxy_to_the_local_endpoint):
    from openai import OpenAI, PermissionDeniedError

    client = OpenAI(base_url=f"{keyed_api}/v1", api_key="not-the-key", max_retries=0)
    with pytest.raises(PermissionDeniedError):
        client.embeddings.create(input=["a"], model="m")


def test_openai_sdk_reaches_bedrock_through_the_keyed_api(
    keyed_api, api_key, bedrock_api, monkeypatch
):
    from openai import OpenAI

    monkeypatch.setenv("EMBED_BACKEND", "bedrock")
    monkeypatch.setenv("EMBED_TARGET", "amazon.titan-embed-text-v2:0")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", bedrock_api.url)
    proxy_handler._cached_client.cache_clear()
    client = OpenAI(base_url=f"{keyed_api}/v1", api_key=api_key, max_retries=0)
    answer = client.embeddings.create(input=["a cat sat", "a dog ran"], model="m", dimensions=256)
    assert [len(item.embedding) for item in answer.data] == [256, 256]
    assert answer.model == "amazon.titan-embed-text-v2:0"
    assert answer.usage.prompt_tokens > 0


def test_openai_error_from_bedrock_names_what_it_supports(
    keyed_api, api_key, bedrock_api, monkeypatch
):
    from openai import BadRequestError, OpenAI

    monkeypatch.setenv("EMBED_BACKEND", "bedrock")
    monkeypatch.setenv("EMBED_TARGET", "amazon.titan-embed-text-v2:0")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", bedrock_api.url)
    proxy_handler._cached_client.cache_clear()
    client = OpenAI(base_url=f"{keyed_api}/v1", api_key=api_key, max_retries=0)
    with pytest.raises(BadRequestError, match="256, 512, 1024"):
        client.embeddings.create(input=["a"], model="m", dimensions=64)


def test_langchain_openai_embeddings_through_the_keyed_api(
    keyed_api, api_key, proxy_to_the_local_endpoint
):
    langchain_openai = pytest.importorskip("langchain_openai")
    embeddings = langchain_openai.OpenAIEmbeddings(
        base_url=f"{keyed_api}/v1",
        api_key=api_key,
        model="embedding-endpoint",
        check_embedding_ctx_length=False,  # it would count tokens with tiktoken (a download)
    )
    texts = ["A man is eating food.", "The girl is carrying a baby."]
    vectors = embeddings.embed_documents(texts)
    assert _cosines(vectors, _reference_vectors(texts)).min() >= 0.9999
