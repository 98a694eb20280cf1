"""The proxy's request rules: every bad request is a BadRequest naming the field."""

from __future__ import annotations

import base64
import json

import pytest

from proxy.request import MAX_INPUTS, BadRequest, EmbedRequest, parse_request


def _event(body: object, *, raw: bool = False, b64: bool = False) -> dict:
    text = body if raw else json.dumps(body)
    if b64:
        text = base64.b64encode(text.encode()).decode()
    return {"body": text, "isBase64Encoded": b64, "requestContext": {"http": {"method": "POST"}}}


def test_a_list_of_texts_with_defaults_is_accepted():
    request = parse_request(_event({"inputs": ["a", "b"]}), "sagemaker")
    assert request == EmbedRequest(texts=("a", "b"), normalize=None, truncate=None)


def test_flags_the_caller_sets_are_kept():
    body = {"inputs": ["a"], "parameters": {"normalize": False, "truncate": True}}
    request = parse_request(_event(body), "sagemaker")
    assert (request.normalize, request.truncate) == (False, True)


def test_a_single_string_becomes_one_text():
    assert parse_request(_event({"inputs": "hello"}), "sagemaker").texts == ("hello",)


def test_base64_body_is_decoded():
    request = parse_request(_event({"inputs": ["a"]}, b64=True), "sagemaker")
    assert request.texts == ("a",)


def test_bedrock_parameters_are_read():
    body = {"inputs": ["a"], "parameters": {"dimensions": 256, "input_type": "search_query"}}
    request = parse_request(_event(body), "bedrock")
    assert (request.dimensions, request.input_type) == (256, "search_query")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "field 'inputs' is required"),
        ({"inputs": []}, "empty list"),
        ({"inputs": 5}, "must be a string or a list of strings, got int"),
        ({"inputs": ["a", None]}, r"inputs\[1\] must be a string"),
        ({"inputs": ["a", "  "]}, r"inputs\[1\] is empty"),
        ({"inputs": ["a"] * (MAX_INPUTS + 1)}, f"at most {MAX_INPUTS}"),
        ({"inputs": ["a"], "extra": 1}, "unknown field 'extra'"),
        ({"inputs": ["a"], "parameters": []}, "'parameters' must be an object"),
        ({"inputs": ["a"], "parameters": {"normalize": "yes"}}, "parameters.normalize must be"),
        ({"inputs": ["a"], "parameters": {"dimensions": 256}}, "unknown parameter 'dimensions'"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_bad_sagemaker_request_names_the_field(body, message):
    with pytest.raises(BadRequest, match=message):
        parse_request(_event(body), "sagemaker")


def test_non_integer_dimensions_are_rejected():
    with pytest.raises(BadRequest, match="parameters.dimensions must be an integer"):
        parse_request(_event({"inputs": ["a"], "parameters": {"dimensions": "256"}}), "bedrock")


def test_invalid_json_is_rejected():
    with pytest.raises(BadRequest, match="not valid JSON"):
        parse_request(_event("{nope", raw=True), "sagemaker")


def test_missing_body_is_rejected():
    with pytest.raises(BadRequest, match="request body is empty"):
        parse_request({"requestContext": {"http": {"method": "POST"}}}, "sagemaker")


def test_bad_base64_is_rejected():
    with pytest.raises(BadRequest, match="does not decode"):
        parse_request({"body": "***", "isBase64Encoded": True}, "sagemaker")
