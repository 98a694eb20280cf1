"""ServerlessEmbeddingEndpoint under mocks, and the pure helpers it is built from."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

import pulumi
import pytest

from components import endpoint as endpoint_module
from components.endpoint import (
    ServerlessEmbeddingEndpoint,
    ServerlessEmbeddingEndpointArgs,
    endpoint_name_for,
    model_environment,
)
from components.failed_endpoint_guard import OWNER_ID_TAG
from tests.fixtures.pulumi_mocks import ACCOUNT_ID, ProgramRun

MODEL = "aws:sagemaker/model:Model"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
ROLE = "aws:iam/role:Role"
POLICY = "aws:iam/rolePolicy:RolePolicy"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
GUARD = "pulumi-python:dynamic:Resource"
GUARD_NAME = "embedding-failed-endpoint-guard"
TAG = "2.1.0-transformers4.37.0-cpu-py310-ubuntu22.04"
SHA = "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"
BUCKET_ARN = "arn:aws:s3:::artifacts-1234567"
DATA_URL = f"s3://artifacts-1234567/models/org/name/{SHA}/model.tar.gz"

ARGS = ServerlessEmbeddingEndpointArgs(
    endpoint_name="embedding-endpoint-dev",
    region="eu-south-1",
    image_tag=TAG,
    model_id="org/name",
    model_revision=SHA,
    model_data_url=DATA_URL,
    bucket_arn=BUCKET_ARN,
    artifact_prefix="models/",
    memory_size_mb=3072,
    max_concurrency=7,
)


def _run(
    pulumi_program: Callable[..., ProgramRun],
    args: ServerlessEmbeddingEndpointArgs,
    failed_endpoints: dict[str, str] | None = None,
) -> ProgramRun:
    def program() -> None:
        component = ServerlessEmbeddingEndpoint("embedding", args)
        pulumi.export("endpointName", component.endpoint_name)
        pulumi.export("endpointArn", component.endpoint_arn)
        pulumi.export("roleArn", component.role_arn)
        pulumi.export("endpointConfigName", component.endpoint_config_name)
        pulumi.export("memoryWarning", component.memory_warning)

    return pulumi_program(
        {"aws:region": args.region}, program=program, failed_endpoints=failed_endpoints
    )


@pytest.fixture
def on_demand(pulumi_program: Callable[..., ProgramRun]) -> ProgramRun:
    return _run(pulumi_program, ARGS)


@pytest.fixture
def provisioned(pulumi_program: Callable[..., ProgramRun]) -> ProgramRun:
    return _run(pulumi_program, replace(ARGS, provisioned_concurrency=3, protect=True))


def _serverless(run: ProgramRun) -> dict:
    (variant,) = run.one(CONFIG).inputs["productionVariants"]
    return variant["serverlessConfig"]


def test_serverless_memory_and_max_concurrency_come_from_the_args(on_demand: ProgramRun) -> None:
    serverless = _serverless(on_demand)
    assert serverless["memorySizeInMb"] == 3072
    assert serverless["maxConcurrency"] == 7


def test_provisioned_concurrency_is_absent_when_off(on_demand: ProgramRun) -> None:
    assert "provisionedConcurrency" not in _serverless(on_demand)


def test_provisioned_concurrency_is_set_when_on(provisioned: ProgramRun) -> None:
    assert _serverless(provisioned)["provisionedConcurrency"] == 3


def test_variant_serves_the_declared_model_without_instances(on_demand: ProgramRun) -> None:
    (variant,) = on_demand.one(CONFIG).inputs["productionVariants"]
    assert variant["modelName"] == on_demand.one(MODEL).outputs["name"]
    assert "instanceType" not in variant
    assert "initialInstanceCount" not in variant


def test_image_is_the_cpu_dlc_of_the_regions_registry(on_demand: ProgramRun) -> None:
    image = on_demand.one(MODEL).inputs["primaryContainer"]["image"]
    assert image == (
        f"692866216735.dkr.ecr.eu-south-1.amazonaws.com/huggingface-pytorch-inference:{TAG}"
    )


def test_model_data_url_is_the_packaged_archive(on_demand: ProgramRun) -> None:
    assert on_demand.one(MODEL).inputs["primaryContainer"]["modelDataUrl"] == DATA_URL


def test_container_runs_one_worker_for_feature_extraction(on_demand: ProgramRun) -> None:
    environment = on_demand.one(MODEL).inputs["primaryContainer"]["environment"]
    assert environment["MMS_DEFAULT_WORKERS_PER_MODEL"] == "1"
    assert environment["SAGEMAKER_MODEL_SERVER_WORKERS"] == "1"
    assert environment["HF_TASK"] == "feature-extraction"
    assert environment["EMBEDDING_MODEL_ID"] == "org/name"
    assert environment["EMBEDDING_MODEL_REVISION"] == SHA


def test_container_never_downloads_from_the_hub() -> None:
    environment = model_environment("org/name", SHA)
    assert "HF_MODEL_ID" not in environment  # would make the DLC ignore model.tar.gz
    assert environment["HF_HUB_OFFLINE"] == "1"


def test_model_runs_as_the_components_role(on_demand: ProgramRun) -> None:
    role = on_demand.one(ROLE)
    assert on_demand.one(MODEL).inputs["executionRoleArn"] == role.outputs["arn"]
    assert on_demand.outputs["roleArn"] == role.outputs["arn"]


def test_role_is_assumable_by_sagemaker_only(on_demand: ProgramRun) -> None:
    trust = json.loads(on_demand.one(ROLE).inputs["assumeRolePolicy"])
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Service": "sagemaker.amazonaws.com"}


def test_sagemaker_may_assume_the_role_only_for_this_accounts_resources(
    on_demand: ProgramRun,
) -> None:
    (statement,) = json.loads(on_demand.one(ROLE).inputs["assumeRolePolicy"])["Statement"]
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT_ID},
        "ArnLike": {"aws:SourceArn": f"arn:aws:sagemaker:{ARGS.region}:{ACCOUNT_ID}:*"},
    }


def test_role_reads_only_the_artifact_prefix_of_the_bucket(on_demand: ProgramRun) -> None:
    policy = json.loads(on_demand.one(POLICY).inputs["policy"])
    s3 = [s for s in policy["Statement"] if "s3:GetObject" in s["Action"]]
    assert [s["Resource"] for s in s3] == [f"{BUCKET_ARN}/models/*"]
    for statement in policy["Statement"]:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert "s3:*" not in actions
        if statement["Resource"] == "*" and "Condition" not in statement:
            assert actions == ["ecr:GetAuthorizationToken"]


def test_role_pulls_from_the_dlc_repository_and_logs_to_its_endpoint_group(
    on_demand: ProgramRun,
) -> None:
    policy = json.loads(on_demand.one(POLICY).inputs["policy"])
    resources = {s["Sid"]: s["Resource"] for s in policy["Statement"]}
    assert resources["EcrPull"] == (
        "arn:aws:ecr:eu-south-1:692866216735:repository/huggingface-pytorch-inference"
    )
    assert resources["WriteLogs"] == (
        f"arn:aws:logs:eu-south-1:{ACCOUNT_ID}:log-group:"
        "/aws/sagemaker/Endpoints/embedding-endpoint-dev:*"
    )


def test_policy_is_attached_before_the_model_is_created(on_demand: ProgramRun) -> None:
    policy = on_demand.one(POLICY)
    assert policy.inputs["role"] == on_demand.one(ROLE).outputs["name"]
    assert policy.urn in on_demand.one(MODEL).dependencies


def test_endpoint_keeps_its_name_and_follows_the_new_config(on_demand: ProgramRun) -> None:
    endpoint = on_demand.one(ENDPOINT)
    assert endpoint.inputs["name"] == "embedding-endpoint-dev"
    assert endpoint.inputs["endpointConfigName"] == on_demand.one(CONFIG).outputs["name"]
    assert on_demand.outputs["endpointName"] == "embedding-endpoint-dev"
    assert on_demand.outputs["endpointArn"].endswith(":endpoint/embedding-endpoint-dev")


def test_model_and_config_are_auto_named_and_replaced_create_first(on_demand: ProgramRun) -> None:
    # Every input of these two forces a replacement: a fixed name would collide with itself.
    for typ in (MODEL, CONFIG):
        resource = on_demand.one(typ)
        assert "name" not in resource.inputs, f"{typ} must be auto-named"
        assert "namePrefix" not in resource.inputs
        assert not resource.delete_before_replace
        assert not resource.protect, f"{typ} is replaced on change and cannot be protected"


def test_endpoint_is_protected_only_when_asked(
    on_demand: ProgramRun, provisioned: ProgramRun
) -> None:
    assert not on_demand.one(ENDPOINT).protect
    assert provisioned.one(ENDPOINT).protect


def test_every_child_is_parented_to_the_component(on_demand: ProgramRun) -> None:
    component = on_demand.one("embedding-endpoint:index:ServerlessEmbeddingEndpoint")
    monitoring = on_demand.one("embedding-endpoint:index:EndpointMonitoring")
    assert monitoring.parent == component.urn
    for resource in on_demand.resources:
        if resource.custom:
            assert resource.parent in (component.urn, monitoring.urn), (
                f"{resource.name} is not under the component"
            )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("endpoint_name", "bad_name", "endpoint_name"),
        ("endpoint_name", "x" * 64, "endpoint_name"),
        ("image_tag", "2.1.0-transformers4.37.0-gpu-py310-cu118-ubuntu20.04", "GPU"),
        ("region", "mars-north-1", "registry"),
        ("max_concurrency", 0, "max_concurrency"),
        ("provisioned_concurrency", 8, "provisioned_concurrency"),
    ],
)
def test_invalid_args_are_refused_naming_the_field(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(ARGS, **{field: value})


@pytest.mark.parametrize(
    ("project", "stack", "expected"),
    [
        ("embedding-endpoint", "dev", "embedding-endpoint-dev"),
        ("embedding-endpoint", "team_a.prod", "embedding-endpoint-team-a-prod"),
        ("embedding-endpoint", "org/project/dev", "embedding-endpoint-org-project-dev"),
    ],
)
def test_endpoint_name_carries_project_and_stack(project: str, stack: str, expected: str) -> None:
    assert endpoint_name_for(project, stack) == expected


def test_endpoint_name_is_cut_to_sagemakers_limit_without_a_trailing_dash() -> None:
    name = endpoint_name_for("embedding-endpoint", "a" * 44 + "-" + "b" * 30)
    assert len(name) <= endpoint_module.SAGEMAKER_NAME_MAX
    assert not name.endswith("-")
    replace(ARGS, endpoint_name=name)  # accepted by the args check


def test_endpoint_config_name_is_the_configuration_the_endpoint_follows(
    on_demand: ProgramRun,
) -> None:
    config_name = on_demand.one(CONFIG).outputs["name"]
    assert on_demand.outputs["endpointConfigName"] == config_name
    assert on_demand.one(ENDPOINT).inputs["endpointConfigName"] == config_name


def test_memory_warning_is_an_output_once_the_weights_are_known(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    heavy = replace(ARGS, memory_size_mb=1024, weights_bytes=900 * 2**20, engine="torch")
    heavy = _run(pulumi_program, heavy)
    assert "memorySizeMb=1024" in heavy.outputs["memoryWarning"]
    assert _run(pulumi_program, ARGS).outputs["memoryWarning"] is None


def test_a_replacement_deletes_the_endpoint_first_because_its_name_is_fixed(
    on_demand: ProgramRun,
) -> None:
    # `pulumi up --replace` (and recovery from Failed): create-first would collide with itself.
    assert on_demand.one(ENDPOINT).delete_before_replace


def test_the_endpoint_waits_for_the_failed_endpoint_guard_and_its_log_group(
    on_demand: ProgramRun,
) -> None:
    endpoint = on_demand.one(ENDPOINT)
    assert on_demand.named(GUARD_NAME).urn in endpoint.dependencies
    assert on_demand.one(LOG_GROUP).urn in endpoint.dependencies


def test_the_guard_watches_the_endpoints_name_in_its_region(on_demand: ProgramRun) -> None:
    inputs = on_demand.named(GUARD_NAME).inputs
    assert (inputs["endpoint_name"], inputs["region"]) == ("embedding-endpoint-dev", "eu-south-1")


def test_the_endpoint_is_replaced_when_the_guard_removed_a_failed_endpoint(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    healthy = _run(pulumi_program, ARGS)
    assert healthy.one(ENDPOINT).replacement_trigger == ""
    failed = "arn:aws:sagemaker:eu-south-1:123456789012:endpoint/x created 2026-01-01T00:00:00"
    recovering = _run(pulumi_program, ARGS, {"embedding-endpoint-dev": failed})
    assert recovering.one(ENDPOINT).replacement_trigger == failed


def test_the_endpoints_log_group_is_declared_with_a_retention(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    run = _run(pulumi_program, replace(ARGS, log_retention_days=90))
    log_group = run.one(LOG_GROUP).inputs
    assert log_group["name"] == "/aws/sagemaker/Endpoints/embedding-endpoint-dev"
    assert log_group["retentionInDays"] == 90


def test_a_replaced_guard_replaces_the_endpoint_even_from_a_state_without_trigger(
    on_demand: ProgramRun,
) -> None:
    assert on_demand.one(ENDPOINT).replace_with == (on_demand.named(GUARD_NAME).urn,)


def test_the_endpoint_carries_the_owner_tags_the_guard_compares(on_demand: ProgramRun) -> None:
    tags = on_demand.one(ENDPOINT).inputs["tags"]
    assert tags[OWNER_ID_TAG] == BUCKET_ARN
    assert on_demand.named(GUARD_NAME).inputs["owner_tags"] == tags


def test_the_guard_names_the_import_that_adopts_an_endpoint_of_this_name(
    on_demand: ProgramRun,
) -> None:
    component = on_demand.one("embedding-endpoint:index:ServerlessEmbeddingEndpoint")
    endpoint = on_demand.one(ENDPOINT)
    command = on_demand.named(GUARD_NAME).inputs["import_command"]
    # The engine leaves the root stack's type out of a top-level resource's URN (the mocks
    # keep it): `urn:pulumi:<stack>::<project>::<type>::<name>`.
    project, stack = component.urn.split("::")[1], component.urn.split("::")[0].split(":")[-1]
    urn = f"urn:pulumi:{stack}::{project}::embedding-endpoint:index:ServerlessEmbeddingEndpoint::"
    assert command == (
        f"pulumi import 'aws:sagemaker/endpoint:Endpoint' {endpoint.name} "
        f"embedding-endpoint-dev --parent '{component.name}={urn}{component.name}'"
    )


def test_alarms_and_dashboard_wait_for_the_guards_ownership_check(on_demand: ProgramRun) -> None:
    monitoring = on_demand.one("embedding-endpoint:index:EndpointMonitoring")
    assert on_demand.named(GUARD_NAME).urn in monitoring.dependencies


def test_the_log_group_waits_for_the_guards_ownership_check(on_demand: ProgramRun) -> None:
    """It is named after the endpoint: another stack's endpoint of that name owns one."""
    assert on_demand.named(GUARD_NAME).urn in on_demand.one(LOG_GROUP).dependencies


def test_the_record_is_written_once_the_endpoint_is_in_the_state(on_demand: ProgramRun) -> None:
    record = on_demand.named("embedding-record")
    endpoint = on_demand.one(ENDPOINT)
    assert endpoint.urn in record.dependencies
    assert record.replace_with == (endpoint.urn,), "a recreated endpoint is recorded again"
    guard = on_demand.named(GUARD_NAME).inputs
    assert (guard["record_bucket"], guard["record_key"]) == (
        record.inputs["bucket"],
        record.inputs["record_key"],
    )
    assert record.inputs["bucket"] == BUCKET_ARN.split(":::")[-1]
