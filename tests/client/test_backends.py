"""The client backends, each over its real protocol on 127.0.0.1.

- HttpBackend against the local endpoint serving the reference model.
- SageMakerBackend through real boto3: against moto's sagemaker-runtime (canned bodies) for the
  happy path, and against `ScriptedApi`, a few lines speaking sagemaker-runtime's rest-json wire
  format, for what moto cannot answer (ModelError from the container, ThrottlingException).
- BedrockBackend against the bedrock-runtime fixture; HttpApiBackend against `ScriptedApi`.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import pytest

from embedding_client.backend import (
    EndpointError,
    InputTooLargeError,
    ResponseFormatError,
    TargetError,
)
from embedding_client.backend_bedrock import BedrockBackend
from embedding_client.backend_http_api import HttpApiBackend
from embedding_client.backend_local import HttpBackend
from embedding_client.backend_sagemaker import SageMakerBackend
from embedding_client.batching import parse_embeddings, plan_batches, request_body
from embedding_client.serve import LocalEndpoint
from embedding_client.stack_outputs import backend_for_stack
from embedding_client.transport import post_with_retries
from facts.embedding_api import EmbeddingOptions
from tests.fixtures.aws import FAKE_CREDENTIALS, AwsEndpoint, queue_sagemaker_results
from tests.support.local_http import LocalHttpServer
from tests.support.models import DIMENSIONS

REGION = "us-east-1"


# ---------------------------------------------------------------------------------------------
# A scripted HTTP server speaking whatever the test queues, recording what it received


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class ScriptedApi:
    url: str = ""
    answers: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, status: int, body: dict | bytes, headers: dict[str, str] | None = None):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        with self.lock:
            self.answers.append(
                (status, {"Content-Type": "application/json", **(headers or {})}, raw)
            )

    def sagemaker_error(self, status: int, code: str, fields: dict) -> None:
        """An error exactly as sagemaker-runtime sends one (rest-json: x-amzn-ErrorType + JSON)."""
        self.answer(status, fields, {"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/"})

    def embeddings(self, count: int, dimensions: int = 3, model: str = "m") -> None:
        vectors = [[float(i + 1)] * dimensions for i in range(count)]
        self.answer(200, {"embeddings": vectors, "model": model, "dimensions": dimensions})


@pytest.fixture
def scripted() -> Iterator[ScriptedApi]:
    api = ScriptedApi()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):  # quiet
            pass

        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with api.lock:
                api.received.append(Received(self.path, dict(self.headers.items()), body))
                status, headers, raw = api.answers.pop(0) if api.answers else (500, {}, b"{}")
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    with LocalHttpServer(Handler) as server:
        api.url = server.url
        yield api


@pytest.fixture
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture
def local_endpoint(reference_endpoint: LocalEndpoint) -> LocalEndpoint:
    return reference_endpoint


def sagemaker_inputs(received: Received) -> list[str]:
    return json.loads(received.body)["inputs"]


# ---------------------------------------------------------------------------------------------
# Batching and response checks


def test_batches_hold_at_most_max_texts_in_order():
    texts = [f"t{i}" for i in range(7)]
    batches = plan_batches(texts, max_texts=3, max_body_bytes=4_000_000)
    assert batches == [["t0", "t1", "t2"], ["t3", "t4", "t5"], ["t6"]]


def test_batches_keep_every_request_body_under_the_byte_limit():
    texts = ["é" * 300, "b" * 500, "c" * 100, "d" * 900, "e"]
    limit = 1200
    batches = plan_batches(texts, max_texts=100, max_body_bytes=limit)
    assert [text for batch in batches for text in batch] == texts
    for batch in batches:
        assert len(request_body(batch)) <= limit
    assert len(batches) > 1


def test_a_single_text_over_the_byte_limit_is_refused_naming_it():
    with pytest.raises(InputTooLargeError, match="text 1 is 5000 bytes"):
        plan_batches(["ok", "x" * 5000], max_texts=10, max_body_bytes=1000)


def test_response_with_fewer_vectors_than_texts_is_a_format_error():
    body = json.dumps({"embeddings": [[1.0]], "dimensions": 1, "model": "m"})
    with pytest.raises(ResponseFormatError, match="1 vectors for 2 texts"):
        parse_embeddings(body, 2, "target")


def test_response_whose_vectors_disagree_with_dimensions_is_a_format_error():
    body = json.dumps({"embeddings": [[1.0, 2.0]], "dimensions": 3, "model": "m"})
    with pytest.raises(ResponseFormatError, match="3 values"):
        parse_embeddings(body, 1, "target")


def test_response_that_is_not_json_is_a_format_error():
    with pytest.raises(ResponseFormatError, match="not JSON"):
        parse_embeddings(b"<html>", 1, "target")


# ---------------------------------------------------------------------------------------------
# HttpBackend → local endpoint


def test_http_backend_embeds_through_the_local_endpoint(local_endpoint):
    result = HttpBackend(local_endpoint.url).embed(["a cat", "a dog"])
    assert (len(result.vectors), result.dimensions) == (2, DIMENSIONS)
    assert all(abs(sum(v * v for v in vector) - 1) < 1e-4 for vector in result.vectors)


def test_http_backend_batches_give_the_same_vectors_as_one_request(local_endpoint):
    texts = [f"sentence {i}" for i in range(5)]
    whole = HttpBackend(local_endpoint.url).embed(texts)
    batched = HttpBackend(local_endpoint.url, batch_size=2).embed(texts)
    for a, b in zip(whole.vectors, batched.vectors, strict=True):
        assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-5


def test_http_backend_reports_the_endpoints_error_verbatim(local_endpoint):
    backend = HttpBackend(local_endpoint.url)
    with pytest.raises(EndpointError) as raised:
        backend.embed(["word " * 400], EmbeddingOptions(truncate=False))
    assert raised.value.status == 400 and raised.value.is_client_error
    assert "longer than the max_seq_length of 256 tokens" in raised.value.message


def test_http_backend_reports_an_unreachable_endpoint():
    with pytest.raises(EndpointError, match="cannot connect") as raised:
        HttpBackend("http://127.0.0.1:9").embed(["a"])
    assert raised.value.status is None and not raised.value.is_client_error


def test_http_backend_reports_an_endpoint_that_does_not_answer_in_time():
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(EndpointError, match="no answer within 0.5 s"):
            HttpBackend(url, timeout=0.5).embed(["a"])


def test_http_posts_retry_503_and_429_with_backoff_then_succeed(scripted):
    scripted.answer(503, {"message": "loading"})
    scripted.answer(429, {"message": "slow down"})
    scripted.embeddings(1)
    slept: list[float] = []

    def factory():
        return urllib.request.Request(f"{scripted.url}/invocations", data=b"{}", method="POST")

    raw = post_with_retries(factory, "t", sleep=slept.append)
    assert json.loads(raw)["dimensions"] == 3
    assert len(slept) == 2 and len(scripted.received) == 3


def test_http_posts_give_up_after_the_last_attempt_with_the_last_error(scripted):
    for _ in range(3):
        scripted.answer(503, {"message": "still loading"})

    def factory():
        return urllib.request.Request(f"{scripted.url}/invocations", data=b"{}", method="POST")

    with pytest.raises(EndpointError, match="still loading"):
        post_with_retries(factory, "t", attempts=3, sleep=lambda _: None)


# ---------------------------------------------------------------------------------------------
# SageMakerBackend → sagemaker-runtime


def test_sagemaker_backend_reads_the_endpoints_response_via_moto(aws: AwsEndpoint):
    body = {"embeddings": [[0.6, 0.8], [1.0, 0.0]], "model": "org/name", "dimensions": 2}
    queue_sagemaker_results(aws, json.dumps(body))
    backend = SageMakerBackend(f"ep-{uuid.uuid4().hex[:8]}", aws.region, endpoint_url=aws.url)
    # moto answers from its queue once per distinct request body, so the texts are unique.
    result = backend.embed([f"a {backend.endpoint_name}", f"b {backend.endpoint_name}"])
    assert result.vectors == [[0.6, 0.8], [1.0, 0.0]]
    assert (result.dimensions, result.model) == (2, "org/name")


def test_sagemaker_backend_sends_the_inference_contract_in_batches(scripted, fake_credentials):
    scripted.embeddings(2)
    scripted.embeddings(2)
    scripted.embeddings(1)
    backend = SageMakerBackend("my-ep", REGION, endpoint_url=scripted.url, batch_size=2)
    result = backend.embed(["a", "b", "c", "d", "e"], EmbeddingOptions(normalize=False))
    assert len(result.vectors) == 5
    assert [r.path for r in scripted.received] == ["/endpoints/my-ep/invocations"] * 3
    assert [sagemaker_inputs(r) for r in scripted.received] == [["a", "b"], ["c", "d"], ["e"]]
    first = json.loads(scripted.received[0].body)
    assert first["parameters"] == {"normalize": False}
    assert scripted.received[0].headers["Content-Type"] == "application/json"


def test_sagemaker_model_error_reports_the_containers_status_and_message(
    scripted, fake_credentials
):
    container_message = '{"code": 400, "type": "ClientError", "message": "\\"inputs\\" is empty"}'
    scripted.sagemaker_error(
        424,
        "ModelError",
        {
            "Message": "Received client error (400) from primary with message ...",
            "OriginalStatusCode": 400,
            "OriginalMessage": container_message,
            "LogStreamArn": "arn:aws:logs:us-east-1:123:log-group:/aws/sagemaker/Endpoints/x",
        },
    )
    backend = SageMakerBackend("my-ep", REGION, endpoint_url=scripted.url)
    with pytest.raises(EndpointError) as raised:
        backend.embed(["a"])
    assert raised.value.status == 400 and raised.value.code == "ModelError"
    assert raised.value.message == '"inputs" is empty'
    assert raised.value.is_client_error


def test_sagemaker_throttling_is_retried_by_botocore_then_succeeds(scripted, fake_credentials):
    for _ in range(2):
        scripted.sagemaker_error(400, "ThrottlingException", {"message": "Rate exceeded"})
    scripted.embeddings(1)
    result = SageMakerBackend("my-ep", REGION, endpoint_url=scripted.url).embed(["a"])
    assert len(result.vectors) == 1
    assert len(scripted.received) == 3


def test_sagemaker_throttling_after_the_last_attempt_is_a_server_side_failure(
    scripted, fake_credentials
):
    for _ in range(2):
        scripted.sagemaker_error(400, "ThrottlingException", {"message": "Rate exceeded"})
    backend = SageMakerBackend("my-ep", REGION, endpoint_url=scripted.url, max_attempts=2)
    with pytest.raises(EndpointError) as raised:
        backend.embed(["a"])
    assert raised.value.code == "ThrottlingException" and "Rate exceeded" in str(raised.value)
    assert not raised.value.is_client_error


def test_sagemaker_unknown_endpoint_error_is_reported_verbatim(scripted, fake_credentials):
    message = "Endpoint my-ep of account 123456789012 not found."
    scripted.sagemaker_error(400, "ValidationError", {"message": message})
    with pytest.raises(EndpointError) as raised:
        SageMakerBackend("my-ep", REGION, endpoint_url=scripted.url).embed(["a"])
    assert raised.value.message == message and raised.value.is_client_error


def test_sagemaker_without_credentials_is_a_target_error(scripted, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(TargetError, match="credentials"):
        SageMakerBackend("my-ep", REGION, endpoint_url=scripted.url).embed(["a"])
    assert scripted.received == []


# ---------------------------------------------------------------------------------------------
# BedrockBackend → bedrock-runtime fixture


def test_bedrock_backend_embeds_with_titan_v2(bedrock_api, fake_credentials):
    backend = BedrockBackend("amazon.titan-embed-text-v2:0", REGION, endpoint_url=bedrock_api.url)
    result = backend.embed(["a cat sat", "a cat sat down"])
    assert (len(result.vectors), result.dimensions) == (2, 1024)
    assert result.model == "amazon.titan-embed-text-v2:0"
    assert len(bedrock_api.calls) == 2  # Titan takes one text per call


def test_bedrock_backend_sends_cohere_texts_in_one_call(bedrock_api, fake_credentials):
    backend = BedrockBackend("cohere.embed-multilingual-v3", REGION, endpoint_url=bedrock_api.url)
    result = backend.embed(["eins", "zwei", "drei"])
    assert (len(result.vectors), result.dimensions) == (3, 1024)
    assert len(bedrock_api.calls) == 1


def test_bedrock_throttling_is_retried_then_succeeds(bedrock_api, fake_credentials):
    bedrock_api.fail_next("ThrottlingException", "Too many requests", times=1)
    backend = BedrockBackend("amazon.titan-embed-text-v2:0", REGION, endpoint_url=bedrock_api.url)
    assert len(backend.embed(["a"]).vectors) == 1


def test_bedrock_access_denied_is_reported_verbatim(bedrock_api, fake_credentials):
    message = "You don't have access to the model with the specified model ID."
    bedrock_api.fail_next("AccessDeniedException", message)
    backend = BedrockBackend("amazon.titan-embed-text-v2:0", REGION, endpoint_url=bedrock_api.url)
    with pytest.raises(EndpointError) as raised:
        backend.embed(["a"])
    assert raised.value.message == message and raised.value.status == 403


def test_bedrock_unknown_model_is_refused_before_any_call(bedrock_api, fake_credentials):
    backend = BedrockBackend("acme.embed-v9", REGION, endpoint_url=bedrock_api.url)
    with pytest.raises(InputTooLargeError, match="acme.embed-v9"):
        backend.embed(["a"])
    assert bedrock_api.calls == []


# ---------------------------------------------------------------------------------------------
# HttpApiBackend → SigV4-signed POST


def test_http_api_backend_signs_for_execute_api_and_reads_the_proxy_answer(
    scripted, fake_credentials
):
    scripted.embeddings(2, dimensions=4)
    result = HttpApiBackend(f"{scripted.url}/embed", "eu-west-1").embed(["a", "b"])
    assert (len(result.vectors), result.dimensions) == (2, 4)
    received = scripted.received[0]
    authorization = received.headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert "/eu-west-1/execute-api/aws4_request" in authorization
    assert received.path == "/embed" and sagemaker_inputs(received) == ["a", "b"]


def test_http_api_backend_splits_at_the_proxys_96_text_limit(scripted, fake_credentials):
    scripted.embeddings(96)
    scripted.embeddings(4)
    backend = HttpApiBackend(f"{scripted.url}/embed", REGION, batch_size=500)
    assert len(backend.embed([f"t{i}" for i in range(100)]).vectors) == 100
    assert [len(sagemaker_inputs(r)) for r in scripted.received] == [96, 4]


# ---------------------------------------------------------------------------------------------
# Stack outputs → backend


def test_sagemaker_stack_outputs_build_a_sagemaker_backend():
    outputs = {"backend": "sagemaker", "endpointName": "ep-dev", "region": "eu-west-1"}
    backend = backend_for_stack(outputs)
    assert isinstance(backend, SageMakerBackend)
    assert (backend.endpoint_name, backend.region) == ("ep-dev", "eu-west-1")


def test_bedrock_stack_outputs_build_a_bedrock_backend():
    outputs = {"backend": "bedrock", "bedrockModelId": "cohere.embed-v4:0", "region": "us-west-2"}
    backend = backend_for_stack(outputs)
    assert isinstance(backend, BedrockBackend) and backend.model_id == "cohere.embed-v4:0"


def test_stack_outputs_with_http_api_can_use_it():
    outputs = {"backend": "sagemaker", "region": "eu-west-1", "httpApiUrl": "https://x/embed"}
    backend = backend_for_stack(outputs, use_http_api=True)
    assert isinstance(backend, HttpApiBackend) and backend.url == "https://x/embed"


def test_missing_stack_output_is_named():
    with pytest.raises(TargetError, match="'endpointName' is missing"):
        backend_for_stack({"backend": "sagemaker", "region": "eu-west-1"})


def test_unknown_backend_output_lists_the_known_ones():
    with pytest.raises(TargetError, match="'sagemaker' or 'bedrock'"):
        backend_for_stack({"backend": "vertex", "region": "eu-west-1"})
