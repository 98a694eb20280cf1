"""A private model whose token lives in Secrets Manager, requested by branch.

`pulumi preview` runs the provider's `check`, which pins the branch to a commit on the Hub; for a
private repo that needs the token, so `check` reads the secret (in the stack's account) as the
loader does. The Hub fixture's private repo answers RepoNotFound to any other caller; the secret
is in moto's Secrets Manager.
"""

from __future__ import annotations

import uuid

import pytest

from components.packager_provider import PackagerProvider
from tests.fixtures.aws import AwsEndpoint, NamedProfile
from tests.fixtures.aws_proxy import AwsProxy
from tests.fixtures.hub import VALID_TOKEN, HubServer
from tests.support.packager import NEWER_COMMIT, TINY_COMMIT, register_tiny, resource_inputs


@pytest.fixture
def provider() -> PackagerProvider:
    return PackagerProvider()


@pytest.fixture
def private_repo(hub: HubServer) -> HubServer:
    register_tiny(hub, private=True)
    return hub


@pytest.fixture
def token_secret(aws: AwsEndpoint) -> str:
    """A secret holding the Hub token, as the docs tell users to store it; its ARN."""
    secret = aws.client("secretsmanager").create_secret(
        Name=f"hf-token-{uuid.uuid4().hex[:8]}", SecretString=VALID_TOKEN
    )
    return secret["ARN"]


def test_preview_pins_a_branch_of_a_private_repo_with_the_token_from_secrets_manager(
    provider, private_repo, token_secret: str, s3_bucket: str
) -> None:
    checked = provider.check({}, resource_inputs(s3_bucket, hf_token_secret_arn=token_secret))
    assert [failure.reason for failure in checked.failures] == []
    assert checked.inputs["pinned_revision"] == TINY_COMMIT
    assert VALID_TOKEN not in str(checked.inputs)  # read, used, never kept


def test_the_pinned_private_model_packages_with_the_same_secret(
    provider, private_repo, token_secret: str, s3_bucket: str
) -> None:
    checked = provider.check({}, resource_inputs(s3_bucket, hf_token_secret_arn=token_secret))
    assert checked.failures == []
    created = provider.create(checked.inputs)
    assert (created.outs["pinned_revision"], created.outs["revision"]) == (TINY_COMMIT,) * 2
    assert VALID_TOKEN not in str(created.outs)


def test_the_secret_is_read_in_the_stacks_account(
    provider,
    private_repo,
    token_secret: str,
    named_profile: NamedProfile,
    aws_proxy: AwsProxy,
    s3_bucket: str,
) -> None:
    inputs = resource_inputs(
        s3_bucket,
        hf_token_secret_arn=token_secret,
        aws_profile=named_profile.name,
        aws_endpoints={"secretsmanager": aws_proxy.url},
    )
    assert provider.check({}, inputs).inputs["pinned_revision"] == TINY_COMMIT
    assert aws_proxy.access_keys("secretsmanager") == {named_profile.access_key_id}


def test_a_secret_pulumi_cannot_read_fails_preview_naming_it(
    provider, private_repo, aws: AwsEndpoint, s3_bucket: str
) -> None:
    missing = f"arn:aws:secretsmanager:{aws.region}:123456789012:secret:absent-AbCdEf"
    checked = provider.check({}, resource_inputs(s3_bucket, hf_token_secret_arn=missing))
    (failure,) = checked.failures
    assert failure.property == "hf_token_secret_arn"
    assert missing in failure.reason
    assert "GetSecretValue" in failure.reason


def test_refresh_sees_a_private_branch_move_with_the_secret(
    provider, private_repo, token_secret: str, s3_bucket: str
) -> None:
    checked = provider.check({}, resource_inputs(s3_bucket, hf_token_secret_arn=token_secret))
    created = provider.create(checked.inputs)
    register_tiny(private_repo, NEWER_COMMIT, private=True)
    refreshed = provider.read(created.id, created.outs)
    assert refreshed.id == created.id
    assert refreshed.inputs is not None and refreshed.inputs["pinned_revision"] is None
