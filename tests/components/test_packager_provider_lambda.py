"""The dynamic provider with runner `lambda`: real boto3 `lambda.invoke` against a server speaking
Lambda's Invoke API, which runs the real loader against moto and the Hub fixture."""

from __future__ import annotations

import hashlib

import pytest

from components.packager_provider import PackagerProvider
from components.packaging_runs import PackagingError
from loader.version import format_version
from tests.fixtures.aws import AwsEndpoint
from tests.fixtures.hub import HubServer
from tests.fixtures.lambda_api import LOADER_FUNCTION_NAME, LambdaApiServer
from tests.support.packager import (
    TINY_COMMIT,
    TINY_MODEL_ID,
    object_keys,
    register_tiny,
    resource_inputs,
)


@pytest.fixture
def provider() -> PackagerProvider:
    return PackagerProvider()


@pytest.fixture
def tiny(hub: HubServer) -> HubServer:
    register_tiny(hub)
    return hub


def lambda_inputs(bucket: str, lambda_api: LambdaApiServer, **overrides: object) -> dict:
    lambda_settings = {
        "runner": "lambda",
        "function_name": LOADER_FUNCTION_NAME,
        "aws_endpoints": {"lambda": lambda_api.url},
    }
    return resource_inputs(bucket, **(lambda_settings | overrides))


def checked(provider: PackagerProvider, inputs: dict) -> dict:
    result = provider.check({}, inputs)
    assert result.failures == [], [f.reason for f in result.failures]
    return result.inputs


def test_lambda_runner_packages_through_one_invoke_with_the_pinned_revision(
    provider, tiny, lambda_api, aws: AwsEndpoint, s3_bucket
) -> None:
    created = provider.create(checked(provider, lambda_inputs(s3_bucket, lambda_api)))
    key = f"models/{TINY_MODEL_ID}/{TINY_COMMIT}/{format_version()}/model.tar.gz"
    body = aws.client("s3").get_object(Bucket=s3_bucket, Key=key)["Body"].read()
    assert created.outs["sha256"] == hashlib.sha256(body).hexdigest()
    assert [(i.function_name, i.event["revision"]) for i in lambda_api.invocations] == [
        (LOADER_FUNCTION_NAME, TINY_COMMIT)
    ]


def test_lambda_and_local_runners_build_byte_identical_artifacts(
    provider, tiny, lambda_api, s3_bucket
) -> None:
    by_lambda = provider.create(checked(provider, lambda_inputs(s3_bucket, lambda_api)))
    by_local = provider.create(
        checked(provider, resource_inputs(s3_bucket, key_prefix="local-runner/"))
    )
    assert by_lambda.outs["model_data_url"] != by_local.outs["model_data_url"]
    assert by_lambda.outs["sha256"] == by_local.outs["sha256"]


def test_function_error_is_raised_with_the_loaders_own_message(
    provider, hub, lambda_api, aws: AwsEndpoint, s3_bucket
) -> None:
    register_tiny(hub, gated=True)
    inputs = checked(provider, lambda_inputs(s3_bucket, lambda_api, requested_revision=TINY_COMMIT))
    with pytest.raises(PackagingError) as failure:
        provider.create(inputs)
    message = str(failure.value)
    assert "GatedRepoAccessDenied" in message
    assert f"model '{TINY_MODEL_ID}'" in message
    assert LOADER_FUNCTION_NAME in message
    assert object_keys(aws.client("s3"), s3_bucket) == []


def test_unknown_loader_function_is_reported(provider, tiny, lambda_api, s3_bucket) -> None:
    inputs = checked(provider, lambda_inputs(s3_bucket, lambda_api, function_name="gone-loader"))
    with pytest.raises(PackagingError, match="ResourceNotFoundException"):
        provider.create(inputs)


def test_a_failed_invoke_is_not_retried(provider, tiny, lambda_api, s3_bucket) -> None:
    lambda_api.service_error = (500, "ServiceException")
    inputs = checked(provider, lambda_inputs(s3_bucket, lambda_api))
    with pytest.raises(PackagingError, match="not retried"):
        provider.create(inputs)
    assert len(lambda_api.invocations) == 1


def test_lambda_timeout_suggests_the_local_runner(provider, tiny, lambda_api, s3_bucket) -> None:
    def timed_out(event: object, context: object) -> object:
        # The message the Lambda runtime reports when a function hits its timeout.
        raise RuntimeError("Task timed out after 900.00 seconds")

    lambda_api.handler = timed_out
    inputs = checked(provider, lambda_inputs(s3_bucket, lambda_api))
    with pytest.raises(PackagingError, match="packagingRunner local"):
        provider.create(inputs)


def test_a_loader_lambda_with_stale_code_is_reported(provider, tiny, lambda_api, s3_bucket) -> None:
    from loader.handler import handler

    def stale_loader(event: dict, context: object) -> dict:
        # A function still running an older bundle reports its own, older format version.
        return handler(event, context) | {"format_version": "0-older"}

    lambda_api.handler = stale_loader
    inputs = checked(provider, lambda_inputs(s3_bucket, lambda_api))
    with pytest.raises(PackagingError, match="stale code"):
        provider.create(inputs)
