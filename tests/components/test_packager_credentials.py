"""The dynamic provider acts in the stack's AWS account: its profile and its role chain.

A named profile lives in temporary AWS config files (its keys belong to a moto IAM user) while the
environment holds other credentials; S3 and Lambda are reached through a proxy that records the
access key each request was signed with (tests/fixtures/aws_proxy.py). Roles are assumed through
moto's STS, which records the keys it issued.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto.sts.models import sts_backends

from components.packager_provider import PackagerProvider
from tests.fixtures.aws import AwsEndpoint, NamedProfile, create_role
from tests.fixtures.aws_proxy import AwsProxy
from tests.fixtures.hub import HubServer
from tests.fixtures.lambda_api import LOADER_FUNCTION_NAME, LambdaApiServer
from tests.support.packager import register_tiny, resource_inputs


@pytest.fixture
def provider() -> PackagerProvider:
    return PackagerProvider()


@pytest.fixture
def tiny(hub: HubServer) -> HubServer:
    register_tiny(hub)
    return hub


@pytest.fixture
def lambda_proxy(lambda_api: LambdaApiServer) -> Iterator[AwsProxy]:
    """The same recording proxy, in front of the Lambda Invoke API server."""
    proxy = AwsProxy(upstream=lambda_api.url)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def deploy_and_destroy(provider: PackagerProvider, inputs: dict) -> dict:
    checked = provider.check({}, inputs)
    assert checked.failures == [], [f.reason for f in checked.failures]
    created = provider.create(checked.inputs)
    provider.delete(created.id, created.outs)
    return created.outs


def keys_issued_for(role_arn: str) -> set[str]:
    """Access key ids moto's STS handed out for `role_arn`."""
    return {
        assumed.access_key_id
        for account in list(sts_backends.keys())
        for backend in sts_backends[account].values()
        for assumed in backend.assumed_roles
        if assumed.role_arn == role_arn
    }


def test_local_runner_packages_and_deletes_with_the_stacks_profile(
    provider, tiny, named_profile: NamedProfile, aws_proxy: AwsProxy, s3_bucket: str
) -> None:
    inputs = resource_inputs(
        s3_bucket, aws_profile=named_profile.name, aws_endpoints={"s3": aws_proxy.url}
    )
    outs = deploy_and_destroy(provider, inputs)
    assert outs["aws_profile"] == named_profile.name  # in state, for delete and read
    methods = {request.method for request in aws_proxy.requests}
    assert {"PUT", "DELETE"} <= methods  # the upload and the deletion both went through
    assert aws_proxy.access_keys("s3") == {named_profile.access_key_id}


def test_lambda_runner_invokes_the_loader_with_the_stacks_profile(
    provider,
    tiny,
    named_profile: NamedProfile,
    lambda_api: LambdaApiServer,
    lambda_proxy: AwsProxy,
    s3_bucket: str,
) -> None:
    inputs = resource_inputs(
        s3_bucket,
        runner="lambda",
        function_name=LOADER_FUNCTION_NAME,
        aws_profile=named_profile.name,
        aws_endpoints={"lambda": lambda_proxy.url},
    )
    checked = provider.check({}, inputs)
    provider.create(checked.inputs)
    assert len(lambda_api.invocations) == 1
    assert lambda_proxy.access_keys("lambda") == {named_profile.access_key_id}


def test_local_runner_works_in_the_last_role_of_the_chain(
    provider,
    tiny,
    named_profile: NamedProfile,
    aws_proxy: AwsProxy,
    aws: AwsEndpoint,
    s3_bucket: str,
) -> None:
    first, last = create_role(aws), create_role(aws)
    roles = [{"roleArn": first, "sessionName": "hop"}, {"roleArn": last, "sessionName": "pack"}]
    inputs = resource_inputs(
        s3_bucket,
        aws_profile=named_profile.name,
        aws_assume_roles=roles,
        aws_endpoints={"s3": aws_proxy.url, "sts": aws.url},
    )
    outs = deploy_and_destroy(provider, inputs)
    assert outs["aws_assume_roles"] == roles
    used = aws_proxy.access_keys("s3")
    assert used and used <= keys_issued_for(last)
    assert named_profile.access_key_id not in used
