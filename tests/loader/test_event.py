"""Event validation: every bad field is named with what is allowed, before any I/O."""

from __future__ import annotations

import pytest

from facts.artifact_keys import artifact_location, model_id_from_key, source_revision
from facts.identifiers import parse_s3_url
from loader.errors import EventError
from loader.event import LoaderRequest, parse_event

VALID = {"model_id": "sentence-transformers/all-MiniLM-L6-v2", "bucket": "my-artifacts"}


def test_minimal_event_gets_documented_defaults():
    request = parse_event(VALID)
    assert request == LoaderRequest(
        model_id=VALID["model_id"], bucket="my-artifacts", revision="main", key_prefix="models/"
    )


def test_full_contract_event_is_accepted():
    event = {
        **VALID,
        "revision": "a" * 40,
        "key_prefix": "prod/models/",
        "hf_token": None,
        "hf_token_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:hf-AbCd",
        "source_model_data_url": None,
        "expected_sha256": "F" * 64,
    }
    request = parse_event(event)
    assert request.expected_sha256 == "f" * 64
    assert request.key_prefix == "prod/models/"


@pytest.mark.parametrize(
    ("field", "value", "hint"),
    [
        ("model_id", "no-slash", "org/name"),
        ("model_id", None, "required"),
        ("bucket", "Bad_Bucket", "S3 bucket name"),
        ("revision", "../main", "a branch, a tag or a 40-hex commit sha"),
        ("key_prefix", "/models", "'/'-terminated path segments"),
        ("key_prefix", "models", "'/'-terminated path segments"),
        ("key_prefix", 7, "must be a string"),
        ("expected_sha256", "abc", "64 lowercase hex"),
        ("source_model_data_url", "s3://b/x.zip", "s3://bucket/path/model.tar.gz"),
        ("source_model_data_url", "https://x/model.tar.gz", "s3://"),
        ("hf_token_secret_arn", "my-secret", "Secrets Manager secret ARN"),
        ("hf_token", 42, "string or null"),
        ("engine", "tensorrt", "['torch', 'onnx']"),
        ("engine", 1, "string or null"),
    ],
)
def test_invalid_field_is_named_with_allowed_values(field, value, hint):
    with pytest.raises(EventError) as caught:
        parse_event({**VALID, field: value})
    assert caught.value.field == field
    assert f"'{field}'" in str(caught.value) and hint in str(caught.value)


def test_unknown_field_is_rejected_listing_the_allowed_ones():
    with pytest.raises(EventError, match=r"'modelid' is not a loader event field; allowed: \["):
        parse_event({**VALID, "modelid": "x"})


def test_token_and_token_secret_together_are_rejected():
    event = {
        **VALID,
        "hf_token": "hf_x",
        "hf_token_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:hf",
    }
    with pytest.raises(EventError, match="hf_token_secret_arn"):
        parse_event(event)


def test_token_never_appears_in_the_request_repr():
    assert "hf_secret_value" not in repr(parse_event({**VALID, "hf_token": "hf_secret_value"}))


def test_artifact_key_layout_is_prefix_model_commit_format():
    folder = f"models/org/name/{'c' * 40}/3-{'e' * 16}"
    location = artifact_location("bkt", "models/", "org/name", "c" * 40, "3-" + "e" * 16)
    assert location.key == f"{folder}/model.tar.gz"
    assert location.manifest_key == f"{folder}/manifest.json"
    assert location.url == f"s3://bkt/{folder}/model.tar.gz"


def test_engine_defaults_to_torch_with_no_runtime():
    request = parse_event(VALID)
    assert (request.engine, request.runtime, request.artifact_variant) == ("torch", None, None)


def test_engine_onnx_names_the_runtime_wheel_and_the_engine_folder():
    request = parse_event({**VALID, "engine": "onnx", "container_python": "3.10"})
    assert request.runtime is not None
    assert "-cp310-" in request.runtime.filename
    assert request.artifact_variant == "onnx-py310"
    location = artifact_location(
        "bkt", "models/", "org/name", "c" * 40, "3-" + "f" * 16, request.artifact_variant
    )
    assert location.key == f"models/org/name/{'c' * 40}/onnx-py310/3-{'f' * 16}/model.tar.gz"
    assert model_id_from_key(location.url) == "org/name"


@pytest.mark.parametrize("python", [None, "3.8", "3.13", "310"])
def test_engine_onnx_needs_a_python_with_a_known_runtime(python):
    with pytest.raises(EventError) as caught:
        parse_event({**VALID, "engine": "onnx", "container_python": python})
    assert caught.value.field == "container_python"
    assert "'3.10'" in str(caught.value) and "'3.9'" in str(caught.value)


def test_engine_onnx_refuses_a_source_archive():
    event = {
        **VALID,
        "engine": "onnx",
        "container_python": "3.10",
        "source_model_data_url": "s3://training/out/model.tar.gz",
    }
    with pytest.raises(EventError, match="not a source archive") as caught:
        parse_event(event)
    assert caught.value.field == "engine"


def test_container_python_is_ignored_for_the_torch_engine():
    assert parse_event({**VALID, "container_python": "3.10"}).container_python is None


def test_s3_url_is_split_into_bucket_and_key():
    assert parse_s3_url("s3://bkt/a/b/model.tar.gz") == ("bkt", "a/b/model.tar.gz")
    with pytest.raises(ValueError, match="not an s3://bucket/key URL"):
        parse_s3_url("bkt/a")


def test_source_revision_changes_with_etag_and_version_only():
    base = source_revision("s3://b/k.tar.gz", '"etag1"', None)
    assert len(base) == 40
    assert base == source_revision("s3://b/k.tar.gz", "etag1", None)
    assert base != source_revision("s3://b/k.tar.gz", '"etag2"', None)
    assert base != source_revision("s3://b/k.tar.gz", '"etag1"', "v2")


def test_int8_is_taken_for_the_onnx_engine_and_gets_a_key_folder_of_its_own():
    request = parse_event(
        {**VALID, "engine": "onnx", "container_python": "3.10", "onnx_quantization": "int8"}
    )
    assert request.onnx_quantization == "int8"
    assert request.artifact_variant == "onnx-int8-py310"
    fp32 = parse_event({**VALID, "engine": "onnx", "container_python": "3.10"})
    assert (fp32.onnx_quantization, fp32.artifact_variant) == ("none", "onnx-py310")


def test_int8_for_the_torch_engine_is_refused_naming_the_field():
    with pytest.raises(EventError, match="onnx_quantization.*only engine 'onnx'"):
        parse_event({**VALID, "onnx_quantization": "int8"})


def test_an_unknown_quantization_is_refused_listing_the_allowed_ones():
    with pytest.raises(EventError, match=r"onnx_quantization.*\['none', 'int8'\]"):
        parse_event(
            {**VALID, "engine": "onnx", "container_python": "3.10", "onnx_quantization": "fp8"}
        )
