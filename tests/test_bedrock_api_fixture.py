"""The bedrock-runtime fixture speaks the real protocol: boto3 parses its answers and errors."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError


def _invoke(client, model_id: str, body: dict):
    return client.invoke_model(
        modelId=model_id,
        body=json.dumps(body),
        contentType="application/json",
        accept="application/json",
    )


def test_titan_v2_answer_is_read_through_boto3(bedrock_api):
    response = _invoke(bedrock_api.client(), "amazon.titan-embed-text-v2:0", {"inputText": "hi"})
    payload = json.loads(response["body"].read())
    assert len(payload["embedding"]) == 1024
    assert payload["embeddingsByType"]["float"] == payload["embedding"]
    assert response["contentType"] == "application/json"


def test_model_id_with_a_colon_arrives_decoded(bedrock_api):
    _invoke(bedrock_api.client(), "cohere.embed-v4:0", {"texts": ["a"], "input_type": "clustering"})
    assert bedrock_api.calls[-1].model_id == "cohere.embed-v4:0"


def test_same_text_gives_the_same_vector(bedrock_api):
    client = bedrock_api.client()
    first = json.loads(
        _invoke(client, "amazon.titan-embed-text-v1", {"inputText": "x y"})["body"].read()
    )
    again = json.loads(
        _invoke(client, "amazon.titan-embed-text-v1", {"inputText": "x y"})["body"].read()
    )
    assert first["embedding"] == again["embedding"]


def test_cohere_v3_without_embedding_types_answers_embeddings_floats(bedrock_api):
    body = {"texts": ["a", "b"], "input_type": "search_query"}
    payload = json.loads(
        _invoke(bedrock_api.client(), "cohere.embed-english-v3", body)["body"].read()
    )
    assert payload["response_type"] == "embeddings_floats"
    assert len(payload["embeddings"]) == 2


def test_extraneous_key_is_a_validation_exception(bedrock_api):
    with pytest.raises(ClientError) as caught:
        _invoke(
            bedrock_api.client(),
            "amazon.titan-embed-text-v1",
            {"inputText": "a", "normalize": True},
        )
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "extraneous key [normalize]" in error["Message"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_unknown_model_is_a_validation_exception(bedrock_api):
    with pytest.raises(ClientError, match="model identifier is invalid"):
        _invoke(bedrock_api.client(), "amazon.nope-v1", {"inputText": "a"})


def test_queued_throttling_is_a_429_throttling_exception(bedrock_api):
    bedrock_api.fail_next("ThrottlingException", "Too many requests, please wait")
    with pytest.raises(ClientError) as caught:
        _invoke(
            bedrock_api.client(retries={"total_max_attempts": 1}),
            "amazon.titan-embed-text-v1",
            {"inputText": "a"},
        )
    assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429


def test_boto3_retries_through_a_single_throttle(bedrock_api):
    bedrock_api.fail_next("ThrottlingException")
    client = bedrock_api.client(retries={"max_attempts": 3, "mode": "standard"})
    response = _invoke(client, "amazon.titan-embed-text-v1", {"inputText": "a"})
    assert len(json.loads(response["body"].read())["embedding"]) == 1536
    assert len(bedrock_api.calls) == 2


def test_unsigned_request_is_access_denied(bedrock_api):
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    client = boto3.client(
        "bedrock-runtime",
        endpoint_url=bedrock_api.url,
        region_name=bedrock_api.region,
        config=Config(signature_version=UNSIGNED),
    )
    with pytest.raises(ClientError) as caught:
        _invoke(client, "amazon.titan-embed-text-v1", {"inputText": "a"})
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
