"""The `embed` client's HttpApiBackend → a local stand-in for API Gateway → the proxy handler →
the Bedrock fixture or moto's sagemaker-runtime.

The stand-in does what the HTTP API does for `POST /embed` with IAM auth: it checks the SigV4
signature (service `execute-api`) with botocore's own signer, answers 403 otherwise, and turns the
request into a payload-format-2.0 event for the Lambda handler.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from embedding_client.backends import EndpointError, HttpApiBackend
from proxy import handler as proxy_handler
from tests.fixtures.aws import queue_sagemaker_results

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

    def log_message(self, format: str, *args: object) -> None:
        return

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = f"http://{self.headers['Host']}{self.path}"
        if self.path != "/embed":
            self._reply(404, b'{"message":"Not Found"}', {"content-type": "application/json"})
            return
        if not _signature_is_valid("POST", url, dict(self.headers.items()), body):
            self._reply(403, b'{"message":"Forbidden"}', {"content-type": "application/json"})
            return
        event = {
            "version": "2.0",
            "routeKey": "POST /embed",
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
    """The stand-in's `/embed` URL (what the stack exports as httpApiUrl)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ApiGateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield f"http://{host}:{port}/embed"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


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
