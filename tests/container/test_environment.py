"""The container's one reader of its environment: every variable, its default, its refusal."""

from __future__ import annotations

import pytest

from facts import batch_transform
from facts.sagemaker_endpoints import MAX_REQUEST_SECONDS_VARIABLE
from facts.serverless import COMPUTE_SECONDS, MAX_PAYLOAD_BYTES
from tests.support.models import container_module

environment = container_module("environment")


def test_an_empty_environment_gives_the_serverless_defaults():
    settings = environment.read_environment({})
    assert settings == environment.ContainerSettings(
        model_id=None,
        engine=None,
        num_threads=None,
        max_batch_size=environment.MAX_BATCH_SIZE,
        default_prompt_name=None,
        max_seq_length=None,
        in_batch_transform=False,
        request_limit_bytes=MAX_PAYLOAD_BYTES,
        response_limit_bytes=MAX_PAYLOAD_BYTES,
        max_request_seconds=float(COMPUTE_SECONDS),
    )


def test_the_deployments_settings_are_read_under_their_facts_names():
    settings = environment.read_environment(
        {
            "EMBEDDING_MODEL_ID": "org/name",
            "EMBEDDING_ENGINE": " ONNX ",
            "EMBEDDING_NUM_THREADS": "3",
            "EMBEDDING_MAX_BATCH_SIZE": "7",
            "EMBEDDING_DEFAULT_PROMPT_NAME": "query",
            "EMBEDDING_MAX_SEQ_LENGTH": "128",
        }
    )
    assert (settings.model_id, settings.engine, settings.intra_op_threads()) == (
        "org/name",
        "onnx",
        3,
    )
    assert (settings.max_batch_size, settings.max_seq_length) == (7, 128)
    assert settings.default_prompt_name == "query"


@pytest.mark.parametrize(
    "name", ["EMBEDDING_NUM_THREADS", "EMBEDDING_MAX_BATCH_SIZE", "EMBEDDING_MAX_SEQ_LENGTH"]
)
@pytest.mark.parametrize("value", ["0", "-2", "lots", ""])
def test_a_count_that_is_not_a_positive_integer_is_refused_naming_the_variable(name, value):
    with pytest.raises(environment.SettingError, match=f"{name} must be a positive integer"):
        environment.read_environment({name: value})


def test_an_unknown_engine_is_refused_listing_the_engines():
    with pytest.raises(environment.SettingError, match=r"EMBEDDING_ENGINE is 'tensorrt'.*'torch'"):
        environment.read_environment({"EMBEDDING_ENGINE": "tensorrt"})


def test_in_a_transform_job_the_limits_are_the_jobs_and_the_count_is_unbounded():
    settings = environment.read_environment(
        {
            batch_transform.BATCH_ENV: "TRUE",
            batch_transform.MAX_PAYLOAD_ENV: "2",
            batch_transform.RESPONSE_SIZE_ENV: "40000000",
        }
    )
    assert settings.in_batch_transform and settings.max_batch_size == environment.UNBOUNDED
    assert settings.request_limit_bytes == 2 * batch_transform.MIB
    assert settings.response_limit_bytes == 40_000_000
    assert settings.max_request_seconds is None


@pytest.mark.parametrize(("value", "seconds"), [("30", 30.0), ("7.5", 7.5), ("0", None)])
def test_the_seconds_a_request_may_take_are_read(value, seconds):
    env = {MAX_REQUEST_SECONDS_VARIABLE: value}
    assert environment.read_environment(env).max_request_seconds == seconds


@pytest.mark.parametrize("value", ["-1", "soon", "inf", "nan", ""])
def test_seconds_that_are_not_a_number_of_seconds_are_refused_naming_the_variable(value):
    with pytest.raises(environment.SettingError, match=f"{MAX_REQUEST_SECONDS_VARIABLE} must be"):
        environment.read_environment({MAX_REQUEST_SECONDS_VARIABLE: value})


def test_in_a_transform_job_sizes_the_platform_leaves_unset_or_bad_take_its_defaults():
    settings = environment.read_environment(
        {batch_transform.BATCH_ENV: "true", batch_transform.RESPONSE_SIZE_ENV: "big"}
    )
    assert settings.request_limit_bytes == batch_transform.MAX_RESPONSE_BYTES  # 0: chunked
    assert settings.response_limit_bytes == batch_transform.DEFAULT_RESPONSE_BYTES
