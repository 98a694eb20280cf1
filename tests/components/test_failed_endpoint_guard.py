"""FailedEndpointGuard: the next `pulumi up` recovers from a `Failed` endpoint by itself.

The provider runs against moto's SageMaker with the fault layer playing SageMaker's failures. Two
paths, each as the engine drives them (provider calls in the engine's order; the Terraform
provider's side of the Endpoint played by the fault layer):

- missing from state: the failed create left no state (current provider), so the next create
  collides with the fixed name, unless the guard deleted the failed endpoint first;
- in state but `Failed` (older providers): an update is refused, so the guard's changed
  `failed_endpoint` (the Endpoint's replacement trigger) makes the engine replace it, deleting
  first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from components.endpoint_record import EndpointRecordProvider
from components.failed_endpoint_guard import (
    OWNER_ID_TAG,
    FailedEndpointGuard,
    FailedEndpointGuardArgs,
    FailedEndpointGuardProvider,
)
from components.project_provider import UNKNOWN
from deploy_account.session import AssumeRole, AwsSettings
from embedding_client import deploy_check
from tests.fixtures.aws import FAKE_CREDENTIALS, AwsEndpoint
from tests.fixtures.pulumi_mocks import DYNAMIC_RESOURCE, ProgramRun
from tests.support.sagemaker_faults import OUT_OF_MEMORY_FAILURE, SageMakerFaults

OTHER_ACCOUNT = "210987654321"

SHA = "d" * 64


@pytest.fixture
def name() -> str:
    return f"embedding-endpoint-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def faults(aws: AwsEndpoint, name: str) -> Iterator[SageMakerFaults]:
    layer = SageMakerFaults(aws)
    yield layer
    layer.cleanup(name)


@pytest.fixture
def provider() -> FailedEndpointGuardProvider:
    return FailedEndpointGuardProvider()


def guard_inputs(aws: AwsEndpoint, name: str, **overrides: Any) -> dict[str, Any]:
    """The dynamic resource's inputs as FailedEndpointGuard declares them."""
    return {
        "failed_endpoint": None,
        "failure_reason": None,
        "endpoint_name": name,
        "region": aws.region,
        "aws_profile": None,
        "aws_assume_roles": [],
        "aws_endpoints": {"sagemaker": aws.url},
        "delete_timeout_seconds": 30,
        "delete_poll_seconds": 0,
    } | overrides


def engine_replaces(old_trigger: Any, new_trigger: Any) -> bool:
    """The engine's replacement-trigger rule (pulumi step_generator.go `shouldTriggerReplace`).

    No trigger on either side (a resource declared before it had one) never replaces; else any
    difference does. Unknowns (preview) count as a change.
    """
    if old_trigger is None or new_trigger is None:
        return False
    return old_trigger != new_trigger


def deploy(provider, olds: dict, inputs: dict) -> dict:
    """One `pulumi up` of the guard: check, then create, replace (a create) or update."""
    checked = provider.check(olds, inputs)
    assert checked.failures == []
    if not olds:
        return provider.create(checked.inputs).outs
    decision = provider.diff("id", olds, checked.inputs)
    if decision.replaces:
        return provider.create(checked.inputs).outs
    if decision.changes:
        return provider.update("id", olds, checked.inputs).outs
    return olds


def endpoint_replaced(provider, olds: dict, news: dict, old_trigger: Any = "") -> bool:
    """Does the engine replace the Endpoint: its trigger moved, or the guard (`replace_with`)?"""
    guard_replaced = bool(provider.diff("id", olds, news).replaces)
    return guard_replaced or engine_replaces(old_trigger, news["failed_endpoint"])


# --- check and diff: a change exactly when there is a failed endpoint ------------------------


def test_without_an_endpoint_the_guard_marks_it_absent_until_one_exists(
    provider, aws, name, faults
) -> None:
    outs = deploy(provider, {}, guard_inputs(aws, name))
    assert outs["failed_endpoint"].startswith("absent ")
    deployed = faults.model_and_config("ok", SHA)
    faults.create_endpoint(name, deployed.config_name)  # the Endpoint step of that `up`
    checked = provider.check(outs, guard_inputs(aws, name)).inputs
    assert provider.diff("id", outs, checked).changes is False


def test_a_healthy_endpoint_is_left_alone(provider, aws, name, faults) -> None:
    deployed = faults.model_and_config("ok", SHA)
    faults.create_endpoint(name, deployed.config_name)
    outs = deploy(provider, {}, guard_inputs(aws, name))
    assert outs["failed_endpoint"] == ""
    assert faults.endpoint(name).endpoint_status == "InService"


def test_preview_shows_the_cleanup_when_the_endpoint_failed(provider, aws, name, faults) -> None:
    outs = deploy(provider, {}, guard_inputs(aws, name))
    deployed = faults.model_and_config("big", SHA)
    faults.create_endpoint(name, deployed.config_name)
    faults.fail_creation(name, OUT_OF_MEMORY_FAILURE)
    checked = provider.check(outs, guard_inputs(aws, name)).inputs
    assert checked["failed_endpoint"].startswith(faults.endpoint(name).arn)
    assert checked["failure_reason"] == OUT_OF_MEMORY_FAILURE
    assert provider.diff("id", outs, checked).changes is True
    assert faults.exists(name), "check and diff (preview) never delete"


def test_an_unreadable_endpoint_fails_check_naming_it(provider, name) -> None:
    inputs = {
        "endpoint_name": name,
        "region": "us-east-1",
        "aws_endpoints": {"sagemaker": "http://127.0.0.1:9"},
    }
    result = provider.check({}, inputs)
    assert [failure.property for failure in result.failures] == ["endpoint_name"]
    assert f"cannot read SageMaker endpoint {name}" in result.failures[0].reason


def test_the_guard_looks_in_the_account_of_the_stacks_role_chain(provider, aws, name) -> None:
    """With `aws:assumeRoles` the failed endpoint is in the role's account, not the caller's."""
    settings = AwsSettings(
        region=aws.region,
        assume_roles=(AssumeRole(f"arn:aws:iam::{OTHER_ACCOUNT}:role/deployer", "guard"),),
        endpoints=(("sagemaker", aws.url), ("sts", aws.url)),
    )
    other = SageMakerFaults(aws, client=settings.client("sagemaker"), account=OTHER_ACCOUNT)
    try:
        deployed = other.model_and_config("other-account", SHA)
        other.create_endpoint(name, deployed.config_name)
        other.fail_creation(name, OUT_OF_MEMORY_FAILURE)
        in_callers_account = provider.check({}, guard_inputs(aws, name)).inputs
        assert in_callers_account["failed_endpoint"].startswith("absent ")
        checked = provider.check({}, guard_inputs(aws, name) | settings.as_inputs())
        assert checked.inputs["failure_reason"] == OUT_OF_MEMORY_FAILURE
        provider.create(checked.inputs)
        assert not other.exists(name)
    finally:
        other.cleanup(name)


# --- the two recovery paths ------------------------------------------------------------------


def first_deploy_fails(provider, aws, name, faults) -> dict:
    """`pulumi up` #1: guard created, then CreateEndpoint never becomes healthy (OOM at load)."""
    outs = deploy(provider, {}, guard_inputs(aws, name))
    too_small = faults.model_and_config("too-small", SHA)
    faults.create_endpoint(name, too_small.config_name)
    faults.fail_creation(name, OUT_OF_MEMORY_FAILURE)
    return outs


def test_missing_from_state_the_next_create_collides_without_the_guard(
    provider, aws, name, faults
) -> None:
    first_deploy_fails(provider, aws, name, faults)
    fixed = faults.model_and_config("fixed", SHA)
    with pytest.raises(ClientError, match="Cannot create already existing endpoint"):
        faults.create_endpoint(name, fixed.config_name)


def test_missing_from_state_the_next_up_deletes_the_failed_endpoint_then_creates(
    provider, aws, name, faults
) -> None:
    outs = first_deploy_fails(provider, aws, name, faults)
    # `pulumi up` #2 after `pulumi config set memorySizeMb 4096`: a new configuration.
    fixed = faults.model_and_config("fixed", SHA)
    outs = deploy(provider, outs, guard_inputs(aws, name))
    assert outs["failed_endpoint"] != ""
    assert not faults.exists(name), "the guard deleted the failed endpoint"
    faults.create_endpoint(name, fixed.config_name)  # the Endpoint is not in state: a create
    expected = deploy_check.ExpectedDeploy(name, aws.region, fixed.config_name, SHA)
    live = deploy_check.verify_deploy(faults.client, expected, poll_s=0)
    assert (live.status, live.config_name) == ("InService", fixed.config_name)
    # `pulumi up` #3 with nothing changed: no cleanup, no replacement.
    again = provider.check(outs, guard_inputs(aws, name)).inputs
    assert provider.diff("id", outs, again).changes is False
    assert not engine_replaces(outs["failed_endpoint"], again["failed_endpoint"])


def test_in_state_but_failed_an_update_is_refused(provider, aws, name, faults) -> None:
    first_deploy_fails(provider, aws, name, faults)
    fixed = faults.model_and_config("fixed", SHA)
    with pytest.raises(ClientError, match="failed endpoint"):
        faults.update_endpoint(name, fixed.config_name)


def test_in_state_but_failed_the_next_up_replaces_the_endpoint(provider, aws, name, faults) -> None:
    outs = first_deploy_fails(provider, aws, name, faults)
    endpoint_trigger = outs["failed_endpoint"]  # recorded with the Endpoint in state
    fixed = faults.model_and_config("fixed", SHA)
    outs = deploy(provider, outs, guard_inputs(aws, name))
    assert engine_replaces(endpoint_trigger, outs["failed_endpoint"])
    # delete_before_replace: the provider's Delete (already gone: success), then Create.
    faults.provider_delete(name)
    faults.create_endpoint(name, fixed.config_name)
    expected = deploy_check.ExpectedDeploy(name, aws.region, fixed.config_name, SHA)
    assert deploy_check.verify_deploy(faults.client, expected, poll_s=0).status == "InService"


def test_replace_of_a_healthy_endpoint_works_only_deleting_first(
    provider, aws, name, faults
) -> None:
    """`pulumi up --replace` on the endpoint: its name is fixed."""
    deployed = faults.model_and_config("live", SHA)
    faults.create_endpoint(name, deployed.config_name)
    with pytest.raises(ClientError, match="already existing"):
        faults.create_endpoint(name, deployed.config_name)  # create-before-delete collides
    faults.provider_delete(name)
    faults.create_endpoint(name, deployed.config_name)  # delete-before-replace works
    assert faults.endpoint(name).endpoint_status == "InService"


# --- deleting: waits, is bounded, never touches a healthy endpoint ----------------------------


def test_the_guard_waits_until_the_deletion_finished(
    provider, aws, name, faults, monkeypatch
) -> None:
    outs = first_deploy_fails(provider, aws, name, faults)
    checked = provider.check(outs, guard_inputs(aws, name, delete_poll_seconds=1)).inputs
    faults.set_status(name, "Deleting")  # SageMaker is already deleting it
    naps: list[float] = []

    def nap(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 2:
            faults.remove(name)

    monkeypatch.setattr(time, "sleep", nap)
    provider.update("id", outs, checked)
    assert naps == [1.0, 1.0]
    assert not faults.exists(name)


def test_the_wait_is_bounded_and_says_what_to_do(provider, aws, name, faults, monkeypatch) -> None:
    outs = first_deploy_fails(provider, aws, name, faults)
    checked = provider.check(outs, guard_inputs(aws, name, delete_timeout_seconds=0.2)).inputs
    faults.set_status(name, "Deleting")
    monkeypatch.setattr(time, "sleep", lambda _: None)
    with pytest.raises(TimeoutError, match=f"failed endpoint {name} was not deleted"):
        provider.update("id", outs, checked)


def test_an_endpoint_healthy_again_by_update_time_is_not_deleted(
    provider, aws, name, faults
) -> None:
    outs = first_deploy_fails(provider, aws, name, faults)
    checked = provider.check(outs, guard_inputs(aws, name)).inputs
    faults.set_status(name, "InService")  # someone recreated it between preview and up
    provider.update("id", outs, checked)
    assert faults.exists(name)


def test_destroy_removes_a_failed_endpoint_the_state_never_recorded(
    provider, aws, name, faults
) -> None:
    outs = first_deploy_fails(provider, aws, name, faults)
    provider.delete("id", outs)
    assert not faults.exists(name)


def test_destroy_leaves_a_healthy_endpoint_to_its_own_resource(provider, aws, name, faults) -> None:
    deployed = faults.model_and_config("live", SHA)
    faults.create_endpoint(name, deployed.config_name)
    provider.delete("id", deploy(provider, {}, guard_inputs(aws, name)))
    assert faults.exists(name)


# --- as Pulumi runs it: pickled, in a process that cannot import this project ------------------

CHILD = """
import base64, importlib.util, json, sys
import dill

assert importlib.util.find_spec("components") is None, "the project leaked onto sys.path"
provider = dill.loads(base64.b64decode(sys.stdin.read()))
inputs = json.loads(sys.argv[1])
checked = provider.check({}, inputs)
print(json.dumps({"inputs": checked.inputs, "failures": [f.reason for f in checked.failures]}))
"""


def _registered_guard(pulumi_program: Callable[..., ProgramRun], endpoint_name: str):
    def program() -> None:
        FailedEndpointGuard(
            "guard", FailedEndpointGuardArgs(endpoint_name=endpoint_name, region="us-east-1")
        )

    return pulumi_program({"aws:region": "us-east-1"}, program=program).one(DYNAMIC_RESOURCE)


def test_the_pickled_provider_checks_in_a_process_without_the_project(
    pulumi_program, aws, name, faults, tmp_path: Path
) -> None:
    registered = _registered_guard(pulumi_program, name)
    serialized = registered.inputs["__provider"]["value"]
    deployed = faults.model_and_config("big", SHA)
    faults.create_endpoint(name, deployed.config_name)
    faults.fail_creation(name, OUT_OF_MEMORY_FAILURE)
    inputs = guard_inputs(aws, name)
    environment = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AWS_ENDPOINT_URL")
    }
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(inputs)],
        input=serialized,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment | FAKE_CREDENTIALS,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    answer = json.loads(completed.stdout.strip().splitlines()[-1])
    assert answer["failures"] == []
    assert answer["inputs"]["failure_reason"] == OUT_OF_MEMORY_FAILURE


def test_the_guard_watches_the_endpoint_name_and_exposes_what_check_found(pulumi_program) -> None:
    registered = _registered_guard(pulumi_program, "embedding-endpoint-dev")
    assert registered.inputs["endpoint_name"] == "embedding-endpoint-dev"
    assert registered.inputs["region"] == "us-east-1"
    assert registered.outputs["failed_endpoint"] == ""


@pytest.mark.parametrize(
    ("field", "value"),
    [("endpoint_name", ""), ("region", ""), ("delete_timeout_seconds", 0)],
)
def test_invalid_args_are_refused(field: str, value: Any) -> None:
    args = {"endpoint_name": "e", "region": "us-east-1"} | {field: value}
    with pytest.raises(ValueError, match="FailedEndpointGuardArgs"):
        FailedEndpointGuardArgs(**args)


def test_settings_of_another_region_are_refused() -> None:
    args = {"endpoint_name": "e", "region": "us-east-1", "aws": AwsSettings(region="eu-west-1")}
    with pytest.raises(ValueError, match="FailedEndpointGuardArgs"):
        FailedEndpointGuardArgs(**args)


# --- whose endpoint: tags (issue: endpoints outside the state, stacks sharing a name) ---------

OURS = {"project": "embedding-endpoint", "stack": "dev", OWNER_ID_TAG: "arn:aws:s3:::artifacts-1"}
IMPORT = "pulumi import 'aws:sagemaker/endpoint:Endpoint' embedding-endpoint NAME --parent 'p=u'"


def owned_inputs(aws: AwsEndpoint, name: str, **overrides: Any) -> dict[str, Any]:
    return guard_inputs(aws, name, **({"owner_tags": OURS, "import_command": IMPORT} | overrides))


@pytest.mark.parametrize(
    "tags",
    [
        pytest.param(OURS | {"stack": "prod"}, id="another stack"),
        pytest.param(OURS | {OWNER_ID_TAG: "arn:aws:s3:::artifacts-2"}, id="same name elsewhere"),
        pytest.param({}, id="no tags"),
    ],
)
def test_an_endpoint_of_another_owner_fails_preview_naming_it_and_the_import(
    provider, aws, name, faults, tags
) -> None:
    deployed = faults.model_and_config("theirs", SHA)
    faults.create_endpoint(name, deployed.config_name, tags)
    faults.fail_creation(name)  # even a Failed one is not ours to delete
    checked = provider.check({}, owned_inputs(aws, name))
    (failure,) = checked.failures
    assert failure.property == "endpoint_name"
    assert f"an endpoint named {name} already exists and is not this stack's" in failure.reason
    assert (", ".join(f"{k}={v}" for k, v in sorted(tags.items())) or "no tags") in failure.reason
    assert IMPORT in failure.reason
    provider.delete("id", owned_inputs(aws, name) | {"failed_endpoint": ""})
    assert faults.exists(name), "a foreign endpoint is never deleted"


def test_an_endpoint_with_this_stacks_tags_is_ours(provider, aws, name, faults) -> None:
    deployed = faults.model_and_config("ours", SHA)
    faults.create_endpoint(name, deployed.config_name, OURS)
    faults.fail_creation(name)
    outs = deploy(provider, {}, owned_inputs(aws, name))
    assert not faults.exists(name), "our Failed endpoint is removed"
    assert outs["failed_endpoint"].startswith("arn:")


def test_an_endpoint_from_before_the_owner_tag_is_ours(provider, aws, name, faults) -> None:
    legacy = {key: value for key, value in OURS.items() if key != OWNER_ID_TAG}
    deployed = faults.model_and_config("legacy", SHA)
    faults.create_endpoint(name, deployed.config_name, legacy)
    assert provider.check({}, owned_inputs(aws, name)).failures == []


def test_a_new_stack_compares_the_owner_id_once_it_is_known(provider, aws, name, faults) -> None:
    deployed = faults.model_and_config("theirs", SHA)
    faults.create_endpoint(name, deployed.config_name, OURS | {OWNER_ID_TAG: "arn:other"})
    preview = OURS | {OWNER_ID_TAG: UNKNOWN}  # the bucket is not created yet
    assert provider.check({}, owned_inputs(aws, name, owner_tags=preview)).failures == []
    assert provider.check({}, owned_inputs(aws, name)).failures != []


# --- recreating: a delete that timed out, an endpoint gone, an old state without trigger ------


def test_after_a_delete_that_timed_out_the_next_up_recreates_the_endpoint(
    provider, aws, name, faults, monkeypatch
) -> None:
    outs = first_deploy_fails(provider, aws, name, faults)
    endpoint_trigger = outs["failed_endpoint"]
    checked = provider.check(outs, guard_inputs(aws, name, delete_timeout_seconds=0.2)).inputs
    monkeypatch.setattr(time, "sleep", lambda _: None)
    faults.set_status(name, "Deleting")  # SageMaker takes longer than the wait
    with pytest.raises(TimeoutError):
        provider.create(checked)  # the replacement fails: the guard's state keeps `outs`
    faults.remove(name)  # SageMaker finished the deletion after the wait gave up
    news = provider.check(outs, guard_inputs(aws, name)).inputs
    assert news["failed_endpoint"].startswith("absent ")
    assert endpoint_replaced(provider, outs, news, old_trigger=endpoint_trigger)


def test_an_old_state_without_trigger_still_replaces_through_the_guard(
    provider, aws, name, faults
) -> None:
    outs = first_deploy_fails(provider, aws, name, faults)
    news = provider.check(outs | {"failed_endpoint": ""}, guard_inputs(aws, name)).inputs
    assert not engine_replaces(None, news["failed_endpoint"]), "the engine ignores the trigger"
    assert endpoint_replaced(provider, outs | {"failed_endpoint": ""}, news, old_trigger=None)


def test_a_deleting_endpoint_is_waited_for_and_replaced(provider, aws, name, faults) -> None:
    outs = first_deploy_fails(provider, aws, name, faults)
    outs = deploy(provider, outs, guard_inputs(aws, name))  # removed: trigger recorded
    recreated = faults.model_and_config("again", SHA)
    faults.create_endpoint(name, recreated.config_name)
    faults.set_status(name, "Deleting")  # someone deletes it out of band
    news = provider.check(outs, guard_inputs(aws, name)).inputs
    assert news["failed_endpoint"] != outs["failed_endpoint"]
    assert endpoint_replaced(provider, outs, news, old_trigger=outs["failed_endpoint"])


# --- an endpoint of this stack the state never recorded (Ctrl-C, timeout while waiting) -------

RECORD_KEY = "models/_endpoints/embedding-endpoint-dev.json"


def recorded_inputs(aws: AwsEndpoint, name: str, bucket: str, **overrides: Any) -> dict[str, Any]:
    return owned_inputs(aws, name, record_bucket=bucket, record_key=RECORD_KEY, **overrides)


def record_endpoint(aws: AwsEndpoint, name: str, bucket: str) -> None:
    """The EndpointRecord step of an `up` whose Endpoint step succeeded."""
    EndpointRecordProvider().create(
        {
            "endpoint_name": name,
            "endpoint_config_name": "cfg",
            "bucket": bucket,
            "record_key": RECORD_KEY,
            "region": aws.region,
            "aws_profile": None,
            "aws_assume_roles": [],
            "aws_endpoints": {"sagemaker": aws.url, "s3": aws.url},
        }
    )


def interrupted_create(faults: SageMakerFaults, name: str, status: str = "Creating") -> None:
    """`pulumi up` is stopped while the provider waits: the endpoint exists, unrecorded."""
    deployed = faults.model_and_config("interrupted", SHA)
    faults.create_endpoint(name, deployed.config_name, OURS)
    faults.set_status(name, status)


def test_an_unrecorded_endpoint_of_this_stack_is_removed_once_it_settled(
    provider, aws, name, faults, s3_bucket, monkeypatch
) -> None:
    inputs = recorded_inputs(
        aws, name, s3_bucket, aws_endpoints={"sagemaker": aws.url, "s3": aws.url}
    )
    outs = deploy(provider, {}, inputs)
    interrupted_create(faults, name)
    checked = provider.check(outs, inputs).inputs
    assert checked["failed_endpoint"].startswith("untracked arn:")
    assert provider.diff("id", outs, checked).replaces == ["failed_endpoint"]
    naps: list[float] = []
    monkeypatch.setattr(
        time, "sleep", lambda s: naps.append(s) or faults.set_status(name, "InService")
    )
    provider.create(checked)  # the replaced guard waits, then deletes
    assert naps, "it waited while the endpoint was Creating"
    assert not faults.exists(name), "the next `up` creates the Endpoint the state lacks"


def test_a_recorded_endpoint_is_left_alone(provider, aws, name, faults, s3_bucket) -> None:
    endpoints = {"sagemaker": aws.url, "s3": aws.url}
    inputs = recorded_inputs(aws, name, s3_bucket, aws_endpoints=endpoints)
    outs = deploy(provider, {}, inputs)
    interrupted_create(faults, name, status="InService")
    record_endpoint(aws, name, s3_bucket)
    checked = provider.check(outs, inputs).inputs
    assert provider.diff("id", outs, checked).changes is False
    provider.create(checked)
    assert faults.exists(name)


def test_an_endpoint_from_before_the_owner_tag_is_never_taken_for_unrecorded(
    provider, aws, name, faults, s3_bucket
) -> None:
    endpoints = {"sagemaker": aws.url, "s3": aws.url}
    inputs = recorded_inputs(aws, name, s3_bucket, aws_endpoints=endpoints)
    outs = deploy(provider, {}, inputs)
    deployed = faults.model_and_config("legacy", SHA)
    legacy = {key: value for key, value in OURS.items() if key != OWNER_ID_TAG}
    faults.create_endpoint(name, deployed.config_name, legacy)
    checked = provider.check(outs, inputs).inputs
    assert provider.diff("id", outs, checked).changes is False


def test_a_record_that_cannot_be_read_leaves_the_endpoint_alone(
    provider, aws, name, faults
) -> None:
    endpoints = {"sagemaker": aws.url, "s3": aws.url}
    inputs = recorded_inputs(aws, name, "no-such-bucket-here", aws_endpoints=endpoints)
    outs = deploy(provider, {}, inputs)
    interrupted_create(faults, name, status="InService")
    checked = provider.check(outs, inputs).inputs
    assert provider.diff("id", outs, checked).changes is False
