"""PostDeploySmokeTest under Pulumi mocks: when it runs, what it runs, what re-runs it."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pytest

from components.smoke_test import PostDeploySmokeTest, PostDeploySmokeTestArgs
from embedding_endpoint import smoke
from tests.fixtures.pulumi_mocks import ProgramRun, run_program

COMMAND = "command:local:Command"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
SHA256 = "ab" * 32
DEV_CONFIG = {
    "aws:region": "us-east-1",
    "embedding-endpoint:modelId": "sentence-transformers/all-MiniLM-L6-v2",
    "embedding-endpoint:packagingRunner": "lambda",
}


def _standalone_program() -> None:
    endpoint = aws.sagemaker.Endpoint("ep", name="embed-dev", endpoint_config_name="cfg-1")
    PostDeploySmokeTest(
        "smoke",
        PostDeploySmokeTestArgs(
            endpoint=endpoint,
            endpoint_name=endpoint.name,
            region="eu-west-1",
            artifact_sha256=SHA256,
            endpoint_settings=("image:tag", 2048, 5, 0),
            expected_dimensions=384,
        ),
    )


@pytest.fixture(scope="module")
def standalone() -> ProgramRun:
    return run_program({"aws:region": "eu-west-1"}, program=_standalone_program)


def test_smoke_command_waits_for_the_endpoint(standalone: ProgramRun) -> None:
    command = standalone.one(COMMAND)
    assert standalone.one(ENDPOINT).urn in command.dependencies


def test_smoke_command_runs_the_smoke_module_with_this_interpreter(standalone: ProgramRun) -> None:
    argv = shlex.split(standalone.one(COMMAND).inputs["create"])
    assert argv[:3] == [sys.executable, "-m", "embedding_endpoint.smoke"]
    assert argv[3:] == [
        "--endpoint",
        "embed-dev",
        "--region",
        "eu-west-1",
        "--expected-dimensions",
        "384",
    ]


def test_smoke_command_runs_where_the_smoke_module_can_be_imported(
    standalone: ProgramRun,
) -> None:
    directory = Path(standalone.one(COMMAND).inputs["dir"])
    assert (directory / "embedding_endpoint" / "smoke.py").is_file()


def test_smoke_command_reruns_when_artifact_or_endpoint_settings_change(
    standalone: ProgramRun,
) -> None:
    triggers = standalone.one(COMMAND).inputs["triggers"]
    assert triggers == ["embed-dev", SHA256, "image:tag", 2048, 5, 0]


def test_smoke_command_has_no_update_so_a_trigger_change_reruns_create(
    standalone: ProgramRun,
) -> None:
    assert "update" not in standalone.one(COMMAND).inputs


def test_smoke_command_is_a_child_of_the_component(standalone: ProgramRun) -> None:
    component = standalone.one("embedding-endpoint:index:PostDeploySmokeTest")
    assert standalone.one(COMMAND).parent == component.urn


def test_smoke_command_line_parses_with_the_smoke_cli(standalone: ProgramRun) -> None:
    argv = shlex.split(standalone.one(COMMAND).inputs["create"])
    args = smoke._parser().parse_args(argv[3:])
    assert (args.endpoint, args.region, args.expected_dimensions) == ("embed-dev", "eu-west-1", 384)


def test_empty_region_is_refused() -> None:
    with pytest.raises(ValueError, match="region"):
        PostDeploySmokeTestArgs(
            endpoint=pulumi.CustomResource.__new__(pulumi.CustomResource),
            endpoint_name="x",
            region="",
            artifact_sha256=SHA256,
        )


def test_program_declares_smoke_test_after_the_endpoint_by_default() -> None:
    run = run_program(DEV_CONFIG, stack="dev")
    command = run.one(COMMAND)
    endpoint = run.one(ENDPOINT)
    assert endpoint.urn in command.dependencies
    argv = shlex.split(command.inputs["create"])
    assert argv[argv.index("--endpoint") + 1] == endpoint.outputs["name"]
    assert run.outputs["artifactSha256"] in command.inputs["triggers"]


def test_program_without_smoke_test_declares_no_command() -> None:
    run = run_program({**DEV_CONFIG, "embedding-endpoint:smokeTest": "false"}, stack="dev")
    assert run.of_type(COMMAND) == []
