"""Stack configuration: read once, validated before any resource is declared.

Each key is declared once, on its `StackConfig` field (components/config_keys.py `key`);
cross-key rules live in components/config_rules.py. Pure: `parse_config` takes a plain mapping.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

from components import config_rules, images
from components.config_keys import (
    NAMESPACE,
    Boolean,
    Checked,
    Choice,
    ConfigError,
    Integer,
    Text,
    declared,
    invalid,
    key,
    parse_keys,
    qualified,
    set_away_from_default,
)
from components.endpoint_monitoring import AlarmThresholds
from components.packaging_runs import RUNNERS
from deploy_account.session import AssumeRole, AwsSettings
from facts import bedrock_models, cloudwatch_logs, engine_choice, identifiers, serverless
from facts.engine_choice import EngineAsk, choose_engine
from facts.identifiers import BACKENDS, HTTP_API_AUTH_MODES
from facts.onnx_quantization import NO_QUANTIZATION, QUANTIZATIONS
from facts.onnx_runtime import (
    ENGINE_CHOICES,
    ONNX_MODEL_FILE,
    RUNTIME_WHEELS,
    RuntimeWheel,
    runtime_wheel,
)
from facts.pickled_weights import ALLOW_PICKLES_KEY

# maxSeqLength's ceiling: beyond any encoder's reach (the model's own limit applies below it).
MAX_SEQ_LENGTH_LIMIT = 131_072


@dataclass(frozen=True)
class StackConfig:
    """The validated stack configuration (keys in the `embedding-endpoint` namespace)."""

    stack: str
    region: str
    model_id: str | None = key(
        "modelId",
        None,
        Checked(identifiers.MODEL_ID.problem),
        "Hub repo id `org/name`",
        shown_default="required (sagemaker)",
    )
    model_revision: str = key(
        "modelRevision",
        "main",
        Checked(identifiers.REVISION.problem),
        "branch, tag or 40-hex commit sha; pinned to a sha at deploy",
    )
    memory_size_mb: int = key(
        "memorySizeMb",
        2048,
        Integer(values=serverless.MEMORY_SIZES_MB),
        "1024, 2048, 3072, 4096, 5120 or 6144",
    )
    max_concurrency: int = key(
        "maxConcurrency",
        5,
        Integer(serverless.CONCURRENCY_MIN, serverless.CONCURRENCY_MAX),
        "1–200",
    )
    provisioned_concurrency: int = key(
        "provisionedConcurrency",
        0,
        Integer(allowed_text=config_rules.PROVISIONED_ALLOWED),
        "0 (off) or 1–200 and ≤ `maxConcurrency` (warns: billed while idle)",
    )
    image_tag: str = key(
        "imageTag",
        images.DEFAULT_IMAGE_TAG,
        Checked(images.tag_problem),
        "a CPU inference tag of `huggingface-pytorch-inference`",
    )
    retain_artifacts: bool = key(
        "retainArtifacts",
        False,
        Boolean(),
        "`true` keeps bucket and artifacts on destroy and protects them (prod)",
    )
    packaging_runner: str = key(
        "packagingRunner",
        "lambda",
        Choice(RUNNERS),
        "`lambda` or `local` (in the `pulumi up` process; no 15-minute limit)",
    )
    # A secret Output when read from Pulumi config: it must stay encrypted in state.
    hf_token: pulumi.Input[str] | None = key(
        "hfToken",
        None,
        Text(),
        "secret Hub token for gated/private models (`--secret`; plain text is refused)",
        repr=False,
    )
    hf_token_secret_arn: str | None = key(
        "hfTokenSecretArn",
        None,
        Checked(identifiers.SECRET_ARN.problem),
        "or: a Secrets Manager ARN the loader reads the token from",
    )
    source_model_data_url: str | None = key(
        "sourceModelDataUrl",
        None,
        Checked(identifiers.S3_TARBALL_URL.problem),
        "`s3://…/model.tar.gz` of a fine-tuned model to package instead of the Hub (no Hub keys)",
    )
    expected_artifact_sha256: str | None = key(
        "expectedArtifactSha256",
        None,
        Checked(identifiers.SHA256.problem),
        "64 hex; the deploy fails unless the archive hashes to it (set by `make promote`)",
    )
    backend: str = key(
        "backend",
        "sagemaker",
        Choice(BACKENDS),
        "`sagemaker` or `bedrock` (which refuses the keys only SageMaker reads)",
    )
    bedrock_model_id: str = key(
        "bedrockModelId",
        bedrock_models.DEFAULT_MODEL_ID,
        Text(),
        "a Bedrock embedding model (for `backend: bedrock` only)",
    )
    http_api: bool = key(
        "httpApi",
        False,
        Boolean(),
        "`true` adds an HTTP API: `POST /embed` and OpenAI's `POST /v1/embeddings`",
    )
    http_api_auth: str = key(
        "httpApiAuth",
        "iam",
        Choice(HTTP_API_AUTH_MODES),
        "`iam` (SigV4) or `apiKey` (a bearer token in Secrets Manager, for OpenAI clients); "
        "with `httpApi: true` only",
    )
    default_prompt_name: str | None = key(
        "defaultPromptName",
        None,
        Checked(identifiers.PROMPT_NAME.problem),
        "a prompt name of the model (`query`, ...) used when a request names none; "
        "`pulumi preview` fails on a name the model lacks",
        shown_default="the model's own",
    )
    max_seq_length: int | None = key(
        "maxSeqLength",
        None,
        Integer(1, MAX_SEQ_LENGTH_LIMIT, unit="tokens per text"),
        "at most this many tokens per text (below the model's limit): bounds the memory "
        "long-context models need",
        shown_default="the model's own",
    )
    smoke_test: bool = key(
        "smokeTest",
        True,
        Boolean(),
        "deploy check on every change: the endpoint must serve this deploy, then answer plausibly",
    )
    runtime_endpoint_url: str | None = key(
        "runtimeEndpointUrl",
        None,
        Checked(identifiers.HTTP_URL.problem),
        "where this stack's sagemaker-runtime calls go (the local stack's local endpoint)",
        shown_default="none (AWS)",
    )
    inference_engine: str = key(
        "inferenceEngine",
        "auto",
        Choice(ENGINE_CHOICES),
        "`auto` (ONNX Runtime when the revision ships an `onnx/model.onnx` the engine can run, "
        "else PyTorch), `torch` or `onnx`; a model that is its repository's own code "
        "(`auto_map`) runs on ONNX only ([docs/inference.md](docs/inference.md))",
    )
    onnx_file: str | None = key(
        "onnxFile",
        None,
        Text(strip=True),
        "another graph of the repo for the ONNX engine, e.g. `onnx/model_O2.onnx`; "
        "`pulumi preview` fails when the revision lacks it",
        shown_default=f"`{ONNX_MODEL_FILE}`",
    )
    onnx_fusion: bool = key(
        "onnxFusion",
        True,
        Boolean(),
        "the loader fuses the ONNX graph as it packages it (exact, checked against the export), "
        "about 1.2× faster on long texts; `false` ships the export as it is",
    )
    onnx_quantization: str = key(
        "onnxQuantization",
        NO_QUANTIZATION,
        Choice(QUANTIZATIONS),
        "`int8`: the loader quantizes the ONNX graph (1.6–2.4× cheaper per embedding in our "
        "runs) and ships it only if it passes its quality check against fp32 "
        "([docs/loader.md](docs/loader.md#int8-quantization)); needs the ONNX engine",
    )
    # Never changes what is packaged, only whether: the packager refuses pickle-only weights.
    allow_pickled_weights: bool = key(
        ALLOW_PICKLES_KEY,
        False,
        Boolean(),
        "`true` packages a model whose weights exist only as pickles (`pytorch_model.bin`): "
        "loading one can run code in the endpoint, so only for a repository whose every writer "
        "you trust ([docs/configuration.md](docs/configuration.md))",
    )
    batch_input_prefix: str | None = key(
        "batchInputPrefix",
        None,
        Checked(identifiers.S3_PREFIX_URL.problem),
        "`s3://bucket/folder/` Batch Transform jobs may read (with `batchOutputPrefix`)",
    )
    batch_output_prefix: str | None = key(
        "batchOutputPrefix",
        None,
        Checked(identifiers.S3_PREFIX_URL.problem),
        "`s3://bucket/folder/` they may write; outside the input folder "
        "([docs/bulk.md](docs/bulk.md))",
    )
    # Operations: how long CloudWatch keeps every log group of the stack, when the endpoint's
    # alarms fire (AlarmThresholds declares those keys) and which SNS topic they notify.
    log_retention_days: int = key(
        "logRetentionDays",
        cloudwatch_logs.DEFAULT_RETENTION_DAYS,
        Integer(values=cloudwatch_logs.RETENTION_DAYS, unit="days"),
        "days CloudWatch keeps the stack's logs (endpoint, loader, proxy); "
        "CloudWatch's values only",
    )
    alarm_topic_arn: str | None = key(
        "alarmTopicArn",
        None,
        Checked(identifiers.SNS_TOPIC_ARN.problem),
        "SNS topic ARN the endpoint's alarms notify",
    )
    alarm_thresholds: AlarmThresholds = field(default_factory=AlarmThresholds)
    # Per-service endpoint overrides from `aws:endpoints` (the local stack's emulator).
    aws_endpoints: tuple[tuple[str, str], ...] = ()
    # `aws:profile` and `aws:assumeRoles`: the account the AWS provider deploys to.
    aws_profile: str | None = None
    aws_assume_roles: tuple[AssumeRole, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def aws(self) -> AwsSettings:
        """Profile, roles, region and endpoints: what every boto3 session of the stack uses."""
        return AwsSettings(
            region=self.region,
            profile=self.aws_profile,
            assume_roles=self.aws_assume_roles,
            endpoints=self.aws_endpoints,
        )

    @property
    def uses_sagemaker(self) -> bool:
        return self.backend == "sagemaker"

    @property
    def onnx_runtime(self) -> RuntimeWheel | None:
        """The wheel an ONNX archive would vendor (None: no ONNX engine here)."""
        ask = EngineAsk(
            self.inference_engine,
            images.python_version(self.image_tag or ""),
            source_archive=bool(self.source_model_data_url),
            onnx_export=True,
        )
        return choose_engine(ask).runtime


# Every key of the namespace, in the order of the README's table.
CONFIG_KEYS = tuple(
    spec.name for cls in (StackConfig, AlarmThresholds) for _, spec in declared(cls)
)


def parse_config(raw: Mapping[str, str], *, stack: str, region: str | None) -> StackConfig:
    """Validate raw config values (keys without namespace) or raise ConfigError."""
    values = parse_keys(StackConfig, raw)
    backend = values["backend"]
    region = config_rules.checked_region(region, backend)
    changed = {
        **set_away_from_default(StackConfig, raw),
        **set_away_from_default(AlarmThresholds, raw),
    }
    config_rules.refuse_sagemaker_keys(backend, changed)
    config_rules.refuse_unread_keys(changed, values)
    config_rules.require_model_id(backend, values["model_id"])
    warnings = config_rules.provisioned_warnings(
        values["provisioned_concurrency"], values["max_concurrency"], values["memory_size_mb"]
    )
    image_tag = values["image_tag"]
    warnings.extend(images.tag_warnings(image_tag))
    config_rules.refuse_local_secrets(values["hf_token"], stack)
    config_rules.check_token_sources(values["hf_token"], values["hf_token_secret_arn"])
    _check_engine(raw, values, warnings)
    config_rules.check_bedrock_model(backend, values["bedrock_model_id"])
    config_rules.check_max_seq_length(backend, values["max_seq_length"])
    config_rules.check_batch_prefixes(
        backend, values["batch_input_prefix"], values["batch_output_prefix"]
    )
    return StackConfig(
        stack=stack,
        region=region,
        **values,
        alarm_thresholds=AlarmThresholds(**parse_keys(AlarmThresholds, raw)),
        warnings=tuple(warnings),
    )


def _check_engine(raw: Mapping[str, str], values: dict[str, Any], warnings: list[str]) -> None:
    """inferenceEngine, onnxFile, onnxFusion and onnxQuantization, checked against each other,
    the backend, the source and the image; onnxFile naming the default graph is kept as None."""
    engine, image_tag = values["inference_engine"], values["image_tag"]
    source_url, onnx_file = values["source_model_data_url"], values["onnx_file"]
    python = images.python_version(image_tag)
    ask = EngineAsk(
        engine,
        python,
        onnx_file,
        None if raw.get("onnxFusion") in (None, "") else values["onnx_fusion"],
        values["onnx_quantization"],
        source_archive=bool(source_url),
        backend=values["backend"],
    )
    choice = choose_engine(ask)
    if choice.problems:
        raise _engine_error(choice.problems[0], raw, engine, image_tag)
    if onnx_file == ONNX_MODEL_FILE:
        values["onnx_file"] = None
    if engine == "auto" and not source_url and runtime_wheel(python) is None:
        warnings.append(
            f"inferenceEngine auto runs PyTorch: no ONNX Runtime wheel is known for the Python "
            f"{python} of imageTag {image_tag!r}"
        )


def _engine_error(
    problem: engine_choice.EngineProblem, raw: Mapping[str, str], engine: str, image_tag: str
) -> ConfigError:
    """The engine rule's problem in the stack's keys."""
    known = f"known: Python {', '.join(RUNTIME_WHEELS)}"
    source = f"'{qualified('sourceModelDataUrl')}' archives are packaged for PyTorch"
    if problem.field == engine_choice.ENGINE:
        why = f"{source}; the ONNX engine needs a Hub model that ships onnx/model.onnx"
        return invalid("inferenceEngine", engine, f"{why} (use auto or torch)")
    python = images.python_version(image_tag)
    if problem.field == engine_choice.PYTHON:
        why = f"no ONNX Runtime wheel is known for Python {python} (imageTag {image_tag!r})"
        return invalid(
            "inferenceEngine", engine, f"{why}; {known}. Use auto or torch, or such an image"
        )
    torch = f"'{qualified('inferenceEngine')}' is torch"
    if problem.field == engine_choice.ONNX_QUANTIZATION:
        return _quantization_error(problem, raw, torch, source, known)
    if problem.field == engine_choice.ONNX_FUSION:
        why = {engine_choice.TORCH_ENGINE: f"{torch}, which packages no ONNX graph"}
        why[engine_choice.SOURCE_ARCHIVE] = source
        return invalid(
            "onnxFusion",
            raw["onnxFusion"],
            f"{why.get(problem.reason, problem.explain())}; unset it",
        )
    why = {
        engine_choice.TORCH_ENGINE: f"{torch}; set it to auto or onnx to run this graph",
        engine_choice.SOURCE_ARCHIVE: source,
        engine_choice.NO_RUNTIME: (
            f"no ONNX Runtime wheel is known for the Python of imageTag {image_tag!r}; {known}"
        ),
    }
    return invalid(
        "onnxFile", str(raw["onnxFile"]).strip(), why.get(problem.reason, problem.explain())
    )


def _quantization_error(
    problem: engine_choice.EngineProblem,
    raw: Mapping[str, str],
    torch: str,
    source: str,
    known: str,
) -> ConfigError:
    """int8 where no ONNX archive can be packaged: refused, never shipped as fp32."""
    why = {
        engine_choice.TORCH_ENGINE: f"{torch}, which packages no ONNX graph to quantize",
        engine_choice.SOURCE_ARCHIVE: source,
        engine_choice.NO_RUNTIME: f"no ONNX Runtime wheel is known for the image's Python; {known}",
    }
    return invalid(
        "onnxQuantization",
        raw["onnxQuantization"],
        f"{why.get(problem.reason, problem.explain())}; int8 needs the ONNX engine "
        "(inferenceEngine auto or onnx, a Hub model that ships its ONNX export), "
        "or set onnxQuantization none",
    )


def check_known_keys(keys: Iterable[str]) -> None:
    """Fail on a key in our namespace that the program does not read (usually a typo)."""
    prefix = f"{NAMESPACE}:"
    unknown = sorted(
        key for key in keys if key.startswith(prefix) and key[len(prefix) :] not in CONFIG_KEYS
    )
    if unknown:
        raise ConfigError(
            f"config key {unknown[0]!r} is not a setting of this program: expected one of "
            + ", ".join(CONFIG_KEYS)
        )
    misplaced = sorted(key for key in keys if _near_namespace(key.split(":", 1)[0]))
    if misplaced:
        name = misplaced[0].split(":", 1)[-1]
        raise ConfigError(
            f"config key {misplaced[0]!r} is not in this program's namespace {NAMESPACE!r}, so "
            f"nothing reads it: set it as '{NAMESPACE}:{name}'"
        )


def _near_namespace(namespace: str) -> bool:
    """A namespace a slip from ours: embedding_endpoint, embeddingEndpoint, embedding-endpoints."""
    if namespace == NAMESPACE:
        return False
    return difflib.SequenceMatcher(None, namespace.lower(), NAMESPACE).ratio() >= 0.85
