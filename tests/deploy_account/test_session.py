"""The one boto3 session every part of the stack uses: profile, assumed roles, region.

Against moto's IAM and STS: a named profile in temporary AWS config files, a role chain assumed
with STS, and the identity each session's calls are made as (GetCallerIdentity).
"""

from __future__ import annotations

import json

import pytest

from deploy_account.session import (
    AssumeRole,
    AwsSettings,
    AwsSettingsError,
    assume_roles_from_config,
    duration_seconds,
)
from tests.fixtures.aws import AwsEndpoint, NamedProfile, create_role


def caller(settings: AwsSettings) -> str:
    return settings.client("sts").get_caller_identity()["Arn"]


def test_without_a_profile_the_environments_credentials_are_used(aws: AwsEndpoint) -> None:
    settings = AwsSettings(region=aws.region)
    assert settings.session().get_credentials().access_key == "testing"
    assert caller(settings).endswith(":user/moto")  # moto's answer for keys it did not issue


def test_a_named_profile_overrides_the_environments_credentials(
    named_profile: NamedProfile, aws: AwsEndpoint
) -> None:
    settings = AwsSettings(region=aws.region, profile=named_profile.name)
    assert caller(settings) == named_profile.user_arn


def test_the_session_is_in_the_stack_region_whatever_the_profile_says(
    named_profile: NamedProfile,
) -> None:
    assert AwsSettings(region="eu-central-1", profile="deployer").session().region_name == (
        "eu-central-1"
    )


def test_each_role_is_assumed_from_the_previous_one(
    named_profile: NamedProfile, aws: AwsEndpoint
) -> None:
    first, second = create_role(aws), create_role(aws)
    settings = AwsSettings(
        region=aws.region,
        profile=named_profile.name,
        assume_roles=(
            AssumeRole(first, session_name="hop-one"),
            AssumeRole(second, session_name="hop-two", duration="1h"),
        ),
    )
    arn = caller(settings)
    role_name = second.rsplit("/", 1)[1]
    assert arn.endswith(f":assumed-role/{role_name}/hop-two")


def test_assume_role_parameters_are_the_providers_settings() -> None:
    role = AssumeRole.from_config(
        {
            "roleArn": "arn:aws:iam::123456789012:role/deploy",
            "sessionName": "ci",
            "externalId": "tenant-7",
            "duration": "1h30m",
            "policyArns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
            "tags": {"team": "search"},
            "transitiveTagKeys": ["team"],
            "sourceIdentity": "alice",
        },
        "aws:assumeRoles[0]",
    )
    assert role.assume_role_arguments() == {
        "RoleSessionName": "ci",
        "ExternalId": "tenant-7",
        "DurationSeconds": 5400,
        "PolicyArns": [{"arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}],
        "Tags": [{"Key": "team", "Value": "search"}],
        "TransitiveTagKeys": ["team"],
        "SourceIdentity": "alice",
    }


def test_the_role_chain_travels_as_the_providers_json_and_back() -> None:
    config = [
        {"roleArn": "arn:aws-cn:iam::123456789012:role/a", "sessionName": "s"},
        {"roleArn": "arn:aws-cn:iam::123456789012:role/b", "externalId": "x"},
    ]
    roles = assume_roles_from_config(json.dumps(config))
    assert json.loads(AwsSettings("cn-north-1", assume_roles=roles).assume_roles_json()) == config


@pytest.mark.parametrize(
    ("entries", "named"),
    [
        ([{"sessionName": "s"}], "'aws:assumeRoles[0].roleArn'"),
        ([{"roleArn": "not-an-arn"}], "'aws:assumeRoles[0].roleArn'"),
        (
            [{"roleArn": "arn:aws:iam::123456789012:role/a"}, {"roleArn": "arn:aws:iam::1:x"}],
            "'aws:assumeRoles[1].roleArn'",
        ),
        ([{"roleArn": "arn:aws:iam::123456789012:role/a", "role": "x"}], "[0].role'"),
        ([{"roleArn": "arn:aws:iam::123456789012:role/a", "duration": "2d"}], "[0].duration'"),
        ([{"roleArn": "arn:aws:iam::123456789012:role/a", "duration": "5m"}], "15 minutes"),
        ({"roleArn": "arn:aws:iam::123456789012:role/a"}, "expected a list"),
    ],
)
def test_a_bad_role_entry_is_refused_naming_it(entries: object, named: str) -> None:
    with pytest.raises(AwsSettingsError, match=named.replace("[", r"\[").replace("]", r"\]")):
        assume_roles_from_config(entries)


@pytest.mark.parametrize(
    ("text", "seconds"), [("1h", 3600), ("15m", 900), ("3600s", 3600), ("1h30m", 5400)]
)
def test_durations_read_as_the_aws_provider_writes_them(text: str, seconds: int) -> None:
    assert duration_seconds(text, "d") == seconds


def test_roles_without_any_source_credentials_fail_naming_the_role(
    aws: AwsEndpoint, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    role = "arn:aws:iam::123456789012:role/deploy"
    with pytest.raises(AwsSettingsError, match=role):
        AwsSettings(region=aws.region, assume_roles=(AssumeRole(role),)).session()
