"""The whole program (`__main__.py`) under Pulumi mocks, with the real dev and prod stack files."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pulumi
import pytest

from components import images
from components.endpoint_monitoring import ALARMS
from facts import stack
from tests.fixtures.pulumi_mocks import DYNAMIC_RESOURCE, ProgramRun
from tests.support.stacks import stack_config

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "aws:s3/bucket:Bucket"
MODEL = "aws:sagemaker/model:Model"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
# The packager's dynamic resource (the other one is the failed-endpoint guard).
PACKAGED = "model-artifact"
CONTRACT_OUTPUTS = {
    "endpointName",
    "endpointArn",
    "bucketName",
    "modelDataUrl",
    "modelId",
    "modelRevision",
    "artifactSha256",
    "inferenceEngine",
    "region",
    "backend",
    "smokeTestCommand",
    "warnings",
    "modelName",
}


@pytest.fixture
def dev(pulumi_program: Callable[..., ProgramRun]) -> ProgramRun:
    return pulumi_program(stack_config("dev"), stack="dev")


@pytest.fixture
def prod(pulumi_program: Callable[..., ProgramRun]) -> ProgramRun:
    return pulumi_program(stack_config("prod"), stack="prod")


def _serverless(run: ProgramRun) -> dict:
    (variant,) = run.one(CONFIG).inputs["productionVariants"]
    return variant["serverlessConfig"]


def _statements(run: ProgramRun) -> list[dict]:
    found = []
    for policy in run.of_type(ROLE_POLICY):
        found += json.loads(policy.inputs["policy"])["Statement"]
    return found


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def test_dev_endpoint_is_small_and_scales_to_zero(dev: ProgramRun) -> None:
    assert _serverless(dev) == {"memorySizeInMb": 2048, "maxConcurrency": 2}


def test_prod_endpoint_has_more_memory_concurrency_and_a_warm_instance(prod: ProgramRun) -> None:
    assert _serverless(prod) == {
        "memorySizeInMb": 4096,
        "maxConcurrency": 20,
        "provisionedConcurrency": 1,
    }


def test_prod_serves_a_larger_model_than_dev(dev: ProgramRun, prod: ProgramRun) -> None:
    assert dev.outputs["modelId"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert prod.outputs["modelId"] == "BAAI/bge-base-en-v1.5"


def test_image_is_the_default_cpu_dlc_of_the_stack_region(dev: ProgramRun) -> None:
    image = dev.one(MODEL).inputs["primaryContainer"]["image"]
    assert image == (
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:"
        + images.DEFAULT_IMAGE_TAG
    )
    assert dev.outputs["imageUri"] == image


def test_image_follows_the_region_and_the_configured_tag(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    tag = "2.3.0-transformers4.48.0-cpu-py311-ubuntu22.04"
    config = stack_config("dev", imageTag=tag) | {"aws:region": "ap-southeast-3"}
    run = pulumi_program(config, stack="dev")
    assert run.one(MODEL).inputs["primaryContainer"]["image"] == (
        f"907027046896.dkr.ecr.ap-southeast-3.amazonaws.com/huggingface-pytorch-inference:{tag}"
    )


def test_model_data_url_is_wired_from_the_packager(dev: ProgramRun) -> None:
    packaged = dev.named(PACKAGED).outputs
    assert dev.one(MODEL).inputs["primaryContainer"]["modelDataUrl"] == packaged["model_data_url"]
    assert dev.outputs["modelDataUrl"] == packaged["model_data_url"]
    assert packaged["model_data_url"].startswith(f"s3://{dev.outputs['bucketName']}/models/")


def test_pinned_revision_and_archive_hash_are_exported(dev: ProgramRun) -> None:
    packaged = dev.named(PACKAGED).outputs
    assert re.fullmatch(r"[0-9a-f]{40}", dev.outputs["modelRevision"])
    assert dev.outputs["modelRevision"] == packaged["revision"]
    assert dev.outputs["artifactSha256"] == packaged["sha256"]
    env = dev.one(MODEL).inputs["primaryContainer"]["environment"]
    assert env["EMBEDDING_MODEL_REVISION"] == packaged["revision"]


def test_a_rebuilt_archive_at_the_same_url_replaces_the_model(dev: ProgramRun) -> None:
    # The archive's sha256 is a Model input: a new packaging format at the same key changes it,
    # which replaces the Model and rolls the endpoint onto containers that load the new bytes.
    env = dev.one(MODEL).inputs["primaryContainer"]["environment"]
    assert env["EMBEDDING_ARTIFACT_SHA256"] == dev.named(PACKAGED).outputs["sha256"]


def test_the_default_prompt_goes_to_the_packager_check_and_the_endpoint(
    dev: ProgramRun, pulumi_program: Callable[..., ProgramRun]
) -> None:
    run = pulumi_program(stack_config("dev", defaultPromptName="query"), stack="dev")
    # The packager's `check` tests it against the model's prompts at preview.
    assert run.named(PACKAGED).inputs["default_prompt_name"] == "query"
    env = run.one(MODEL).inputs["primaryContainer"]["environment"]
    assert env["EMBEDDING_DEFAULT_PROMPT_NAME"] == "query"
    assert dev.named(PACKAGED).inputs.get("default_prompt_name") is None


def test_max_seq_length_reaches_the_models_environment_only_when_set(
    dev: ProgramRun, pulumi_program: Callable[..., ProgramRun]
) -> None:
    run = pulumi_program(stack_config("dev", maxSeqLength="2048"), stack="dev")
    assert run.one(MODEL).inputs["primaryContainer"]["environment"]["EMBEDDING_MAX_SEQ_LENGTH"] == (
        "2048"
    )
    assert (
        "EMBEDDING_MAX_SEQ_LENGTH" not in dev.one(MODEL).inputs["primaryContainer"]["environment"]
    )


def test_a_token_secret_arn_reaches_the_loader_and_only_its_role_may_read_it(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:hf-token-AbCdEf"
    run = pulumi_program({**stack_config("dev"), "embedding-endpoint:hfTokenSecretArn": arn})
    assert run.named(PACKAGED).inputs["hf_token_secret_arn"] == arn
    reads = [
        s for s in _statements(run) if "secretsmanager:GetSecretValue" in _as_list(s["Action"])
    ]
    assert reads and all(_as_list(s["Resource"]) == [arn] for s in reads)


def test_a_token_in_plain_text_stops_the_program_before_any_resource(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    config = {**stack_config("dev"), "embedding-endpoint:hfToken": "hf_plain"}
    run = pulumi_program(config, raise_errors=False)
    assert isinstance(run.error, pulumi.RunError) and run.resources == []
    assert "'embedding-endpoint:hfToken' is stored in plain text" in str(run.error)
    assert "pulumi config set --secret hfToken" in str(run.error)
    assert "hf_plain" not in str(run.error)


def test_a_secret_token_is_taken(pulumi_program: Callable[..., ProgramRun]) -> None:
    config = {**stack_config("dev"), "embedding-endpoint:hfToken": "hf_secret"}
    run = pulumi_program(config, secret_keys=("embedding-endpoint:hfToken",))
    assert run.named(PACKAGED).inputs["model_id"] == "sentence-transformers/all-MiniLM-L6-v2"


def test_packager_is_told_the_configured_model_and_revision(dev: ProgramRun) -> None:
    inputs = dev.named(PACKAGED).inputs
    assert inputs["model_id"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert inputs["requested_revision"] == "main"
    assert inputs["bucket"] == dev.outputs["bucketName"]


def test_every_contract_output_is_exported(dev: ProgramRun) -> None:
    assert CONTRACT_OUTPUTS <= set(dev.outputs)
    assert dev.outputs["backend"] == "sagemaker"
    assert dev.outputs["region"] == "us-east-1"


def test_every_output_the_program_exports_is_named_in_facts(dev: ProgramRun) -> None:
    named = {value for key, value in vars(stack).items() if key.isupper()}
    assert set(dev.outputs) - named == set()


def test_the_engine_the_archive_is_for_is_exported(
    dev: ProgramRun, pulumi_program: Callable[..., ProgramRun]
) -> None:
    # The mock Hub's models ship an ONNX export: auto (the default) settles on onnx.
    assert dev.outputs["inferenceEngine"] == "onnx"
    torch = pulumi_program(stack_config("dev", inferenceEngine="torch"), stack="dev")
    assert torch.outputs["inferenceEngine"] == "torch"
    assert torch.named(PACKAGED).inputs.get("container_python") is None


def test_the_packager_gets_the_runtime_for_the_image_python(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    tag = "2.3.0-transformers4.48.0-cpu-py311-ubuntu22.04"
    run = pulumi_program(stack_config("dev", imageTag=tag), stack="dev")
    inputs = run.named(PACKAGED).inputs
    assert (inputs["inference_engine"], inputs["container_python"]) == ("auto", "3.11")
    assert run.outputs["modelDataUrl"].split("/")[-3] == "onnx-py311"


def test_onnx_file_reaches_the_packager_and_names_the_artifact_folder(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    run = pulumi_program(stack_config("dev", onnxFile="onnx/model_O2.onnx"), stack="dev")
    inputs = run.named(PACKAGED).inputs
    assert (inputs["onnx_file"], inputs["container_python"]) == ("onnx/model_O2.onnx", "3.10")
    assert run.outputs["modelDataUrl"].split("/")[-3] == "onnx-model_O2-py310"
    default = pulumi_program(stack_config("dev"), stack="dev")
    assert default.named(PACKAGED).inputs.get("onnx_file") is None


def test_onnx_fusion_reaches_the_packager_and_off_names_its_own_folder(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    default = pulumi_program(stack_config("dev"), stack="dev")
    assert default.named(PACKAGED).inputs["onnx_fusion"] is True
    assert default.outputs["modelDataUrl"].split("/")[-3] == "onnx-py310"
    unfused = pulumi_program(stack_config("dev", onnxFusion="false"), stack="dev")
    assert unfused.named(PACKAGED).inputs["onnx_fusion"] is False
    assert unfused.outputs["modelDataUrl"].split("/")[-3] == "onnx-unfused-py310"
    torch = pulumi_program(stack_config("dev", inferenceEngine="torch"), stack="dev")
    assert torch.named(PACKAGED).inputs.get("onnx_fusion") is None


def test_int8_reaches_the_packager_and_names_its_own_folder(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    int8 = pulumi_program(stack_config("dev", onnxQuantization="int8"), stack="dev")
    assert int8.named(PACKAGED).inputs["onnx_quantization"] == "int8"
    assert int8.outputs["modelDataUrl"].split("/")[-3] == "onnx-int8-py310"
    default = pulumi_program(stack_config("dev"), stack="dev")
    assert default.named(PACKAGED).inputs.get("onnx_quantization") is None


def test_endpoint_name_carries_the_stack(dev: ProgramRun, prod: ProgramRun) -> None:
    assert dev.outputs["endpointName"] == "embedding-endpoint-dev"
    assert prod.outputs["endpointName"] == "embedding-endpoint-prod"
    assert dev.one(ENDPOINT).inputs["name"] == dev.outputs["endpointName"]


def test_smoke_test_command_is_the_check_the_deploy_runs(dev: ProgramRun) -> None:
    command = dev.outputs["smokeTestCommand"]
    assert "-m embedding_client.smoke --endpoint embedding-endpoint-dev" in command
    assert "--region us-east-1" in command
    (run,) = dev.of_type("command:local:Command")
    assert run.inputs["create"] == command


def test_the_check_reruns_exactly_when_the_endpoint_moves_to_a_new_configuration(
    dev: ProgramRun,
) -> None:
    (run,) = dev.of_type("command:local:Command")
    assert run.inputs["triggers"] == [dev.outputs["endpointConfigName"]]
    assert dev.one(ENDPOINT).inputs["endpointConfigName"] == dev.outputs["endpointConfigName"]


def test_bucket_blocks_public_access_and_encrypts(dev: ProgramRun) -> None:
    bucket_name = dev.outputs["bucketName"]
    block = dev.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert block["bucket"] == bucket_name
    assert all(
        block[flag] is True
        for flag in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    encryption = dev.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).inputs
    assert encryption["bucket"] == bucket_name
    assert encryption["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"]


def test_no_role_in_the_program_gets_s3_on_a_wildcard(dev: ProgramRun) -> None:
    bucket_arn = dev.one(BUCKET).outputs["arn"]
    statements = _statements(dev)
    assert statements, "the program declared no role policies"
    for statement in statements:
        actions = _as_list(statement["Action"])
        assert "s3:*" not in actions, statement
        if any(action.startswith("s3:") for action in actions):
            for resource in _as_list(statement["Resource"]):
                assert resource.startswith(bucket_arn), statement


def test_endpoint_role_reads_the_packagers_prefix_of_its_own_bucket(dev: ProgramRun) -> None:
    # The whole prefix, not the model's folder: while an update rolls (or rolls back), the old
    # configuration's containers still read the previous model's archive on a cold start.
    bucket_arn = dev.one(BUCKET).outputs["arn"]
    (endpoint_policy,) = [p for p in dev.of_type(ROLE_POLICY) if p.name == "embedding-policy"]
    statements = json.loads(endpoint_policy.inputs["policy"])["Statement"]
    reads = [s for s in statements if "s3:GetObject" in _as_list(s["Action"])]
    assert [s["Resource"] for s in reads] == [f"{bucket_arn}/models/*"]
    assert dev.outputs["modelDataUrl"].startswith(f"s3://{dev.outputs['bucketName']}/models/")


def test_dev_artifacts_are_destroyable(dev: ProgramRun) -> None:
    bucket = dev.one(BUCKET)
    assert bucket.inputs["forceDestroy"] is True
    assert not bucket.protect and not bucket.retain_on_delete
    assert not dev.one(ENDPOINT).protect
    assert dev.named(PACKAGED).inputs["retain_artifacts"] is False


def test_prod_artifacts_are_retained_and_protected(prod: ProgramRun) -> None:
    bucket = prod.one(BUCKET)
    assert bucket.inputs["forceDestroy"] is False
    assert bucket.protect
    assert bucket.retain_on_delete
    assert prod.one(ENDPOINT).protect
    assert prod.named(PACKAGED).inputs["retain_artifacts"] is True


def test_dev_has_no_warnings(dev: ProgramRun) -> None:
    assert dev.outputs["warnings"] == []
    assert dev.warnings == []


def test_prod_warns_that_provisioned_concurrency_bills_while_idle(prod: ProgramRun) -> None:
    (warning,) = prod.outputs["warnings"]
    assert "provisionedConcurrency=1" in warning
    assert prod.warnings.count(warning) == 1


def test_a_model_too_big_for_the_memory_is_warned_about_after_packaging(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    model = "sentence-transformers/all-MiniLM-L6-v2"
    run = pulumi_program(stack_config("dev"), weights_bytes={model: 1_400 * 1024 * 1024})
    (warning,) = run.outputs["warnings"]
    assert model in warning and "memorySizeMb=2048" in warning
    assert run.warnings.count(warning) == 1


def test_an_int8_archive_is_sized_by_the_int8_rule(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    """170 MB of int8 weights: 2048 MB holds them by the fp32 ONNX rule, not by the int8 one."""
    model = "sentence-transformers/all-MiniLM-L6-v2"
    config = stack_config("dev", onnxQuantization="int8")
    run = pulumi_program(config, weights_bytes={model: 170 * 1024 * 1024})
    (warning,) = run.outputs["warnings"]
    assert "onnx int8 engine" in warning and "memorySizeMb: 3072" in warning


def test_http_api_fronts_the_endpoint_and_exports_its_url(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    run = pulumi_program({**stack_config("dev"), "embedding-endpoint:httpApi": "true"})
    assert run.outputs["httpApiUrl"].startswith("https://")
    assert run.outputs["httpApiUrl"].endswith("/embed")
    invokes = [s for s in _statements(run) if "sagemaker:InvokeEndpoint" in _as_list(s["Action"])]
    assert invokes
    assert all(_as_list(s["Resource"]) == [run.outputs["endpointArn"]] for s in invokes)


def test_bedrock_backend_declares_nothing_to_package_or_host(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    run = pulumi_program({"aws:region": "us-east-1", "embedding-endpoint:backend": "bedrock"})
    declared = {r.typ for r in run.resources}
    assert not {t for t in declared if t.startswith(("aws:sagemaker", "aws:s3"))}
    assert DYNAMIC_RESOURCE not in declared
    assert run.outputs["backend"] == "bedrock"
    assert run.outputs["bedrockModelId"] == "amazon.titan-embed-text-v2:0"


def test_the_program_runs_twice_in_one_process_without_leaking_state(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    first = pulumi_program(stack_config("dev"), stack="dev")
    second = pulumi_program(stack_config("prod"), stack="prod")
    again = pulumi_program(stack_config("dev"), stack="dev")
    assert second.outputs["endpointName"] == "embedding-endpoint-prod"
    assert "provisionedConcurrency" in _serverless(second)
    assert sorted(r.urn for r in again.resources) == sorted(r.urn for r in first.resources)
    assert again.outputs == first.outputs


def test_every_log_group_is_managed_with_the_stacks_retention(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    config = stack_config("dev", logRetentionDays="7", httpApi="true")
    run = pulumi_program(config, stack="dev")
    log_groups = run.of_type("aws:cloudwatch/logGroup:LogGroup")
    owners = {r.name for r in log_groups}
    assert owners == {"embedding-logs", "model-loader-logs", "http-proxy-logs", "http-access-logs"}
    assert {r.inputs["retentionInDays"] for r in log_groups} == {7}
    endpoint_logs = run.named("embedding-logs").inputs["name"]
    assert endpoint_logs == f"/aws/sagemaker/Endpoints/{run.outputs['endpointName']}"


def test_dev_logs_are_kept_30_days_by_default(dev: ProgramRun) -> None:
    log_groups = dev.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert {r.inputs["retentionInDays"] for r in log_groups} == {30}


def test_the_endpoint_alarms_notify_the_configured_topic(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    topic = "arn:aws:sns:us-east-1:123456789012:embedding-alerts"
    run = pulumi_program(stack_config("dev", alarmTopicArn=topic), stack="dev")
    alarms = run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert len(alarms) == len(ALARMS)
    assert all(alarm.inputs["alarmActions"] == [topic] for alarm in alarms)
    assert all(
        alarm.inputs["dimensions"]["EndpointName"] == run.outputs["endpointName"]
        for alarm in alarms
    )


def test_the_execution_role_may_put_metrics_only_in_sagemakers_namespace(dev: ProgramRun) -> None:
    metrics = [s for s in _statements(dev) if "cloudwatch:PutMetricData" in _as_list(s["Action"])]
    assert [s["Condition"] for s in metrics] == [
        {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}}
    ]


def test_model_name_is_exported_for_batch_transform(dev: ProgramRun) -> None:
    assert dev.outputs["modelName"] == dev.one(MODEL).outputs["name"]


def test_without_batch_prefixes_no_batch_access_is_granted(dev: ProgramRun) -> None:
    assert not {"batchInputPrefix", "batchOutputPrefix", "batchJobPrefix"} & set(dev.outputs)
    assert not [p for p in dev.of_type(ROLE_POLICY) if p.name == "batch-policy"]
    batch_sids = {"ReadBatchInput", "ListBatchInput", "WriteBatchOutput", "WriteTransformLogs"}
    assert not [s for s in _statements(dev) if s.get("Sid") in batch_sids]


def test_batch_prefixes_extend_the_models_role_with_one_folder_in_and_one_out(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    run = pulumi_program(
        stack_config(
            "dev",
            batchInputPrefix="s3://corpus-bucket/in/",
            batchOutputPrefix="s3://vectors-bucket/out/",
        ),
        stack="dev",
    )
    (batch_policy,) = [p for p in run.of_type(ROLE_POLICY) if p.name == "batch-policy"]
    (role,) = [r for r in run.of_type("aws:iam/role:Role") if r.name == "embedding-role"]
    assert run.one(MODEL).inputs["executionRoleArn"] == role.outputs["arn"]
    assert batch_policy.inputs["role"] == role.outputs["name"]  # the Model's execution role
    statements = {s["Sid"]: s for s in json.loads(batch_policy.inputs["policy"])["Statement"]}
    assert statements["ReadBatchInput"]["Resource"] == "arn:aws:s3:::corpus-bucket/in/*"
    assert statements["WriteBatchOutput"]["Resource"] == "arn:aws:s3:::vectors-bucket/out/*"
    assert statements["WriteTransformLogs"]["Resource"].endswith(
        ":log-group:/aws/sagemaker/TransformJobs:log-stream:embedding-endpoint-dev-batch-*"
    )
    assert run.outputs["batchInputPrefix"] == "s3://corpus-bucket/in/"
    assert run.outputs["batchOutputPrefix"] == "s3://vectors-bucket/out/"
    assert run.outputs["batchJobPrefix"] == "embedding-endpoint-dev-batch-"
