"""HfModelPackager under Pulumi mocks: what it declares for each runner, and its argument checks."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pulumi
import pytest
from pulumi.runtime import rpc

from components.packager import LOADER_MEMORY_MB, HfModelPackager, HfModelPackagerArgs
from deploy_account.session import AwsSettings
from facts.onnx_fusion import MAX_FUSED_GRAPH_BYTES
from facts.onnx_runtime import RUNTIME_WHEELS
from loader.version import format_version
from tests.fixtures.pulumi_mocks import DYNAMIC_RESOURCE, ProgramRun, RegisteredResource

BUCKET_ARN = "arn:aws:s3:::artifacts-bucket"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:hf-token-AbCdEf"
FUNCTION = "aws:lambda/function:Function"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
LOADER_CODE = "aws:s3/bucketObjectv2:BucketObjectv2"
COMPONENT = "embedding-endpoint:index:HfModelPackager"


def args(**overrides: object) -> HfModelPackagerArgs:
    base: dict[str, object] = {
        "bucket_name": "artifacts-bucket",
        "bucket_arn": BUCKET_ARN,
        "model_id": "sentence-transformers/all-MiniLM-L6-v2",
        "revision": "main",
        "runner": "lambda",
        "aws": AwsSettings(region="us-east-1"),
    }
    return HfModelPackagerArgs(**(base | overrides))  # type: ignore[arg-type]


@pytest.fixture
def declare_in(pulumi_program: Callable[..., ProgramRun]) -> Callable[..., ProgramRun]:
    """Declare one HfModelPackager under fresh mocks in a region; what was registered."""

    def run(region: str, packager_args: HfModelPackagerArgs) -> ProgramRun:
        def program() -> None:
            packager = HfModelPackager("model", packager_args)
            pulumi.export("sha256", packager.sha256)
            pulumi.export("artifactKey", packager.artifact_key)
            pulumi.export("revision", packager.revision)

        return pulumi_program({"aws:region": region}, program=program)

    return run


@pytest.fixture
def declare(declare_in: Callable[..., ProgramRun]) -> Callable[..., ProgramRun]:
    """Declare one HfModelPackager in us-east-1."""
    return lambda packager_args: declare_in("us-east-1", packager_args)


def statements(run: ProgramRun) -> dict[str, dict]:
    (policy,) = run.of_type(ROLE_POLICY)
    return {s["Sid"]: s for s in json.loads(policy.outputs["policy"])["Statement"]}


def children_of(run: ProgramRun, parent: RegisteredResource) -> set[str]:
    return {r.typ for r in run.resources if r.parent == parent.urn}


def test_lambda_runner_declares_function_role_policy_and_logs_under_the_component(
    declare,
) -> None:
    run = declare(args())
    component = run.one(COMPONENT)
    assert children_of(run, component) == {
        FUNCTION,
        LOADER_CODE,
        ROLE,
        ROLE_POLICY,
        LOG_GROUP,
        DYNAMIC_RESOURCE,
    }


def test_the_loader_role_trusts_lambda_without_source_conditions(declare) -> None:
    # Lambda documents neither aws:SourceAccount nor aws:SourceArn for execution roles.
    (statement,) = json.loads(declare(args()).one(ROLE).inputs["assumeRolePolicy"])["Statement"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert "Condition" not in statement


def test_local_runner_declares_no_lambda(declare) -> None:
    run = declare(args(runner="local"))
    assert {r.typ for r in run.resources} == {COMPONENT, DYNAMIC_RESOURCE}
    assert run.one(DYNAMIC_RESOURCE).inputs["runner"] == "local"


def test_loader_function_runs_python312_for_15_minutes_with_throughput_memory(declare) -> None:
    function = declare(args()).one(FUNCTION).inputs
    assert function["runtime"] == "python3.12"
    assert function["handler"] == "loader.handler.handler"
    assert function["timeout"] == 900
    # What every account may give a function, new ones included; room to fuse the graphs
    # facts/onnx_fusion.py bounds, and /tmp for the export and its fused graph.
    assert function["memorySize"] == LOADER_MEMORY_MB == 3008
    assert function["ephemeralStorage"]["size"] * 1024 * 1024 >= 3 * MAX_FUSED_GRAPH_BYTES
    assert function["architectures"] == ["x86_64"]
    assert function["environment"]["variables"]["HF_HOME"].startswith("/tmp/")


def test_loader_logs_go_to_its_own_log_group(declare) -> None:
    run = declare(args())
    log_group = run.one(LOG_GROUP)
    assert run.one(FUNCTION).inputs["loggingConfig"]["logGroup"] == log_group.outputs["name"]
    assert statements(run)["WriteLogs"]["Resource"] == f"{log_group.outputs['arn']}:*"


def test_loader_role_writes_only_under_the_key_prefix(declare) -> None:
    written = statements(declare(args(key_prefix="models/")))
    assert written["WritePrefix"]["Resource"] == f"{BUCKET_ARN}/models/*"
    assert "s3:AbortMultipartUpload" in written["WritePrefix"]["Action"]
    assert written["ListArtifactBucket"]["Resource"] == BUCKET_ARN
    assert set(written["ListArtifactBucket"]["Action"]) == {
        "s3:ListBucket",
        "s3:ListBucketMultipartUploads",
    }


def test_loader_role_has_no_wildcard_resources(declare) -> None:
    for statement in statements(declare(args())).values():
        resources = statement["Resource"]
        assert "*" not in ([resources] if isinstance(resources, str) else resources), statement


def test_secret_permission_only_when_a_secret_arn_is_configured(declare) -> None:
    assert "ReadHubToken" not in statements(declare(args()))
    with_secret = statements(declare(args(hf_token_secret_arn=SECRET_ARN)))
    assert with_secret["ReadHubToken"]["Resource"] == SECRET_ARN
    assert with_secret["ReadHubToken"]["Action"] == "secretsmanager:GetSecretValue"


def test_source_archive_read_permission_is_scoped_to_that_object(declare) -> None:
    source = "s3://training-out/job-1/output/model.tar.gz"
    read = statements(declare(args(source_model_data_url=source)))["ReadSourceArtifact"]
    assert read["Resource"] == "arn:aws:s3:::training-out/job-1/output/model.tar.gz"


def test_no_arn_of_a_china_stack_names_the_commercial_partition(declare_in) -> None:
    run = declare_in(
        "cn-north-1",
        args(
            aws=AwsSettings(region="cn-north-1"),
            bucket_arn="arn:aws-cn:s3:::artifacts-bucket",
            source_model_data_url="s3://training-out/job-1/output/model.tar.gz",
        ),
    )
    for resource in run.resources:
        assert "arn:aws:" not in json.dumps(resource.inputs, default=str), resource.name


def test_dynamic_resource_gets_what_the_provider_needs(declare) -> None:
    run = declare(args(aws=AwsSettings("us-east-1", endpoints=(("s3", "http://127.0.0.1:4751"),))))
    inputs = run.one(DYNAMIC_RESOURCE).inputs
    assert inputs["model_id"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert inputs["requested_revision"] == "main"
    assert inputs["bucket"] == "artifacts-bucket"
    assert inputs["aws_endpoints"] == {"s3": "http://127.0.0.1:4751"}
    assert inputs["function_name"] == run.one(FUNCTION).outputs["name"]
    assert inputs["format_version"] == format_version()


def test_token_reaches_the_dynamic_resource_as_a_secret(declare) -> None:
    inputs = declare(args(hf_token="hf_abc")).one(DYNAMIC_RESOURCE).inputs
    # How the engine receives a secret value: wrapped with Pulumi's secret signature.
    assert inputs["hf_token"] == {rpc._special_sig_key: rpc._special_secret_sig, "value": "hf_abc"}


def test_dynamic_resource_is_never_deleted_before_its_replacement(declare) -> None:
    assert declare(args()).one(DYNAMIC_RESOURCE).delete_before_replace is False


def test_packaging_waits_for_the_loader_permissions(declare) -> None:
    run = declare(args())
    dependencies = set(run.one(DYNAMIC_RESOURCE).dependencies)
    assert run.one(ROLE_POLICY).urn in dependencies
    assert run.one(FUNCTION).urn in dependencies


def test_the_loader_function_exists_only_once_its_policy_is_put(declare) -> None:
    # A function created before its role's policy could be invoked while the role still lacks it.
    run = declare(args())
    assert run.one(ROLE_POLICY).urn in run.one(FUNCTION).dependencies


def test_component_outputs_come_from_the_loader_result(declare) -> None:
    outputs = declare(args()).outputs
    assert outputs["artifactKey"].startswith("models/sentence-transformers/all-MiniLM-L6-v2/")
    assert outputs["artifactKey"].endswith(
        f"/{outputs['revision']}/{format_version()}/model.tar.gz"
    )
    assert len(outputs["sha256"]) == 64


def loader_code(run: ProgramRun) -> Path:
    """The zip the loader function is created from: an object the program uploads."""
    function, code = run.one(FUNCTION).inputs, run.one(LOADER_CODE)
    assert "code" not in function  # over Lambda's 50 MB direct upload: from S3
    assert (function["s3Bucket"], function["s3Key"]) == (
        code.outputs["bucket"],
        code.outputs["key"],
    )
    assert code.inputs["key"] == f"models/loader-code/{Path(code.inputs['source'].path).name}"
    zipped = Path(code.inputs["source"].path)
    digest = base64.b64encode(hashlib.sha256(zipped.read_bytes()).digest()).decode()
    assert function["sourceCodeHash"] == digest  # new code, new function code
    return zipped


def test_the_loader_function_runs_the_cached_bundle(declare, prebuilt_loader_zip: Path) -> None:
    assert loader_code(declare(args())) == prebuilt_loader_zip


def test_auto_engine_ships_the_runtime_wheel_in_the_loader_zip(
    declare, prebuilt_loader_zip: Path
) -> None:
    from components.loader_bundle import bundle_digest

    runtime = RUNTIME_WHEELS["3.10"]
    run = declare(args(inference_engine="auto", onnx_runtime=runtime))
    assert loader_code(run) == (
        prebuilt_loader_zip.parent / f"loader-{bundle_digest(runtime=runtime)}.zip"
    )
    inputs = run.one(DYNAMIC_RESOURCE).inputs
    assert (inputs["inference_engine"], inputs["container_python"]) == ("auto", "3.10")


def test_torch_engine_needs_no_runtime_anywhere(declare, prebuilt_loader_zip: Path) -> None:
    run = declare(args(inference_engine="torch", onnx_runtime=RUNTIME_WHEELS["3.10"]))
    assert loader_code(run) == prebuilt_loader_zip
    inputs = run.one(DYNAMIC_RESOURCE).inputs
    assert (inputs["inference_engine"], inputs.get("container_python")) == ("torch", None)


def test_component_exposes_the_engine_the_archive_is_for(declare_in) -> None:
    def engine_of(**overrides: object) -> str:
        run = declare_in("us-east-1", args(**overrides))
        return run.one(DYNAMIC_RESOURCE).outputs["engine"]

    assert engine_of(inference_engine="auto", onnx_runtime=RUNTIME_WHEELS["3.11"]) == "onnx"
    assert engine_of(inference_engine="torch") == "torch"


@pytest.mark.parametrize(
    ("overrides", "allowed"),
    [
        ({"inference_engine": "tensorrt"}, "expected one of auto, torch, onnx"),
        ({"inference_engine": "onnx"}, "needs onnx_runtime"),
        (
            {
                "inference_engine": "onnx",
                "onnx_runtime": RUNTIME_WHEELS["3.10"],
                "source_model_data_url": "s3://training-out/job/model.tar.gz",
            },
            "not a source_model_data_url",
        ),
    ],
)
def test_invalid_engine_arguments_are_refused(overrides: dict, allowed: str) -> None:
    with pytest.raises(ValueError, match="HfModelPackagerArgs.inference_engine") as failure:
        args(**overrides)
    assert allowed in str(failure.value)


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("runner", "docker", "expected one of lambda, local"),
        ("model_id", "no-slash", "expected a Hub repo id"),
        ("key_prefix", "/models", "'/'-terminated path segments"),
        ("key_prefix", "models", "'/'-terminated path segments"),
        ("hf_token_secret_arn", "my-secret", "expected a Secrets Manager secret ARN"),
        ("source_model_data_url", "https://x/model.tar.gz", "s3://bucket/path/model.tar.gz"),
        ("source_model_data_url", "s3://b/x.zip", "s3://bucket/path/model.tar.gz"),
        ("expected_sha256", "abc", "64 lowercase hex characters"),
        ("local_timeout_seconds", 0, "positive number of seconds"),
        ("onnx_quantization", "int4", "expected one of none, int8"),
    ],
)
def test_invalid_argument_is_named_with_what_is_allowed(
    field: str, value: object, allowed: str
) -> None:
    with pytest.raises(ValueError, match=f"HfModelPackagerArgs.{field}") as failure:
        args(**{field: value})
    assert allowed in str(failure.value)


def test_int8_without_an_onnx_archive_is_refused_naming_the_argument() -> None:
    with pytest.raises(ValueError, match="HfModelPackagerArgs.onnx_quantization 'int8'"):
        args(inference_engine="torch", onnx_quantization="int8")


def test_token_and_token_secret_are_mutually_exclusive() -> None:
    with pytest.raises(ValueError, match="hf_token_secret_arn cannot be combined with hf_token"):
        args(hf_token="hf_abc", hf_token_secret_arn=SECRET_ARN)
