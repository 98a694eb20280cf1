"""The proxy's request rules: every bad request is a BadRequest naming the field."""

from __future__ import annotations

import base64
import json

import pytest

from facts.embedding_api import EmbeddingOptions
from facts.http_api import MAX_INPUTS, OPENAI_ROUTE
from proxy.request import BadRequest, parse_request


def _event(body: object, *, raw: bool = False, b64: bool = False, path: str = "/embed") -> dict:
    text = body if raw else json.dumps(body)
    if b64:
        text = base64.b64encode(text.encode()).decode()
    return {
        "rawPath": path,
        "body": text,
        "isBase64Encoded": b64,
        "requestContext": {"http": {"method": "POST", "path": path}},
    }


def test_a_list_of_texts_with_defaults_is_accepted():
    parsed = parse_request(_event({"inputs": ["a", "b"]}), "sagemaker")
    assert parsed.request.texts == ("a", "b")
    assert parsed.request.options == EmbeddingOptions()
    assert parsed.request.shape == "native"


def test_every_option_of_the_embedding_api_is_kept():
    parameters = {
        "normalize": False,
        "truncate": True,
        "truncation_direction": "left",
        "prompt_name": "query",
        "dimensions": 64,
        "encoding_format": "base64",
    }
    parsed = parse_request(_event({"inputs": ["a"], "parameters": parameters}), "sagemaker")
    assert parsed.request.options.as_parameters() == {
        name: value for name, value in parameters.items() if name != "truncate"
    }


def test_the_body_is_forwarded_as_received():
    event = _event({"inputs": ["a"], "parameters": {"dimensions": 8}})
    assert parse_request(event, "sagemaker").body == event["body"].encode()


def test_a_single_string_becomes_one_text():
    assert parse_request(_event({"inputs": "hello"}), "sagemaker").request.texts == ("hello",)


def test_base64_body_is_decoded():
    parsed = parse_request(_event({"inputs": ["a"]}, b64=True), "sagemaker")
    assert parsed.request.texts == ("a",)


def test_bedrock_input_type_is_taken_out_of_the_parameters():
    body = {"inputs": ["a"], "parameters": {"dimensions": 256, "input_type": "search_query"}}
    parsed = parse_request(_event(body), "bedrock")
    assert (parsed.request.options.dimensions, parsed.input_type) == (256, "search_query")
    assert "input_type" not in json.loads(parsed.body)["parameters"]


def test_openai_route_takes_openai_requests():
    body = {"input": ["a", "b"], "model": "m", "dimensions": 8, "encoding_format": "base64"}
    parsed = parse_request(_event(body, path=OPENAI_ROUTE), "sagemaker")
    assert parsed.request.shape == "openai"
    assert parsed.request.options == EmbeddingOptions(dimensions=8, encoding_format="base64")


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (OPENAI_ROUTE, {"inputs": ["a"]}, "takes OpenAI's request"),
        ("/embed", {"input": ["a"]}, "OpenAI clients: /v1/embeddings"),
        ("/other", {"inputs": ["a"]}, "no route /other"),
    ],
)
def test_each_route_takes_its_own_shape(path, body, message):
    with pytest.raises(BadRequest, match=message):
        parse_request(_event(body, path=path), "sagemaker")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, 'missing "inputs"'),
        ({"inputs": []}, "empty list"),
        ({"inputs": 5}, "must be a string or a list of strings, got a number"),
        ({"inputs": ["a", None]}, r'"inputs"\[1\] must be a string'),
        ({"inputs": ["a"], "extra": 1}, r"unknown key\(s\) \['extra'\]"),
        ({"inputs": ["a"], "parameters": []}, '"parameters" must be an object'),
        ({"inputs": ["a"], "parameters": {"normalize": "yes"}}, '"normalize" must be true'),
        ({"inputs": ["a"], "parameters": {"input_type": "x"}}, "input_type is a Bedrock"),
        ({"inputs": ["a"], "parameters": {"dimensions": "256"}}, "positive integer"),
        ({"info": True}, "answered by the endpoint itself"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_bad_sagemaker_request_names_the_field(body, message):
    with pytest.raises(BadRequest, match=message):
        parse_request(_event(body), "sagemaker")


def test_an_empty_text_goes_to_a_sagemaker_endpoint_which_embeds_it():
    assert parse_request(_event({"inputs": ["a", "  ", ""]}), "sagemaker").request.texts[1:] == (
        "  ",
        "",
    )


def test_more_texts_than_cohere_takes_are_refused_for_bedrock_only():
    body = {"inputs": ["a"] * (MAX_INPUTS + 1)}
    with pytest.raises(BadRequest, match=f"at most {MAX_INPUTS}"):
        parse_request(_event(body), "bedrock")
    assert len(parse_request(_event(body), "sagemaker").request.texts) == MAX_INPUTS + 1


@pytest.mark.parametrize(("path", "key"), [("/embed", "inputs"), (OPENAI_ROUTE, "input")])
def test_json_nested_100000_deep_is_refused_saying_so(path, key):
    body = f'{{"{key}":' + "[" * 100_000 + "]" * 100_000 + "}"
    with pytest.raises(BadRequest, match="nests JSON arrays or objects too deeply"):
        parse_request(_event(body, raw=True, path=path), "sagemaker")


def test_an_integer_of_5000_digits_is_refused_naming_its_length_only():
    body = '{"inputs": "a", "parameters": {"dimensions": ' + "9" * 5000 + "}}"
    with pytest.raises(BadRequest) as raised:
        parse_request(_event(body, raw=True), "sagemaker")
    assert str(raised.value) == "request body holds an integer of 5000 digits; no field takes one"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", 'request body is empty: send JSON {"input": ..., "model": ...}'),
        ('["a"]', 'request body must be a JSON object {"input": ..., "model": ...}'),
    ],
)
def test_openai_route_errors_show_openais_request(body, message):
    with pytest.raises(BadRequest) as raised:
        parse_request(_event(body, raw=True, path=OPENAI_ROUTE), "sagemaker")
    assert str(raised.value) == message


def test_invalid_json_is_rejected():
    with pytest.raises(BadRequest, match="not valid JSON"):
        parse_request(_event("{nope", raw=True), "sagemaker")


def test_missing_body_is_rejected():
    with pytest.raises(BadRequest, match="request body is empty"):
        parse_request({"requestContext": {"http": {"method": "POST"}}}, "sagemaker")


def test_bad_base64_is_rejected():
    with pytest.raises(BadRequest, match="does not decode"):
        parse_request({"body": "***", "isBase64Encoded": True}, "sagemaker")
