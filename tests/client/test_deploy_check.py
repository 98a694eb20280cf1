"""The deploy check against moto's SageMaker, with the fault layer playing SageMaker's failures.

Each test deploys a Model and an EndpointConfiguration through boto3, creates the endpoint, then
lets the fault layer do what SageMaker does on a bad day (roll an update back, leave a create
`Failed`, keep updating) and runs the real check: `verify_deploy`, `smoke.main` with
`--expected-config`, and the exported command line in a subprocess.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.post_deploy_check import check_command_line
from embedding_client import deploy_check, smoke
from embedding_client.deploy_check import DeployCheckFailure, ExpectedDeploy
from tests.fixtures.aws import (
    FAKE_CREDENTIALS,
    AwsEndpoint,
    forget_sagemaker_results,
    queue_sagemaker_results,
)
from tests.support.sagemaker_faults import (
    HEALTH_CHECK_FAILURE,
    OUT_OF_MEMORY_FAILURE,
    SageMakerFaults,
)

ROOT = Path(__file__).resolve().parents[2]
OLD_SHA = "a" * 64
NEW_SHA = "b" * 64


@pytest.fixture
def endpoint_name() -> str:
    return f"embedding-endpoint-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def faults(aws: AwsEndpoint, endpoint_name: str) -> Iterator[SageMakerFaults]:
    layer = SageMakerFaults(aws)
    yield layer
    layer.cleanup(endpoint_name)


def _expected(name: str, config: str, sha: str | None, region: str) -> ExpectedDeploy:
    return ExpectedDeploy(
        endpoint_name=name, region=region, config_name=config, artifact_sha256=sha
    )


def _check(
    faults: SageMakerFaults, expected: ExpectedDeploy, **kwargs
) -> deploy_check.LiveEndpoint:
    kwargs.setdefault("poll_s", 0)
    kwargs.setdefault("sleep", lambda _: None)
    return deploy_check.verify_deploy(faults.client, expected, **kwargs)


def _smoke_args(aws: AwsEndpoint, name: str, config: str, sha: str) -> list[str]:
    return [
        "--endpoint", name, "--region", aws.region, "--endpoint-url", aws.url,
        "--expected-config", config, "--expected-sha256", sha,
        "--attempts", "1", "--retry-delay", "0", "--poll-interval", "0",
    ]  # fmt: skip


def test_an_endpoint_serving_this_deploys_configuration_passes(faults, endpoint_name, aws):
    deployed = faults.model_and_config("new", NEW_SHA)
    faults.create_endpoint(endpoint_name, deployed.config_name)
    live = _check(faults, _expected(endpoint_name, deployed.config_name, NEW_SHA, aws.region))
    assert (live.status, live.config_name, live.artifact_sha256) == (
        "InService",
        deployed.config_name,
        NEW_SHA,
    )


def test_a_rolled_back_update_fails_naming_both_configurations_and_the_reason(
    faults, endpoint_name, aws
):
    old = faults.model_and_config("old", OLD_SHA)
    faults.create_endpoint(endpoint_name, old.config_name)
    new = faults.model_and_config("new", NEW_SHA)
    faults.roll_back_update(endpoint_name)  # UpdateEndpoint(new) failed its health check
    with pytest.raises(DeployCheckFailure) as failure:
        _check(faults, _expected(endpoint_name, new.config_name, NEW_SHA, aws.region))
    message = str(failure.value)
    assert f"expected configuration: {new.config_name}" in message
    assert f"live configuration:     {old.config_name}" in message
    assert HEALTH_CHECK_FAILURE in message
    assert f"/aws/sagemaker/Endpoints/{endpoint_name}" in message
    assert "rolled the update back" in message


def test_in_service_with_a_failure_reason_fails_even_on_the_new_configuration(
    faults, endpoint_name, aws
):
    new = faults.model_and_config("new", NEW_SHA)
    faults.create_endpoint(endpoint_name, new.config_name)
    faults.roll_back_update(endpoint_name, reason="Update failed: capacity")
    with pytest.raises(DeployCheckFailure, match="FailureReason"):
        _check(faults, _expected(endpoint_name, new.config_name, NEW_SHA, aws.region))


def test_a_failed_create_fails_and_says_the_next_up_recreates_it(faults, endpoint_name, aws):
    new = faults.model_and_config("new", NEW_SHA)
    faults.create_endpoint(endpoint_name, new.config_name)
    faults.fail_creation(endpoint_name, OUT_OF_MEMORY_FAILURE)
    with pytest.raises(DeployCheckFailure) as failure:
        _check(faults, _expected(endpoint_name, new.config_name, NEW_SHA, aws.region))
    message = str(failure.value)
    assert "the endpoint is Failed, not InService" in message
    assert OUT_OF_MEMORY_FAILURE in message
    assert "raise memorySizeMb" in message
    assert "deletes the failed endpoint and creates it again" in message


def test_the_served_archive_must_be_the_one_this_deploy_packaged(faults, endpoint_name, aws):
    new = faults.model_and_config("new", NEW_SHA)
    faults.create_endpoint(endpoint_name, new.config_name)
    with pytest.raises(DeployCheckFailure) as failure:
        _check(faults, _expected(endpoint_name, new.config_name, "c" * 64, aws.region))
    assert f"archive sha256 {NEW_SHA}, not {'c' * 64}" in str(failure.value)


def test_a_missing_endpoint_fails(faults, endpoint_name, aws):
    new = faults.model_and_config("new", NEW_SHA)
    with pytest.raises(DeployCheckFailure, match=f"no endpoint named {endpoint_name} exists"):
        _check(faults, _expected(endpoint_name, new.config_name, NEW_SHA, aws.region))


def test_the_check_waits_while_the_endpoint_is_updating(faults, endpoint_name, aws):
    old = faults.model_and_config("old", OLD_SHA)
    faults.create_endpoint(endpoint_name, old.config_name)
    new = faults.model_and_config("new", NEW_SHA)
    faults.set_status(endpoint_name, "Updating")
    polls: list[float] = []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 3:  # SageMaker finishes the update while the check waits
            faults.update_endpoint(endpoint_name, new.config_name)

    expected = _expected(endpoint_name, new.config_name, NEW_SHA, aws.region)
    live = _check(faults, expected, poll_s=5, sleep=sleep)
    assert polls == [5, 5, 5]
    assert live.config_name == new.config_name


def test_the_wait_is_bounded(faults, endpoint_name, aws):
    new = faults.model_and_config("new", NEW_SHA)
    faults.create_endpoint(endpoint_name, new.config_name)
    faults.set_status(endpoint_name, "Updating")
    expected = _expected(endpoint_name, new.config_name, NEW_SHA, aws.region)
    with pytest.raises(DeployCheckFailure, match="is Updating, not InService"):
        _check(faults, expected, timeout_s=0)


def test_smoke_runs_the_deploy_check_first_and_stops_on_a_rollback(
    faults, endpoint_name, aws, capsys
):
    old = faults.model_and_config("old", OLD_SHA)
    faults.create_endpoint(endpoint_name, old.config_name)
    new = faults.model_and_config("new", NEW_SHA)
    faults.roll_back_update(endpoint_name)
    code = smoke.main(_smoke_args(aws, endpoint_name, new.config_name, NEW_SHA))
    err = capsys.readouterr().err
    assert code == 1
    assert "deploy check failed" in err and old.config_name in err and new.config_name in err
    assert "smoke test" not in err  # no invocation was made


def test_smoke_invokes_the_endpoint_once_the_deploy_check_passed(
    faults, endpoint_name, aws, capsys
):
    new = faults.model_and_config("new", NEW_SHA)
    faults.create_endpoint(endpoint_name, new.config_name)
    answers = (
        {"embeddings": [[1.0, 0.0], [0.8, 0.6]], "model": "org/name", "dimensions": 2},
        {"embeddings": [[0.0, 1.0]], "model": "org/name", "dimensions": 2},
    )
    forget_sagemaker_results(aws)  # the smoke test's texts are fixed
    queue_sagemaker_results(aws, *(json.dumps(answer) for answer in answers))
    code = smoke.main(_smoke_args(aws, endpoint_name, new.config_name, NEW_SHA))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"deploy check passed: {endpoint_name} is InService on {new.config_name}" in captured.err
    assert json.loads(captured.out)["smoke_test"] == "passed"


def test_skipping_invocations_still_fails_a_rolled_back_update(faults, endpoint_name, aws, capsys):
    old = faults.model_and_config("old", OLD_SHA)
    faults.create_endpoint(endpoint_name, old.config_name)
    new = faults.model_and_config("new", NEW_SHA)
    faults.roll_back_update(endpoint_name)
    argv = _smoke_args(aws, endpoint_name, new.config_name, NEW_SHA) + ["--skip-invocations"]
    assert smoke.main(argv) == 1
    assert "deploy check failed" in capsys.readouterr().err


def test_skipping_invocations_passes_on_the_deploys_configuration_without_invoking(
    faults, endpoint_name, aws, capsys
):
    new = faults.model_and_config("new", NEW_SHA)
    faults.create_endpoint(endpoint_name, new.config_name)
    forget_sagemaker_results(aws)  # an invocation would get moto's canned answer and fail
    argv = _smoke_args(aws, endpoint_name, new.config_name, NEW_SHA) + ["--skip-invocations"]
    code = smoke.main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["deploy_check"] == "passed"
    assert "smoke_test" not in captured.out


def test_the_exported_command_line_exits_non_zero_with_the_message(faults, endpoint_name, aws):
    """smokeTestCommand is the Command's line; run it as a user would, in a shell."""
    old = faults.model_and_config("old", OLD_SHA)
    faults.create_endpoint(endpoint_name, old.config_name)
    new = faults.model_and_config("new", NEW_SHA)
    faults.roll_back_update(endpoint_name)
    line = check_command_line(
        sys.executable,
        endpoint_name,
        aws.region,
        endpoint_url=aws.url,
        sagemaker_endpoint_url=aws.url,
        expected_config=new.config_name,
        expected_sha256=NEW_SHA,
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    completed = subprocess.run(
        shlex.split(line),
        cwd=ROOT,
        env=environment | FAKE_CREDENTIALS,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 1
    assert f"live configuration:     {old.config_name}" in completed.stderr
    assert HEALTH_CHECK_FAILURE in completed.stderr


@pytest.mark.parametrize(
    ("reason", "hint"),
    [
        (OUT_OF_MEMORY_FAILURE, "raise memorySizeMb"),
        (HEALTH_CHECK_FAILURE, "never answered /ping"),
        ("Requested image x:y not found.", "imageTag"),
        ("Something new", None),
    ],
)
def test_known_failure_reasons_get_a_hint(reason: str, hint: str | None) -> None:
    found = deploy_check.failure_hint(reason)
    assert (found is None) if hint is None else (hint in found)
