"""Each Bedrock embedding model's request body and response parsing, and `embed_texts` end to end
through a real boto3 bedrock-runtime client against the InvokeModel fixture server."""

from __future__ import annotations

import json
import math

import pytest

from facts.bedrock_formats import (
    BedrockRequestError,
    BedrockResponseError,
    embed_texts,
    parse_response,
    request_bodies,
)
from facts.bedrock_models import MODELS
from facts.embedding_api import EmbeddingOptions

TITAN_V2 = "amazon.titan-embed-text-v2:0"
TITAN_V1 = "amazon.titan-embed-text-v1"
TITAN_MM = "amazon.titan-embed-image-v1"
COHERE_EN = "cohere.embed-english-v3"
COHERE_V4 = "cohere.embed-v4:0"


def _norm(vector: list[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (_norm(a) * _norm(b))


def _invoker(bedrock_api, model_id: str):
    client = bedrock_api.client(retries={"total_max_attempts": 1})

    def invoke(body: bytes) -> bytes:
        response = client.invoke_model(
            modelId=model_id, body=body, contentType="application/json", accept="application/json"
        )
        return response["body"].read()

    return invoke


def test_titan_v2_body_carries_text_normalize_and_dimensions():
    bodies = request_bodies(TITAN_V2, ["hello"], EmbeddingOptions(normalize=False, dimensions=256))
    assert bodies == [{"inputText": "hello", "normalize": False, "dimensions": 256}]


def test_titan_sends_one_request_per_text():
    bodies = request_bodies(TITAN_V1, ["a", "b", "c"])
    assert bodies == [{"inputText": "a"}, {"inputText": "b"}, {"inputText": "c"}]


def test_titan_multimodal_body_sets_output_embedding_length():
    bodies = request_bodies(TITAN_MM, ["a"], EmbeddingOptions(dimensions=384))
    assert bodies == [{"inputText": "a", "embeddingConfig": {"outputEmbeddingLength": 384}}]


def test_cohere_v3_body_batches_96_texts_per_request():
    bodies = request_bodies(COHERE_EN, [f"t{i}" for i in range(100)])
    assert [len(b["texts"]) for b in bodies] == [96, 4]
    assert bodies[0]["input_type"] == "search_document"
    assert bodies[0]["truncate"] == "END"


def test_cohere_v4_body_asks_for_float_embeddings_and_output_dimension():
    (body,) = request_bodies(COHERE_V4, ["a"], EmbeddingOptions(dimensions=512), "search_query")
    assert body == {
        "texts": ["a"],
        "input_type": "search_query",
        "truncate": "RIGHT",
        "embedding_types": ["float"],
        "output_dimension": 512,
    }


def test_unknown_model_is_rejected_with_the_supported_list():
    with pytest.raises(BedrockRequestError, match="expected one of amazon.titan-embed-text-v2:0"):
        request_bodies("anthropic.claude-v2", ["a"])


def test_dimensions_the_model_does_not_offer_are_rejected():
    with pytest.raises(BedrockRequestError, match="expected one of 256, 512, 1024"):
        request_bodies(TITAN_V2, ["a"], EmbeddingOptions(dimensions=768))


def test_unknown_input_type_is_rejected():
    with pytest.raises(BedrockRequestError, match="input_type 'query'"):
        request_bodies(COHERE_EN, ["a"], input_type="query")


def test_empty_input_list_is_rejected():
    with pytest.raises(BedrockRequestError, match="at least one text"):
        request_bodies(TITAN_V2, [])


def test_non_string_input_is_rejected_with_its_index():
    with pytest.raises(BedrockRequestError, match=r"inputs\[1\] must be a string"):
        request_bodies(TITAN_V2, ["a", 3])  # type: ignore[list-item]


def test_text_over_the_model_limit_is_rejected_unless_truncating():
    long_text = "x" * 2049
    with pytest.raises(BedrockRequestError, match="at most 2048"):
        request_bodies(COHERE_EN, [long_text], EmbeddingOptions(truncate=False))
    (body,) = request_bodies(COHERE_EN, [long_text])
    assert len(body["texts"][0]) == 2048


def test_titan_response_embedding_is_parsed():
    raw = json.dumps({"embedding": [0.5, 1], "inputTextTokenCount": 2}).encode()
    assert parse_response(TITAN_V2, raw, 1) == [[0.5, 1.0]]


def test_cohere_floats_response_is_parsed():
    raw = {"embeddings": [[1, 2], [3, 4]], "response_type": "embeddings_floats", "id": "x"}
    assert parse_response(COHERE_EN, raw, 2) == [[1.0, 2.0], [3.0, 4.0]]


def test_cohere_by_type_response_is_parsed():
    raw = {
        "embeddings": {"float": [[1, 2]], "int8": [[1, 2]]},
        "response_type": "embeddings_by_type",
    }
    assert parse_response(COHERE_V4, raw, 1) == [[1.0, 2.0]]


def test_response_without_embedding_names_the_keys_it_had():
    with pytest.raises(BedrockResponseError, match=r"no 'embedding' field \(keys: \['message'\]\)"):
        parse_response(TITAN_V1, b'{"message": "nope"}', 1)


def test_response_with_wrong_vector_count_is_an_error():
    with pytest.raises(BedrockResponseError, match="returned 1 vectors for 2 texts"):
        parse_response(COHERE_EN, {"embeddings": [[1.0]]}, 2)


def test_non_json_response_is_an_error():
    with pytest.raises(BedrockResponseError, match="not JSON"):
        parse_response(TITAN_V2, b"<html>", 1)


@pytest.mark.parametrize("model_id", sorted(MODELS))
def test_every_model_returns_unit_vectors_of_its_default_size_through_boto3(bedrock_api, model_id):
    result = embed_texts(_invoker(bedrock_api, model_id), model_id, ["a cat sat", "a dog ran"])
    assert result.model == model_id
    assert result.dimensions == MODELS[model_id].dimensions
    assert len(result.vectors) == 2
    assert all(abs(_norm(v) - 1.0) < 1e-9 for v in result.vectors)


def test_normalize_false_keeps_titan_v1_raw_vectors(bedrock_api):
    result = embed_texts(
        _invoker(bedrock_api, TITAN_V1),
        TITAN_V1,
        ["one two three"],
        EmbeddingOptions(normalize=False),
    )
    assert _norm(result.vectors[0]) > 1.5


def test_titan_v2_normalize_is_delegated_to_the_model(bedrock_api):
    embed_texts(_invoker(bedrock_api, TITAN_V2), TITAN_V2, ["a"], EmbeddingOptions(normalize=True))
    assert bedrock_api.calls[-1].body["normalize"] is True


def test_requested_dimensions_reach_the_model(bedrock_api):
    result = embed_texts(
        _invoker(bedrock_api, COHERE_V4), COHERE_V4, ["a", "b"], EmbeddingOptions(dimensions=256)
    )
    assert result.dimensions == 256


def test_similar_texts_are_closer_than_unrelated_ones(bedrock_api):
    result = embed_texts(
        _invoker(bedrock_api, TITAN_V2),
        TITAN_V2,
        ["the cat sat on the mat", "a cat sat on a mat", "stock markets fell sharply"],
    )
    close, far = result.vectors[0], result.vectors[2]
    assert _cosine(close, result.vectors[1]) > _cosine(close, far)


def test_cohere_batches_become_one_call_per_96_texts(bedrock_api):
    texts = [f"text number {i}" for i in range(97)]
    result = embed_texts(_invoker(bedrock_api, COHERE_EN), COHERE_EN, texts)
    assert len(result.vectors) == 97
    assert [len(call.body["texts"]) for call in bedrock_api.calls] == [96, 1]


def test_truncate_off_asks_cohere_to_fail_on_long_input():
    (v3,) = request_bodies(COHERE_EN, ["a"], EmbeddingOptions(truncate=False))
    (v4,) = request_bodies(COHERE_V4, ["a"], EmbeddingOptions(truncate=False))
    assert (v3["truncate"], v4["truncate"]) == ("NONE", "NONE")


def test_concurrent_calls_keep_the_order_of_the_texts(bedrock_api):
    texts = [f"sentence number {i}" for i in range(20)]
    invoke = _invoker(bedrock_api, TITAN_V1)
    one_by_one = embed_texts(invoke, TITAN_V1, texts)
    concurrent = embed_texts(invoke, TITAN_V1, texts, concurrency=8)
    assert concurrent.vectors == one_by_one.vectors


def test_an_error_in_one_concurrent_call_propagates(bedrock_api):
    from botocore.exceptions import ClientError

    bedrock_api.fail_next("ThrottlingException")
    with pytest.raises(ClientError, match="ThrottlingException"):
        embed_texts(_invoker(bedrock_api, TITAN_V1), TITAN_V1, ["a", "b", "c"], concurrency=3)
