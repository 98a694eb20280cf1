"""PostDeployCheck under Pulumi mocks: when it runs, what it runs, what re-runs it.

What the check itself decides (rollback, Failed, another archive) is tested against moto in
tests/client/test_deploy_check.py.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pytest
from pulumi.runtime import rpc

from components.post_deploy_check import PostDeployCheck, PostDeployCheckArgs
from deploy_account.session import AssumeRole, AwsSettings
from embedding_client import smoke
from tests.fixtures.pulumi_mocks import ProgramRun

COMMAND = "command:local:Command"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
SHA = "ab" * 32
DEV_CONFIG = {
    "aws:region": "us-east-1",
    "embedding-endpoint:modelId": "sentence-transformers/all-MiniLM-L6-v2",
    "embedding-endpoint:packagingRunner": "lambda",
}


ROLE = "arn:aws:iam::123456789012:role/deploy"


def is_secret(value: object) -> bool:
    """A value the engine keeps encrypted (the mocks record Pulumi's secret wrapper)."""
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


def _standalone_program(
    invoke_on_deploy: bool = True, aws_settings: AwsSettings | None = None
) -> Callable[[], None]:
    def program() -> None:
        endpoint = aws.sagemaker.Endpoint("ep", name="embed-dev", endpoint_config_name="cfg-1")
        check = PostDeployCheck(
            "check",
            PostDeployCheckArgs(
                endpoint=endpoint,
                endpoint_name=endpoint.name,
                endpoint_config_name=endpoint.endpoint_config_name,
                region="eu-west-1",
                artifact_sha256=SHA,
                invoke_on_deploy=invoke_on_deploy,
                aws=aws_settings,
            ),
        )
        pulumi.export("commandLine", check.command_line)
        # The exported values lose Pulumi's secret wrapper under the mocks: export the flag.
        pulumi.export("commandLineIsSecret", check.command_line.is_secret())

    return program


@pytest.fixture
def standalone(pulumi_program: Callable[..., ProgramRun]) -> ProgramRun:
    return pulumi_program({"aws:region": "eu-west-1"}, program=_standalone_program())


def test_check_waits_for_the_endpoint(standalone: ProgramRun) -> None:
    command = standalone.one(COMMAND)
    assert standalone.one(ENDPOINT).urn in command.dependencies


def test_check_runs_the_smoke_module_with_this_interpreter(standalone: ProgramRun) -> None:
    argv = shlex.split(standalone.one(COMMAND).inputs["create"])
    assert argv[:3] == [sys.executable, "-m", "embedding_client.smoke"]
    assert argv[3:] == [
        "--endpoint", "embed-dev", "--region", "eu-west-1",
        "--expected-config", "cfg-1", "--expected-sha256", SHA,
    ]  # fmt: skip
    assert standalone.outputs["commandLine"] == standalone.one(COMMAND).inputs["create"]


def test_check_runs_where_the_smoke_module_can_be_imported(standalone: ProgramRun) -> None:
    directory = Path(standalone.one(COMMAND).inputs["dir"])
    assert (directory / "embedding_client" / "smoke.py").is_file()


def test_only_a_new_endpoint_configuration_reruns_the_check(standalone: ProgramRun) -> None:
    assert standalone.one(COMMAND).inputs["triggers"] == ["cfg-1"]


def test_a_replaced_endpoint_is_checked_again(standalone: ProgramRun) -> None:
    # A recreated endpoint keeps its name and configuration: only `replace_with` re-runs the check.
    assert standalone.one(COMMAND).replace_with == (standalone.one(ENDPOINT).urn,)


def test_check_has_no_update_so_a_trigger_change_reruns_create(standalone: ProgramRun) -> None:
    assert "update" not in standalone.one(COMMAND).inputs


def test_check_is_a_child_of_the_component(standalone: ProgramRun) -> None:
    component = standalone.one("embedding-endpoint:index:PostDeployCheck")
    assert standalone.one(COMMAND).parent == component.urn


def test_command_line_parses_with_the_smoke_cli(standalone: ProgramRun) -> None:
    argv = shlex.split(standalone.one(COMMAND).inputs["create"])
    args = smoke._parser().parse_args(argv[3:])
    assert (args.endpoint, args.region) == ("embed-dev", "eu-west-1")
    assert (args.expected_config, args.expected_sha256) == ("cfg-1", SHA)


def test_without_invocations_the_deploy_check_still_runs_on_deploy(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    run = pulumi_program({"aws:region": "eu-west-1"}, program=_standalone_program(False))
    args = smoke._parser().parse_args(shlex.split(run.one(COMMAND).inputs["create"])[3:])
    assert (args.expected_config, args.expected_sha256) == ("cfg-1", SHA)
    assert args.skip_invocations is True
    # The exported line, run by hand, checks and invokes.
    exported = smoke._parser().parse_args(shlex.split(run.outputs["commandLine"])[3:])
    assert exported.skip_invocations is False


@pytest.mark.parametrize(
    "role",
    [
        pytest.param(AssumeRole(ROLE, external_id="x-1"), id="external id"),
        pytest.param(AssumeRole(ROLE, policy='{"Version":"2012-10-17"}'), id="session policy"),
    ],
)
def test_a_command_line_naming_role_secrets_is_secret_in_state_and_outputs(
    pulumi_program: Callable[..., ProgramRun], role: AssumeRole
) -> None:
    aws_settings = AwsSettings(region="eu-west-1", assume_roles=(role,))
    run = pulumi_program(
        {"aws:region": "eu-west-1"}, program=_standalone_program(aws_settings=aws_settings)
    )
    assert is_secret(run.one(COMMAND).inputs["create"])
    assert run.outputs["commandLineIsSecret"] is True


def test_a_command_line_without_role_secrets_stays_readable(standalone: ProgramRun) -> None:
    assert not is_secret(standalone.one(COMMAND).inputs["create"])
    assert standalone.outputs["commandLineIsSecret"] is False


def test_empty_region_is_refused() -> None:
    with pytest.raises(ValueError, match="region"):
        PostDeployCheckArgs(
            endpoint=pulumi.CustomResource.__new__(pulumi.CustomResource),
            endpoint_name="x",
            endpoint_config_name="c",
            region="",
        )


def test_program_declares_the_check_after_the_endpoint_by_default(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    run = pulumi_program(DEV_CONFIG, stack="dev")
    command = run.one(COMMAND)
    endpoint = run.one(ENDPOINT)
    assert endpoint.urn in command.dependencies
    argv = shlex.split(command.inputs["create"])
    assert argv[argv.index("--endpoint") + 1] == endpoint.outputs["name"]
    assert argv[argv.index("--expected-config") + 1] == endpoint.inputs["endpointConfigName"]
    assert argv[argv.index("--expected-sha256") + 1] == run.outputs["artifactSha256"]


def test_program_without_smoke_test_still_checks_which_configuration_is_live(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    run = pulumi_program({**DEV_CONFIG, "embedding-endpoint:smokeTest": "false"}, stack="dev")
    argv = shlex.split(run.one(COMMAND).inputs["create"])
    assert (
        argv[argv.index("--expected-config") + 1] == run.one(ENDPOINT).inputs["endpointConfigName"]
    )
    assert argv[argv.index("--expected-sha256") + 1] == run.outputs["artifactSha256"]
    assert "--skip-invocations" in argv
    assert "--skip-invocations" not in run.outputs["smokeTestCommand"]
