"""Stack config: each rule refuses bad input by key, value and allowed values, up front."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import SimpleNamespace

import pulumi
import pytest

from components import config_rules, images
from components.config import (
    CONFIG_KEYS,
    ConfigError,
    StackConfig,
    check_known_keys,
    parse_config,
)
from components.packager import HfModelPackagerArgs
from tests.fixtures.pulumi_mocks import ProgramRun

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
VALID = {"modelId": MODEL}
SHA = "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"

# (overrides of VALID, region, the key the message must name, what it must say is allowed)
INVALID: list[tuple[dict[str, str], str | None, str, str]] = [
    ({"modelId": ""}, "us-east-1", "embedding-endpoint:modelId", "Hub repo id"),
    ({"modelId": "all-MiniLM-L6-v2"}, "us-east-1", "embedding-endpoint:modelId", "'org/name'"),
    ({"modelId": "a/b/c"}, "us-east-1", "embedding-endpoint:modelId", "'org/name'"),
    ({"modelRevision": "-main"}, "us-east-1", "embedding-endpoint:modelRevision", "40-hex"),
    ({"modelRevision": "v1..2"}, "us-east-1", "embedding-endpoint:modelRevision", "a tag"),
    ({"modelRevision": "my branch"}, "us-east-1", "embedding-endpoint:modelRevision", "branch"),
    (
        {"memorySizeMb": "1000"},
        "us-east-1",
        "embedding-endpoint:memorySizeMb",
        "1024, 2048, 3072, 4096, 5120, 6144",
    ),
    (
        {"memorySizeMb": "8192"},
        "us-east-1",
        "embedding-endpoint:memorySizeMb",
        "1024, 2048, 3072, 4096, 5120, 6144",
    ),
    ({"memorySizeMb": "2GB"}, "us-east-1", "embedding-endpoint:memorySizeMb", "2048"),
    ({"maxConcurrency": "0"}, "us-east-1", "embedding-endpoint:maxConcurrency", "1-200"),
    ({"maxConcurrency": "201"}, "us-east-1", "embedding-endpoint:maxConcurrency", "1-200"),
    ({"maxConcurrency": "five"}, "us-east-1", "embedding-endpoint:maxConcurrency", "1-200"),
    (
        {"provisionedConcurrency": "-1"},
        "us-east-1",
        "embedding-endpoint:provisionedConcurrency",
        "0 (off) or an integer 1-200",
    ),
    (
        {"provisionedConcurrency": "6", "maxConcurrency": "5"},
        "us-east-1",
        "embedding-endpoint:provisionedConcurrency",
        "<= maxConcurrency (5)",
    ),
    (
        {"provisionedConcurrency": "201", "maxConcurrency": "200"},
        "us-east-1",
        "embedding-endpoint:provisionedConcurrency",
        "1-200",
    ),
    (
        {"imageTag": "2.1.0-transformers4.37.0-gpu-py310-cu118-ubuntu20.04"},
        "us-east-1",
        "embedding-endpoint:imageTag",
        images.TAG_FORM,
    ),
    (
        {"imageTag": "2.0.0-transformers4.28.1-training-cpu-py310-ubuntu20.04"},
        "us-east-1",
        "embedding-endpoint:imageTag",
        images.TAG_FORM,
    ),
    ({"imageTag": "latest"}, "us-east-1", "embedding-endpoint:imageTag", images.TAG_FORM),
    ({"retainArtifacts": "maybe"}, "us-east-1", "embedding-endpoint:retainArtifacts", "true or"),
    ({"packagingRunner": "docker"}, "us-east-1", "embedding-endpoint:packagingRunner", "lambda"),
    (
        {"sourceModelDataUrl": "https://example.com/model.tar.gz"},
        "us-east-1",
        "embedding-endpoint:sourceModelDataUrl",
        "s3://bucket/path/model.tar.gz",
    ),
    (
        {"sourceModelDataUrl": "s3://bucket/output/model.zip"},
        "us-east-1",
        "embedding-endpoint:sourceModelDataUrl",
        "s3://bucket/path/model.tar.gz",
    ),
    (
        {"hfTokenSecretArn": "hf-token"},
        "us-east-1",
        "embedding-endpoint:hfTokenSecretArn",
        "Secrets Manager secret ARN",
    ),
    (
        {
            "hfTokenSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:hf-AbCdEf",
            "hfToken": "hf_xxx",
        },
        "us-east-1",
        "embedding-endpoint:hfTokenSecretArn",
        "not both",
    ),
    (
        {"expectedArtifactSha256": "abc123"},
        "us-east-1",
        "embedding-endpoint:expectedArtifactSha256",
        "64 lowercase hex",
    ),
    ({"backend": "openai"}, "us-east-1", "embedding-endpoint:backend", "sagemaker, bedrock"),
    (
        {"backend": "bedrock", "bedrockModelId": "openai.text-embedding-3"},
        "us-east-1",
        "embedding-endpoint:bedrockModelId",
        "amazon.titan-embed-text-v2:0",
    ),
    ({"httpApi": "2"}, "us-east-1", "embedding-endpoint:httpApi", "true or false"),
    ({"smokeTest": "perhaps"}, "us-east-1", "embedding-endpoint:smokeTest", "true or false"),
    (
        {"inferenceEngine": "tensorrt"},
        "us-east-1",
        "embedding-endpoint:inferenceEngine",
        "auto, torch, onnx",
    ),
    (
        {"inferenceEngine": "onnx", "sourceModelDataUrl": "s3://bucket/out/model.tar.gz"},
        "us-east-1",
        "embedding-endpoint:inferenceEngine",
        "onnx/model.onnx",
    ),
    (
        {"inferenceEngine": "onnx", "imageTag": "2.9.0-transformers4.56.0-cpu-py313-ubuntu24.04"},
        "us-east-1",
        "embedding-endpoint:inferenceEngine",
        "Python 3.13",
    ),
    ({"httpApiAuth": "basic"}, "us-east-1", "embedding-endpoint:httpApiAuth", "iam, apiKey"),
    ({"defaultPromptName": "a b"}, "us-east-1", "embedding-endpoint:defaultPromptName", "prompt"),
    ({"onnxFile": "graphs/model.onnx"}, "us-east-1", "embedding-endpoint:onnxFile", "at its root"),
    ({"onnxFile": "onnx/sub/model.onnx"}, "us-east-1", "embedding-endpoint:onnxFile", "onnx/"),
    ({"onnxFile": "onnx/model_O4.onnx"}, "us-east-1", "embedding-endpoint:onnxFile", "fp16"),
    ({"onnxFile": "onnx/model_fp16.onnx"}, "us-east-1", "embedding-endpoint:onnxFile", "GPUs"),
    (
        {"onnxFile": "onnx/model_qint8_arm64.onnx"},
        "us-east-1",
        "embedding-endpoint:onnxFile",
        "ARM",
    ),
    (
        {"onnxFile": "onnx/model_O2.onnx", "inferenceEngine": "torch"},
        "us-east-1",
        "embedding-endpoint:onnxFile",
        "set it to auto or onnx",
    ),
    (
        {"onnxFile": "onnx/model_O2.onnx", "backend": "bedrock"},
        "us-east-1",
        "embedding-endpoint:onnxFile",
        "SageMaker backend only",
    ),
    (
        {"onnxFile": "onnx/model_O2.onnx", "sourceModelDataUrl": "s3://bucket/out/model.tar.gz"},
        "us-east-1",
        "embedding-endpoint:onnxFile",
        "packaged for PyTorch",
    ),
    (
        {
            "onnxFile": "onnx/model_O2.onnx",
            "imageTag": "2.9.0-transformers4.56.0-cpu-py313-ubuntu24.04",
        },
        "us-east-1",
        "embedding-endpoint:onnxFile",
        "no ONNX Runtime wheel is known",
    ),
    ({"onnxFusion": "sometimes"}, "us-east-1", "embedding-endpoint:onnxFusion", "true or false"),
    (
        {"allowPickledWeights": "maybe"},
        "us-east-1",
        "embedding-endpoint:allowPickledWeights",
        "true or false",
    ),
    (
        {"onnxFusion": "false", "inferenceEngine": "torch"},
        "us-east-1",
        "embedding-endpoint:onnxFusion",
        "packages no ONNX graph; unset it",
    ),
    (
        {"onnxFusion": "true", "backend": "bedrock"},
        "us-east-1",
        "embedding-endpoint:onnxFusion",
        "SageMaker backend only",
    ),
    (
        {"onnxFusion": "false", "sourceModelDataUrl": "s3://bucket/out/model.tar.gz"},
        "us-east-1",
        "embedding-endpoint:onnxFusion",
        "packaged for PyTorch",
    ),
    (
        {"onnxQuantization": "int4"},
        "us-east-1",
        "embedding-endpoint:onnxQuantization",
        "one of none, int8",
    ),
    (
        {"onnxQuantization": "int8", "inferenceEngine": "torch"},
        "us-east-1",
        "embedding-endpoint:onnxQuantization",
        "packages no ONNX graph to quantize; int8 needs the ONNX engine",
    ),
    (
        {
            "onnxQuantization": "int8",
            "imageTag": "2.9.0-transformers4.56.0-cpu-py313-ubuntu24.04",
        },
        "us-east-1",
        "embedding-endpoint:onnxQuantization",
        "no ONNX Runtime wheel is known for the image's Python",
    ),
    (
        {"onnxQuantization": "int8", "backend": "bedrock"},
        "us-east-1",
        "embedding-endpoint:onnxQuantization",
        "SageMaker backend only",
    ),
    (
        {"onnxQuantization": "int8", "sourceModelDataUrl": "s3://bucket/out/model.tar.gz"},
        "us-east-1",
        "embedding-endpoint:onnxQuantization",
        "or set onnxQuantization none",
    ),
    ({"maxSeqLength": "0"}, "us-east-1", "embedding-endpoint:maxSeqLength", "integer 1-131072"),
    ({"maxSeqLength": "long"}, "us-east-1", "embedding-endpoint:maxSeqLength", "tokens per text"),
    (
        {"maxSeqLength": "512", "backend": "bedrock"},
        "us-east-1",
        "embedding-endpoint:maxSeqLength",
        "needs backend sagemaker",
    ),
    (
        {"runtimeEndpointUrl": "127.0.0.1:8080"},
        "us-east-1",
        "embedding-endpoint:runtimeEndpointUrl",
        "http(s)://host[:port]",
    ),
    # Operations: log retention and alarms.
    ({"logRetentionDays": "10"}, "us-east-1", "embedding-endpoint:logRetentionDays", "7, 14, 30"),
    ({"logRetentionDays": "0"}, "us-east-1", "embedding-endpoint:logRetentionDays", "(days)"),
    (
        {"alarmTopicArn": "arn:aws:sqs:us-east-1:123456789012:alerts"},
        "us-east-1",
        "embedding-endpoint:alarmTopicArn",
        "an SNS topic ARN",
    ),
    ({"alarmServerErrors": "0"}, "us-east-1", "embedding-endpoint:alarmServerErrors", "1-"),
    ({"alarmClientErrors": "many"}, "us-east-1", "embedding-endpoint:alarmClientErrors", "1-"),
    (
        {"alarmModelLatencyMs": "90000"},
        "us-east-1",
        "embedding-endpoint:alarmModelLatencyMs",
        "1-60000",
    ),
    (
        {"alarmModelSetupTimeMs": "-5"},
        "us-east-1",
        "embedding-endpoint:alarmModelSetupTimeMs",
        "1-600000",
    ),
    (
        {"alarmConcurrencyPercent": "150"},
        "us-east-1",
        "embedding-endpoint:alarmConcurrencyPercent",
        "1-100",
    ),
    # Batch Transform folders.
    (
        {"batchInputPrefix": "s3://corpus-bucket/in", "batchOutputPrefix": "s3://out-bucket/v/"},
        "us-east-1",
        "embedding-endpoint:batchInputPrefix",
        "ending in '/'",
    ),
    (
        {"batchInputPrefix": "s3://corpus-bucket/in/"},
        "us-east-1",
        "embedding-endpoint:batchOutputPrefix",
        "one folder and writes another",
    ),
    (
        {"batchInputPrefix": "s3://corpus-bucket/in/", "batchOutputPrefix": "s3://corpus-bucket/"},
        "us-east-1",
        "embedding-endpoint:batchOutputPrefix",
        "not the whole bucket",
    ),
    (
        {
            "batchInputPrefix": "s3://corpus-bucket/in/",
            "batchOutputPrefix": "s3://corpus-bucket/in/vectors/",
        },
        "us-east-1",
        "embedding-endpoint:batchOutputPrefix",
        "a job would read its own output",
    ),
    (
        {
            "backend": "bedrock",
            "batchInputPrefix": "s3://corpus-bucket/in/",
            "batchOutputPrefix": "s3://corpus-bucket/out/",
        },
        "us-east-1",
        "embedding-endpoint:batchInputPrefix",
        "needs backend sagemaker",
    ),
    (
        {"backend": "bedrock", "provisionedConcurrency": "1", "memorySizeMb": "6144"},
        "us-east-1",
        "embedding-endpoint:memorySizeMb",
        "a SageMaker key, and this stack's backend is bedrock",
    ),
    (
        {"backend": "bedrock", "modelId": "BAAI/bge-small-en-v1.5"},
        "us-east-1",
        "embedding-endpoint:modelId",
        "unset it, or set backend: sagemaker",
    ),
    (
        {"backend": "bedrock", "inferenceEngine": "onnx"},
        "us-east-1",
        "embedding-endpoint:inferenceEngine",
        "a SageMaker key, and this stack's backend is bedrock",
    ),
    (
        {"backend": "bedrock", "alarmServerErrors": "3"},
        "us-east-1",
        "embedding-endpoint:alarmServerErrors",
        "a SageMaker key, and this stack's backend is bedrock",
    ),
    (
        {"bedrockModelId": "cohere.embed-english-v3"},
        "us-east-1",
        "embedding-endpoint:bedrockModelId",
        "a Bedrock key, and this stack's backend is sagemaker",
    ),
    (
        {"httpApiAuth": "apiKey"},
        "us-east-1",
        "embedding-endpoint:httpApiAuth",
        "httpApi is not true: unset it, or set httpApi: true",
    ),
    (
        {"sourceModelDataUrl": "s3://models/run-7/model.tar.gz", "modelRevision": SHA},
        "us-east-1",
        "embedding-endpoint:modelRevision",
        "sourceModelDataUrl packages that S3 archive instead of a Hub revision",
    ),
    (
        {
            "sourceModelDataUrl": "s3://models/run-7/model.tar.gz",
            "hfTokenSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:hf-AbCdEf",
        },
        "us-east-1",
        "embedding-endpoint:hfTokenSecretArn",
        "a Hub key, and sourceModelDataUrl packages that S3 archive",
    ),
    ({"memorySizeMb": "2_048"}, "us-east-1", "embedding-endpoint:memorySizeMb", "1024, 2048"),
    ({"maxConcurrency": "+5"}, "us-east-1", "embedding-endpoint:maxConcurrency", "1-200"),
    ({"maxConcurrency": "\u0665"}, "us-east-1", "embedding-endpoint:maxConcurrency", "1-200"),
    (
        {"runtimeEndpointUrl": "http://127.0.0.1:99999"},
        "us-east-1",
        "embedding-endpoint:runtimeEndpointUrl",
        "port 1-65535",
    ),
    (
        {"hfTokenSecretArn": "arn:awsfoo:secretsmanager:us-east-1:123456789012:secret:hf"},
        "us-east-1",
        "embedding-endpoint:hfTokenSecretArn",
        "a Secrets Manager secret ARN",
    ),
    (
        {"batchInputPrefix": "s3://corpus/in//", "batchOutputPrefix": "s3://corpus/out/"},
        "us-east-1",
        "embedding-endpoint:batchInputPrefix",
        "no empty folder names",
    ),
    ({}, None, "aws:region", "pulumi config set aws:region"),
    ({}, "mars-north-1", "aws:region", "us-east-1"),
]


def _ids() -> list[str]:
    return [f"{key.split(':')[-1]}={overrides or region}" for overrides, region, key, _ in INVALID]


def test_every_config_key_has_an_invalid_value_in_the_table() -> None:
    covered = {key.split(":", 1)[1] for _, _, key, _ in INVALID if key.startswith("embedding")}
    free_form = {"hfToken"}  # any string: the Hub decides whether it is valid
    assert set(CONFIG_KEYS) - free_form <= covered


@pytest.mark.parametrize(("overrides", "region", "key", "allowed"), INVALID, ids=_ids())
def test_invalid_value_is_refused_naming_the_key_and_the_allowed_values(
    overrides: dict[str, str], region: str | None, key: str, allowed: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(valid_with(overrides), stack="dev", region=region)
    message = str(caught.value)
    assert f"'{key}'" in message
    assert allowed in message
    offending = overrides.get(key.split(":", 1)[1])
    if offending:
        assert offending in message


def valid_with(overrides: dict[str, str]) -> dict[str, str]:
    """A valid stack's config with `overrides`; a Bedrock stack sets no modelId."""
    return (VALID if overrides.get("backend") != "bedrock" else {}) | overrides


@pytest.mark.parametrize(("overrides", "region", "key", "allowed"), INVALID, ids=_ids())
def test_invalid_config_stops_the_program_before_any_resource(
    overrides: dict[str, str],
    region: str | None,
    key: str,
    allowed: str,
    pulumi_program: Callable[..., ProgramRun],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    config = {f"embedding-endpoint:{k}": v for k, v in valid_with(overrides).items()}
    if region:
        config["aws:region"] = region
    run = pulumi_program(config, raise_errors=False)
    assert isinstance(run.error, pulumi.RunError)
    assert f"'{key}'" in str(run.error)
    assert allowed in str(run.error)
    assert run.resources == []


def test_a_misspelt_key_stops_the_program_before_any_resource(
    pulumi_program: Callable[..., ProgramRun],
) -> None:
    config = {"aws:region": "us-east-1", "embedding-endpoint:modelId": MODEL}
    run = pulumi_program(config | {"embedding-endpoint:memorySize": "4096"}, raise_errors=False)
    assert isinstance(run.error, pulumi.RunError)
    assert "'embedding-endpoint:memorySize'" in str(run.error)
    assert run.resources == []


def test_unknown_key_in_the_namespace_is_refused_listing_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        check_known_keys(["aws:region", "embedding-endpoint:memorySize"])
    assert "'embedding-endpoint:memorySize'" in str(caught.value)
    assert "memorySizeMb" in str(caught.value)


def test_keys_of_other_namespaces_are_not_ours_to_judge() -> None:
    check_known_keys(["aws:region", "aws:endpoints", "other-project:anything", "embedding:x"])


@pytest.mark.parametrize(
    "namespace", ["embedding_endpoint", "embeddingEndpoint", "embedding-endpoints"]
)
def test_a_key_in_a_namespace_one_slip_from_ours_is_refused_naming_the_right_one(
    namespace: str,
) -> None:
    with pytest.raises(ConfigError) as caught:
        check_known_keys(["aws:region", f"{namespace}:memorySizeMb"])
    assert str(caught.value) == (
        f"config key '{namespace}:memorySizeMb' is not in this program's namespace "
        "'embedding-endpoint', so nothing reads it: set it as 'embedding-endpoint:memorySizeMb'"
    )


def test_defaults_match_the_documented_table() -> None:
    cfg = parse_config(VALID, stack="dev", region="us-east-1")
    assert cfg == StackConfig(
        stack="dev",
        region="us-east-1",
        model_id=MODEL,
        model_revision="main",
        memory_size_mb=2048,
        max_concurrency=5,
        provisioned_concurrency=0,
        image_tag=images.DEFAULT_IMAGE_TAG,
        retain_artifacts=False,
        packaging_runner="lambda",
    )


@pytest.mark.parametrize("revision", ["main", "v1.0", "refs/pr/12", SHA])
def test_branches_tags_pr_refs_and_commit_shas_are_accepted(revision: str) -> None:
    cfg = parse_config(VALID | {"modelRevision": revision}, stack="dev", region="us-east-1")
    assert cfg.model_revision == revision


@pytest.mark.parametrize(("text", "value"), [("true", True), ("False", False), ("1", True)])
def test_booleans_accept_the_usual_spellings(text: str, value: bool) -> None:
    cfg = parse_config(VALID | {"retainArtifacts": text}, stack="prod", region="us-east-1")
    assert cfg.retain_artifacts is value


def test_provisioned_concurrency_is_allowed_up_to_max_concurrency() -> None:
    cfg = parse_config(
        VALID | {"maxConcurrency": "3", "provisionedConcurrency": "3"},
        stack="prod",
        region="us-east-1",
    )
    assert (cfg.max_concurrency, cfg.provisioned_concurrency) == (3, 3)


def test_provisioned_concurrency_warns_that_it_bills_while_idle() -> None:
    cfg = parse_config(VALID | {"provisionedConcurrency": "2"}, stack="prod", region="us-east-1")
    (warning,) = cfg.warnings
    assert "provisionedConcurrency=2" in warning
    assert "no traffic" in warning


def test_no_warnings_for_the_defaults() -> None:
    assert parse_config(VALID, stack="dev", region="us-east-1").warnings == ()


def test_an_image_without_safetensors_support_is_accepted_with_a_warning() -> None:
    tag = "1.13.1-transformers4.26.0-cpu-py39-ubuntu20.04"
    cfg = parse_config(VALID | {"imageTag": tag}, stack="dev", region="us-east-1")
    assert cfg.image_tag == tag
    assert any("safetensors" in warning for warning in cfg.warnings)


def test_inference_engine_defaults_to_auto_with_the_runtime_for_the_default_image() -> None:
    cfg = parse_config(VALID, stack="dev", region="us-east-1")
    assert cfg.inference_engine == "auto"
    assert cfg.onnx_runtime is not None
    assert cfg.onnx_runtime.python_tag in images.DEFAULT_IMAGE_TAG  # py310


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("onnx/model_O2.onnx", "onnx/model_O2.onnx"),
        ("onnx/model_qint8_avx512_vnni.onnx", "onnx/model_qint8_avx512_vnni.onnx"),
        (" onnx/model_O3.onnx ", "onnx/model_O3.onnx"),
        ("onnx/model.onnx", None),  # the default graph, said out loud
        ("", None),
    ],
)
def test_onnx_file_names_the_graph_the_onnx_engine_runs(value: str, expected: str | None) -> None:
    cfg = parse_config(VALID | {"onnxFile": value}, stack="dev", region="us-east-1")
    assert cfg.onnx_file == expected
    assert cfg.inference_engine == "auto"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [({}, True), ({"onnxFusion": "false"}, False), ({"onnxFusion": "true"}, True)],
)
def test_onnx_fusion_is_on_unless_the_stack_turns_it_off(raw: dict, expected: bool) -> None:
    assert parse_config(VALID | raw, stack="dev", region="us-east-1").onnx_fusion is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [({}, "none"), ({"onnxQuantization": "int8"}, "int8"), ({"onnxQuantization": "none"}, "none")],
)
def test_onnx_quantization_is_fp32_unless_the_stack_asks_for_int8(raw: dict, expected: str) -> None:
    assert parse_config(VALID | raw, stack="dev", region="us-east-1").onnx_quantization == expected


def test_onnx_quantization_none_is_accepted_with_the_torch_engine() -> None:
    raw = VALID | {"onnxQuantization": "none", "inferenceEngine": "torch"}
    assert parse_config(raw, stack="dev", region="us-east-1").onnx_quantization == "none"


def test_a_token_on_the_local_stack_is_refused_naming_the_way_out() -> None:
    with pytest.raises(ConfigError, match="embedding-endpoint:hfToken' is set on the 'local'"):
        parse_config(VALID | {"hfToken": "hf_secret"}, stack="local", region="us-east-1")
    assert parse_config(VALID | {"hfToken": "hf_secret"}, stack="dev", region="us-east-1")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, False),
        ({"allowPickledWeights": "true"}, True),
        ({"allowPickledWeights": "false"}, False),
    ],
)
def test_pickled_weights_are_refused_unless_the_stack_trusts_them(
    raw: dict, expected: bool
) -> None:
    cfg = parse_config(VALID | raw, stack="dev", region="us-east-1")
    assert cfg.allow_pickled_weights is expected
    args = HfModelPackagerArgs.for_stack(
        cfg, SimpleNamespace(bucket_name="b", bucket_arn="arn:aws:s3:::b")
    )
    assert args.allow_pickled_weights is expected


@pytest.mark.parametrize(
    ("tag", "python"),
    [
        ("1.13.1-transformers4.26.0-cpu-py39-ubuntu20.04", "3.9"),
        ("2.3.0-transformers4.48.0-cpu-py311-ubuntu22.04", "3.11"),
        ("2.6.0-transformers4.49.0-cpu-py312-ubuntu22.04", "3.12"),
    ],
)
def test_the_onnx_runtime_wheel_follows_the_image_python(tag: str, python: str) -> None:
    cfg = parse_config(VALID | {"imageTag": tag}, stack="dev", region="us-east-1")
    assert cfg.onnx_runtime is not None
    assert cfg.onnx_runtime.python == python
    assert f"-cp{python.replace('.', '')}-" in cfg.onnx_runtime.filename


def test_torch_engine_and_source_archives_need_no_onnx_runtime() -> None:
    torch_only = parse_config(VALID | {"inferenceEngine": "torch"}, stack="d", region="us-east-1")
    source = parse_config(
        VALID | {"sourceModelDataUrl": "s3://bucket/out/model.tar.gz"},
        stack="d",
        region="us-east-1",
    )
    assert (torch_only.onnx_runtime, source.onnx_runtime) == (None, None)


def test_auto_on_an_image_without_a_known_runtime_warns_that_it_runs_pytorch() -> None:
    tag = "2.9.0-transformers4.56.0-cpu-py313-ubuntu24.04"
    cfg = parse_config(VALID | {"imageTag": tag}, stack="dev", region="us-east-1")
    assert cfg.onnx_runtime is None
    assert any("auto runs PyTorch" in warning for warning in cfg.warnings)


def test_an_unknown_well_formed_image_tag_deploys_with_a_warning() -> None:
    tag = "2.6.0-transformers4.51.3-cpu-py312-ubuntu22.04"
    cfg = parse_config(VALID | {"imageTag": tag}, stack="dev", region="us-east-1")
    assert cfg.image_tag == tag
    assert any(tag in warning and "not in the table" in warning for warning in cfg.warnings)


def test_bedrock_backend_needs_no_model_id_nor_a_dlc_region() -> None:
    cfg = parse_config({"backend": "bedrock"}, stack="dev", region="us-east-1")
    assert cfg.model_id is None
    assert not cfg.uses_sagemaker


# A value other than its default that each SageMaker-only key accepts on a SageMaker stack.
SAGEMAKER_SAMPLES = {
    "modelId": MODEL,
    "modelRevision": SHA,
    "memorySizeMb": "3072",
    "maxConcurrency": "7",
    "provisionedConcurrency": "1",
    "imageTag": "2.3.0-transformers4.48.0-cpu-py311-ubuntu22.04",
    "hfToken": "<secret>",
    "hfTokenSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:hf-AbCdEf",
    "sourceModelDataUrl": "s3://models/run-7/model.tar.gz",
    "expectedArtifactSha256": "a" * 64,
    "defaultPromptName": "query",
    "allowPickledWeights": "true",
    "inferenceEngine": "torch",
    "retainArtifacts": "true",
    "packagingRunner": "local",
    "smokeTest": "false",
    "runtimeEndpointUrl": "http://127.0.0.1:8080",
    "alarmTopicArn": "arn:aws:sns:us-east-1:123456789012:ops",
    "alarmServerErrors": "3",
    "alarmClientErrors": "20",
    "alarmModelLatencyMs": "1000",
    "alarmModelSetupTimeMs": "60000",
    "alarmConcurrencyPercent": "80",
}


def test_every_sagemaker_only_key_has_a_sample() -> None:
    assert set(SAGEMAKER_SAMPLES) == set(config_rules.SAGEMAKER_ONLY_KEYS)


@pytest.mark.parametrize("name", config_rules.SAGEMAKER_ONLY_KEYS)
def test_a_sagemaker_only_key_is_refused_under_bedrock(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {"backend": "bedrock", name: SAGEMAKER_SAMPLES[name]}, stack="dev", region="us-east-1"
        )
    assert f"'embedding-endpoint:{name}'" in str(caught.value)
    assert "this stack's backend is bedrock" in str(caught.value)


@pytest.mark.parametrize(
    "overrides",
    [
        {"sourceModelDataUrl": "s3://models/run-7/model.tar.gz", "modelRevision": "main"},
        {"httpApiAuth": "iam"},
        {"bedrockModelId": "amazon.titan-embed-text-v2:0"},
        {"backend": "bedrock", "smokeTest": "true", "memorySizeMb": "2048"},
    ],
    ids=["revision-main-beside-a-source", "iam-without-api", "bedrock-model-default", "bedrock"],
)
def test_a_key_written_out_at_its_default_is_not_refused_as_unread(overrides):
    """Existing stack files do this (`modelRevision: main`): it changes nothing."""
    parse_config(valid_with(overrides), stack="dev", region="us-east-1")


def test_a_misspelt_key_from_the_language_hosts_environment_is_refused(
    pulumi_program: Callable[..., ProgramRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `pulumi up` hands the stack's config to a Python program in PULUMI_CONFIG.
    config = {"aws:region": "us-east-1", "embedding-endpoint:modelId": MODEL}
    monkeypatch.setenv(
        "PULUMI_CONFIG", json.dumps(config | {"embedding-endpoint:maxConcurency": "3"})
    )
    run = pulumi_program({}, raise_errors=False)
    assert isinstance(run.error, pulumi.RunError)
    assert "'embedding-endpoint:maxConcurency'" in str(run.error)
    assert run.resources == []


def test_operations_defaults_keep_logs_30_days_and_alarm_without_a_topic() -> None:
    parsed = parse_config(VALID, stack="dev", region="us-east-1")
    assert parsed.log_retention_days == 30
    assert parsed.alarm_topic_arn is None
    assert parsed.alarm_thresholds.server_errors == 1
    assert parsed.alarm_thresholds.model_latency_ms == 5000
    assert parsed.alarm_thresholds.model_setup_time_ms == 120_000


def test_operations_settings_are_read() -> None:
    topic = "arn:aws:sns:eu-west-1:123456789012:embedding-alerts"
    parsed = parse_config(
        VALID
        | {
            "logRetentionDays": "90",
            "alarmTopicArn": topic,
            "alarmClientErrors": "50",
            "alarmModelLatencyMs": "800",
        },
        stack="dev",
        region="eu-west-1",
    )
    assert parsed.log_retention_days == 90
    assert parsed.alarm_topic_arn == topic
    assert (parsed.alarm_thresholds.client_errors, parsed.alarm_thresholds.model_latency_ms) == (
        50,
        800,
    )


def test_batch_prefixes_are_read_as_folders_of_any_buckets() -> None:
    cfg = parse_config(
        VALID
        | {"batchInputPrefix": "s3://corpus-bucket/in/", "batchOutputPrefix": "s3://vec/out/a/"},
        stack="dev",
        region="us-east-1",
    )
    assert (cfg.batch_input_prefix, cfg.batch_output_prefix) == (
        "s3://corpus-bucket/in/",
        "s3://vec/out/a/",
    )


def test_max_seq_length_is_the_models_own_unless_set() -> None:
    assert parse_config(VALID, stack="dev", region="us-east-1").max_seq_length is None
    capped = parse_config(VALID | {"maxSeqLength": "2048"}, stack="dev", region="us-east-1")
    assert capped.max_seq_length == 2048
