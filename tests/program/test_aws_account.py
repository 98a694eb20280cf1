"""The stack's AWS provider settings reach every boto3 session the program starts.

`aws:profile` and `aws:assumeRoles` go to the packager's dynamic resource (runs, delete, read)
and to the post-deploy check's command line, as names and ARNs; no credential does.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable

import pytest
from pulumi.runtime import rpc

from tests.fixtures.pulumi_mocks import DYNAMIC_RESOURCE, ProgramRun

ROLES = [
    {"roleArn": "arn:aws:iam::111122223333:role/deployer", "sessionName": "ci"},
    {"roleArn": "arn:aws:iam::444455556666:role/workload", "externalId": "tenant-7"},
]
STACK = {
    "aws:region": "us-east-1",
    "aws:profile": "deployer",
    "aws:assumeRoles": json.dumps(ROLES),
    "embedding-endpoint:modelId": "sentence-transformers/all-MiniLM-L6-v2",
}


def secret(value: object) -> dict:
    """How the engine receives a secret input (the mocks keep Pulumi's wrapper)."""
    return {rpc._special_sig_key: rpc._special_secret_sig, "value": value}


def test_the_packager_runs_in_the_stacks_profile_and_role_chain(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    inputs = pulumi_program(STACK).named("model-artifact").inputs
    assert inputs["aws_profile"] == "deployer"
    # An external id in the chain: kept encrypted in the state.
    assert inputs["aws_assume_roles"] == secret(ROLES)
    assert inputs["region"] == "us-east-1"


def test_the_failed_endpoint_guard_looks_in_the_stacks_profile_and_role_chain(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    guard = pulumi_program(STACK).named("embedding-failed-endpoint-guard")
    assert guard.inputs["aws_profile"] == "deployer"
    assert guard.inputs["aws_assume_roles"] == secret(ROLES)
    assert guard.inputs["region"] == "us-east-1"


def test_the_post_deploy_check_runs_in_the_stacks_profile_and_role_chain(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    run = pulumi_program(STACK)
    (command,) = run.of_type("command:local:Command")
    line = command.inputs["create"]
    assert line == secret(line["value"]), "an external id on the command line: a secret"
    argv = shlex.split(line["value"])
    assert argv[argv.index("--profile") + 1] == "deployer"
    assert json.loads(argv[argv.index("--assume-roles") + 1]) == ROLES
    assert run.outputs["smokeTestCommand"] == line["value"]


def test_the_endpoint_record_writes_in_the_stacks_profile_and_role_chain(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    record = pulumi_program(STACK).named("embedding-record")
    assert record.inputs["aws_profile"] == "deployer"
    assert record.inputs["aws_assume_roles"] == secret(ROLES)


def test_a_role_chain_without_secrets_stays_readable_in_the_state(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    plain = [{"roleArn": "arn:aws:iam::111122223333:role/deployer", "sessionName": "ci"}]
    inputs = (
        pulumi_program(STACK | {"aws:assumeRoles": json.dumps(plain)})
        .named("model-artifact")
        .inputs
    )
    assert inputs["aws_assume_roles"] == plain


def test_without_those_settings_nothing_extra_is_passed(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    config = {k: v for k, v in STACK.items() if k not in ("aws:profile", "aws:assumeRoles")}
    run = pulumi_program(config)
    inputs = run.named("model-artifact").inputs
    assert inputs.get("aws_profile") is None
    assert inputs["aws_assume_roles"] == []
    assert "--profile" not in run.outputs["smokeTestCommand"]
    assert "--assume-roles" not in run.outputs["smokeTestCommand"]


def test_no_credential_of_the_environment_reaches_an_input_or_output(
    pulumi_program: Callable[..., ProgramRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENTKEY01")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "environment-secret-key-value")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "environment-session-token")
    run = pulumi_program(STACK)
    everything = json.dumps(
        [[r.inputs, r.outputs] for r in run.resources] + [run.outputs], default=str
    )
    for value in (
        "AKIAENVIRONMENTKEY01",
        "environment-secret-key-value",
        "environment-session-token",
    ):
        assert value not in everything


def test_a_bad_role_entry_stops_the_program_naming_it(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    bad = STACK | {"aws:assumeRoles": json.dumps([{"roleArn": "deployer"}])}
    run = pulumi_program(bad, raise_errors=False)
    assert run.error is not None
    assert "'aws:assumeRoles[0].roleArn'" in str(run.error)
    assert run.of_type(DYNAMIC_RESOURCE) == []


def test_a_credential_setting_our_sessions_do_not_follow_is_warned_about(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    config = STACK | {"aws:accessKey": "AKIACONFIGKEY0000001"}
    run = pulumi_program(config, secret_keys=("aws:accessKey",))
    assert any("aws:accessKey" in warning for warning in run.outputs["warnings"])


def test_the_local_stacks_fake_keys_are_not_warned_about(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    """Pulumi.local.yaml sets them on purpose: a warning on every `make up` teaches to ignore."""
    config = STACK | {"aws:accessKey": "testing", "aws:secretKey": "testing"}
    run = pulumi_program(config, stack="local", secret_keys=("aws:accessKey",))
    assert not any("aws:accessKey" in warning for warning in run.outputs.get("warnings", []))
