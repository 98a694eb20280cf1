"""The proxy Lambda handler end to end, through real boto3 clients: SageMaker against moto's
sagemaker-runtime (canned results), Bedrock against the InvokeModel fixture server."""

from __future__ import annotations

import json
import math
import uuid

import pytest

from facts.embedding_api import INTERNAL_ERROR_MESSAGE
from proxy import handler as proxy_handler
from tests.fixtures.aws import queue_sagemaker_results

TITAN_V2 = "amazon.titan-embed-text-v2:0"


def _event(body: object) -> dict:
    return {
        "version": "2.0",
        "routeKey": "POST /embed",
        "rawPath": "/embed",
        "body": json.dumps(body),
        "isBase64Encoded": False,
        "requestContext": {"http": {"method": "POST", "path": "/embed"}},
    }


def _call(body: object) -> tuple[int, dict, dict]:
    response = proxy_handler.handler(_event(body), None)
    return response["statusCode"], json.loads(response["body"]), response["headers"]


def _texts(count: int) -> list[str]:
    """Texts unique to this call: moto caches canned results by request body (it does not see the
    endpoint name), so a repeated body would get an earlier test's answer."""
    tag = uuid.uuid4().hex
    return [f"text {i} {tag}" for i in range(count)]


@pytest.fixture
def sagemaker_proxy(aws, monkeypatch):
    """The handler configured for a fresh (uniquely named) endpoint on moto."""
    endpoint = f"embed-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("EMBED_BACKEND", "sagemaker")
    monkeypatch.setenv("EMBED_TARGET", endpoint)
    monkeypatch.setenv("AWS_REGION", aws.region)
    return aws


@pytest.fixture
def bedrock_proxy(bedrock_api, monkeypatch):
    """The handler configured for Titan v2 on the Bedrock fixture server."""
    for name, value in {
        "EMBED_BACKEND": "bedrock",
        "EMBED_TARGET": TITAN_V2,
        "AWS_ENDPOINT_URL": bedrock_api.url,
        "AWS_REGION": bedrock_api.region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    proxy_handler._cached_client.cache_clear()
    yield bedrock_api
    proxy_handler._cached_client.cache_clear()


def test_sagemaker_answer_is_passed_through(sagemaker_proxy):
    answer = {"embeddings": [[0.6, 0.8], [1.0, 0.0]], "model": "org/m", "dimensions": 2}
    queue_sagemaker_results(sagemaker_proxy, json.dumps(answer))
    status, body, headers = _call({"inputs": _texts(2)})
    assert status == 200
    assert body == {"embeddings": [[0.6, 0.8], [1.0, 0.0]], "model": "org/m", "dimensions": 2}
    assert headers["content-type"] == "application/json"


def test_sagemaker_answer_that_is_not_json_is_a_502(sagemaker_proxy):
    queue_sagemaker_results(sagemaker_proxy, "<html>oops</html>")
    status, body, _ = _call({"inputs": _texts(1)})
    assert status == 502
    assert "not JSON" in body["error"]


def test_sagemaker_answer_with_the_wrong_vector_count_is_a_502(sagemaker_proxy):
    answer = {"embeddings": [[1.0]], "model": "org/m", "dimensions": 1}
    queue_sagemaker_results(sagemaker_proxy, json.dumps(answer))
    status, body, _ = _call({"inputs": _texts(2)})
    assert status == 502
    assert "the answer holds 1 vectors for 2 texts" in body["error"]


def test_bad_request_is_a_400_before_calling_the_endpoint(sagemaker_proxy):
    status, body, _ = _call({"inputs": []})
    assert status == 400
    assert "empty list" in body["error"]


def test_bedrock_answer_has_the_proxy_shape(bedrock_proxy):
    status, body, _ = _call({"inputs": ["a cat", "a dog"]})
    assert status == 200
    assert body["model"] == TITAN_V2
    assert body["dimensions"] == 1024
    assert len(body["embeddings"]) == 2
    # The embedding API's floats: float32 precision (9 significant digits).
    assert all(abs(math.hypot(*v) - 1.0) < 1e-6 for v in body["embeddings"])
    assert [call.model_id for call in bedrock_proxy.calls] == [TITAN_V2, TITAN_V2]


def test_bedrock_dimensions_parameter_reaches_the_model(bedrock_proxy):
    status, body, _ = _call({"inputs": ["a"], "parameters": {"dimensions": 256}})
    assert (status, body["dimensions"]) == (200, 256)


def test_bedrock_dimensions_the_model_lacks_are_a_400(bedrock_proxy):
    status, body, _ = _call({"inputs": ["a"], "parameters": {"dimensions": 300}})
    assert status == 400
    assert "expected one of 256, 512, 1024" in body["error"]
    assert bedrock_proxy.calls == []


def test_bedrock_throttling_is_a_429_with_retry_after(bedrock_proxy):
    # One attempt (facts/proxy_budget.py): the caller retries, after the time it is told.
    bedrock_proxy.fail_next("ThrottlingException", "Too many requests, please wait")
    status, body, headers = _call({"inputs": ["a"]})
    assert status == 429
    assert "ThrottlingException" in body["error"]
    assert headers["retry-after"] == "1"


def test_bedrock_validation_error_is_a_400_with_the_model_message(bedrock_proxy):
    bedrock_proxy.fail_next("ValidationException", "Input is too long for requested model.")
    status, body, _ = _call({"inputs": ["a"]})
    assert status == 400
    assert "Input is too long" in body["error"]


def test_bedrock_access_denied_is_a_502_naming_the_model(bedrock_proxy):
    bedrock_proxy.fail_next("AccessDeniedException", "You don't have access to the model")
    status, body, _ = _call({"inputs": ["a"]})
    assert status == 502
    assert TITAN_V2 in body["error"] and "AccessDeniedException" in body["error"]


ROLE_ARN = "arn:aws:sts::123456789012:assumed-role/embed-proxy-role/embed-proxy"


def test_aws_error_text_is_logged_with_a_request_id_and_never_answered(bedrock_proxy, caplog):
    caplog.set_level("INFO", logger="embed-proxy")
    bedrock_proxy.fail_next("AccessDeniedException", f"User: {ROLE_ARN} is not authorized")
    response = proxy_handler.handler(_event({"inputs": ["a"]}), LambdaContext("req-1234"))
    assert response["statusCode"] == 502
    assert "123456789012" not in response["body"] and "assumed-role" not in response["body"]
    assert "request id req-1234" in json.loads(response["body"])["error"]
    assert response["headers"]["x-request-id"] == "req-1234"
    logged = [json.loads(record.getMessage()) for record in caplog.records]
    assert any(
        ROLE_ARN in line.get("error", "") and line["request_id"] == "req-1234" for line in logged
    )


def test_botocore_text_naming_the_endpoint_url_is_never_answered():
    from botocore.exceptions import EndpointConnectionError

    from proxy.upstream import ProxyTarget, upstream_error

    url = "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/ep/invocations"
    mapped = upstream_error(
        EndpointConnectionError(endpoint_url=url), ProxyTarget(backend="sagemaker", target="ep")
    )
    assert mapped.status == 502
    assert url not in mapped.message
    assert url in mapped.detail


class LambdaContext:
    """What the handler reads of Lambda's context object."""

    def __init__(self, aws_request_id: str) -> None:
        self.aws_request_id = aws_request_id


def test_bedrock_model_timeout_is_a_504(bedrock_proxy):
    bedrock_proxy.fail_next("ModelTimeoutException")
    status, _, _ = _call({"inputs": ["a"]})
    assert status == 504


def test_other_methods_are_refused(bedrock_proxy):
    event = _event({"inputs": ["a"]}) | {"requestContext": {"http": {"method": "GET"}}}
    response = proxy_handler.handler(event, None)
    assert response["statusCode"] == 405


def test_missing_backend_configuration_is_logged_and_answered_as_an_internal_error(
    monkeypatch, caplog
):
    caplog.set_level("INFO", logger="embed-proxy")
    monkeypatch.setenv("EMBED_BACKEND", "openai")
    response = proxy_handler.handler(_event({"inputs": ["a"]}), None)
    assert response["statusCode"] == 500
    message = json.loads(response["body"])["error"]
    assert message.startswith(INTERNAL_ERROR_MESSAGE + " (request id ")
    assert "EMBED_BACKEND is 'openai'" in caplog.text and "openai" not in message


def test_an_unforeseen_failure_is_a_500_in_the_routes_shape_with_a_request_id(
    sagemaker_proxy, monkeypatch
):
    def broken(*args, **kwargs):
        raise KeyError("a path/with/internals")

    monkeypatch.setattr(proxy_handler, "parse_request", broken)
    event = _event({"input": "a"}) | {"rawPath": "/v1/embeddings"}
    response = proxy_handler.handler(event, None)
    error = json.loads(response["body"])["error"]
    assert response["statusCode"] == 500 and error["type"] == "server_error"
    assert "internals" not in error["message"] and response["headers"]["x-request-id"]


def test_logs_never_contain_the_texts(bedrock_proxy, caplog):
    caplog.set_level("INFO", logger="embed-proxy")
    _call({"inputs": ["a very private sentence"]})
    assert caplog.records, "the handler logs one line per request"
    assert all("private" not in record.getMessage() for record in caplog.records)


def test_sagemaker_model_error_with_a_4xx_from_the_container_is_a_400():
    from botocore.exceptions import ClientError

    from proxy.upstream import ProxyTarget, upstream_error

    error = ClientError(
        {
            "Error": {"Code": "ModelError", "Message": "Received client error (400)"},
            "OriginalStatusCode": 400,
            "OriginalMessage": "inputs[0] is too long",
        },
        "InvokeEndpoint",
    )
    mapped = upstream_error(error, ProxyTarget(backend="sagemaker", target="ep"))
    assert mapped.status == 400
    assert "inputs[0] is too long" in mapped.message


def test_the_model_servers_error_body_reaches_the_caller_as_its_message_alone():
    from botocore.exceptions import ClientError

    from proxy.upstream import ProxyTarget, upstream_error

    body = {"code": 400, "type": "InternalServerException", "message": '"dimensions" is 9999'}
    error = ClientError(
        {
            "Error": {"Code": "ModelError", "Message": "Received client error (400)"},
            "OriginalStatusCode": 400,
            "OriginalMessage": json.dumps(body),
        },
        "InvokeEndpoint",
    )
    mapped = upstream_error(error, ProxyTarget(backend="sagemaker", target="ep"))
    assert (mapped.status, mapped.message) == (400, '"dimensions" is 9999')
    assert json.dumps(body) in mapped.detail


def test_sagemaker_model_error_with_a_5xx_from_the_container_is_a_502():
    from botocore.exceptions import ClientError

    from proxy.upstream import ProxyTarget, upstream_error

    error = ClientError(
        {
            "Error": {"Code": "ModelError", "Message": "Received server error (500)"},
            "OriginalStatusCode": 500,
            "OriginalMessage": "CUDA? no: out of memory",
        },
        "InvokeEndpoint",
    )
    assert upstream_error(error, ProxyTarget(backend="sagemaker", target="ep")).status == 502
