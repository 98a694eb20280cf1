"""Stack configuration: read once, validated before any resource is declared.

Every other module receives a `StackConfig`; none reads `pulumi.Config` itself. Validation is pure
(`parse_config` takes a plain mapping) so that every rule is testable without Pulumi.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import pulumi

from components import images
from components.endpoint_monitoring import LOG_RETENTION_DAYS, THRESHOLD_KEYS, AlarmThresholds
from components.packaging_runs import RUNNERS
from embedding_client.aws_session import (
    AssumeRole,
    AwsSettings,
    AwsSettingsError,
    assume_roles_from_config,
)
from facts import bedrock_models, identifiers, serverless
from facts.identifiers import BACKENDS, HTTP_API_AUTH_MODES
from facts.onnx_runtime import (
    ENGINE_CHOICES,
    ONNX_MODEL_FILE,
    RUNTIME_WHEELS,
    RuntimeWheel,
    onnx_file_problem,
    runtime_wheel,
)
from facts.pickled_weights import ALLOW_PICKLES_KEY

NAMESPACE = "embedding-endpoint"

# maxSeqLength's ceiling: beyond any encoder's reach (the model's own limit applies below it).
MAX_SEQ_LENGTH_LIMIT = 131_072
_TRUE = ("true", "yes", "1")
_FALSE = ("false", "no", "0")


class ConfigError(ValueError):
    """A stack config value is invalid; the message names the key, the value and what is allowed."""


@dataclass(frozen=True)
class StackConfig:
    """The validated stack configuration (keys in the `embedding-endpoint` namespace)."""

    stack: str
    region: str
    model_id: str | None = None
    model_revision: str = "main"
    memory_size_mb: int = 2048
    max_concurrency: int = 5
    provisioned_concurrency: int = 0
    image_tag: str | None = None  # parse_config resolves None to images.DEFAULT_IMAGE_TAG
    retain_artifacts: bool = False
    packaging_runner: str = "lambda"
    # A secret Output when read from Pulumi config: it must stay encrypted in state.
    hf_token: pulumi.Input[str] | None = field(default=None, repr=False)
    # Alternative to hf_token: the loader reads the token from this Secrets Manager secret.
    hf_token_secret_arn: str | None = None
    source_model_data_url: str | None = None
    expected_artifact_sha256: str | None = None
    backend: str = "sagemaker"
    bedrock_model_id: str = bedrock_models.DEFAULT_MODEL_ID
    http_api: bool = False
    # iam (SigV4) or apiKey (a bearer token in Secrets Manager, for OpenAI clients).
    http_api_auth: str = "iam"
    smoke_test: bool = True
    # The model prompt applied when a request names none (e.g. "query"); None: the model's own.
    default_prompt_name: str | None = None
    # At most this many tokens per text (below the model's own limit); None: the model's limit.
    max_seq_length: int | None = None
    # Where sagemaker-runtime calls go instead of AWS (the local stack's local endpoint).
    runtime_endpoint_url: str | None = None
    # Batch Transform: the folders a job may read and write (the Model's role is granted them).
    batch_input_prefix: str | None = None
    batch_output_prefix: str | None = None
    # auto: ONNX when the pinned revision ships onnx/model.onnx, else PyTorch (packager decides).
    inference_engine: str = "auto"
    # The repo's graph the ONNX engine runs (e.g. onnx/model_O2.onnx); None: onnx/model.onnx.
    onnx_file: str | None = None
    # Whether the loader fuses that graph as it packages it (loader/graph_fusion.py).
    onnx_fusion: bool = True
    # Package weights that exist only as pickles (loading one can run code): the user trusts
    # the repository (docs/configuration.md). Never changes what is packaged, only whether.
    allow_pickled_weights: bool = False
    # Per-service endpoint overrides from `aws:endpoints` (the local stack's emulator).
    aws_endpoints: tuple[tuple[str, str], ...] = ()
    # `aws:profile` and `aws:assumeRoles`: the account the AWS provider deploys to.
    aws_profile: str | None = None
    aws_assume_roles: tuple[AssumeRole, ...] = ()
    warnings: tuple[str, ...] = ()
    # Operations: how long CloudWatch keeps every log group of the stack, when the endpoint's
    # alarms fire and which SNS topic they notify (None: none).
    log_retention_days: int = 30
    alarm_thresholds: AlarmThresholds = field(default_factory=AlarmThresholds)
    alarm_topic_arn: str | None = None

    def aws_endpoint(self, service: str) -> str | None:
        """The endpoint URL override for an AWS service (e.g. "s3"), or None for the real one."""
        return dict(self.aws_endpoints).get(service)

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
        """The ONNX Runtime wheel archives may vendor: None when the ONNX engine cannot be used."""
        if self.inference_engine == "torch" or self.source_model_data_url:
            return None
        return runtime_wheel(images.python_version(self.image_tag or ""))


def _key(name: str) -> str:
    return f"{NAMESPACE}:{name}"


def _fail(name: str, value: object, allowed: str) -> ConfigError:
    return ConfigError(f"config key '{_key(name)}' has invalid value {value!r}: {allowed}")


def _int(raw: Mapping[str, str], name: str, default: int, allowed: str) -> int:
    value = raw.get(name)
    if value is None or value == "":
        return default
    try:
        return int(str(value).strip())
    except ValueError:
        raise _fail(name, value, allowed) from None


def _bool(raw: Mapping[str, str], name: str, default: bool) -> bool:
    value = raw.get(name)
    if value is None or value == "":
        return default
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _fail(name, value, "expected true or false")


def _choice(raw: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = raw.get(name) or default
    if value not in allowed:
        raise _fail(name, value, f"expected one of {', '.join(allowed)}")
    return value


def _matching(raw: Mapping[str, str], name: str, rule: identifiers.Rule) -> str | None:
    """The value of an optional identifier key, or None; ConfigError when it breaks `rule`."""
    value = raw.get(name) or None
    if value is not None and not rule.matches(value):
        raise _fail(name, value, str(rule.problem(value)))
    return value


def _parse_operations(raw: Mapping[str, str]) -> dict[str, object]:
    """Log retention and alarm settings (OPERATIONS_KEYS), as StackConfig fields."""
    retention_allowed = f"expected one of {', '.join(map(str, LOG_RETENTION_DAYS))} (days)"
    retention = _int(raw, "logRetentionDays", 30, retention_allowed)
    if retention not in LOG_RETENTION_DAYS:
        raise _fail("logRetentionDays", retention, retention_allowed)
    thresholds = {}
    defaults = AlarmThresholds()
    for name, (key, low, high) in THRESHOLD_KEYS.items():
        allowed = f"expected an integer {low}-{high}"
        value = _int(raw, key, getattr(defaults, name), allowed)
        if not low <= value <= high:
            raise _fail(key, value, allowed)
        thresholds[name] = value
    return {
        "log_retention_days": retention,
        "alarm_thresholds": AlarmThresholds(**thresholds),
        "alarm_topic_arn": _matching(raw, "alarmTopicArn", identifiers.SNS_TOPIC_ARN),
    }


def parse_config(raw: Mapping[str, str], *, stack: str, region: str | None) -> StackConfig:
    """Validate raw config values (keys without namespace) or raise ConfigError."""
    warnings: list[str] = []
    backend = _choice(raw, "backend", "sagemaker", BACKENDS)
    if not region:
        raise ConfigError(
            "config key 'aws:region' is not set: run `pulumi config set aws:region <region>` "
            "(or export AWS_REGION)"
        )
    if backend == "sagemaker":
        problem = images.region_problem(region)
        if problem:
            raise ConfigError(f"config key 'aws:region' has invalid value {region!r}: {problem}")

    model_id = raw.get("modelId") or None
    if backend == "sagemaker" and model_id is None:
        raise ConfigError(
            f"config key '{_key('modelId')}' is required: a Hugging Face Hub repo id such as "
            "'sentence-transformers/all-MiniLM-L6-v2'"
        )
    model_id = _matching(raw, "modelId", identifiers.MODEL_ID)
    revision = _matching(raw, "modelRevision", identifiers.REVISION) or "main"

    memory_allowed = f"expected one of {', '.join(map(str, serverless.MEMORY_SIZES_MB))}"
    memory = _int(raw, "memorySizeMb", 2048, memory_allowed)
    if memory not in serverless.MEMORY_SIZES_MB:
        raise _fail("memorySizeMb", memory, memory_allowed)

    low, high = serverless.CONCURRENCY_MIN, serverless.CONCURRENCY_MAX
    max_concurrency = _int(raw, "maxConcurrency", 5, f"expected an integer {low}-{high}")
    if not low <= max_concurrency <= high:
        raise _fail("maxConcurrency", max_concurrency, f"expected an integer {low}-{high}")

    provisioned_allowed = f"expected 0 (off) or an integer {low}-{high} and <= maxConcurrency"
    provisioned = _int(raw, "provisionedConcurrency", 0, provisioned_allowed)
    if provisioned != 0 and not (low <= provisioned <= high and provisioned <= max_concurrency):
        raise _fail(
            "provisionedConcurrency",
            provisioned,
            f"{provisioned_allowed} ({max_concurrency})",
        )
    if provisioned:
        warnings.append(
            f"provisionedConcurrency={provisioned} keeps {provisioned} warm instance(s) of "
            f"{memory} MB billed around the clock, even with no traffic"
        )

    image_tag = raw.get("imageTag") or images.DEFAULT_IMAGE_TAG
    problem = images.tag_problem(image_tag)
    if problem:
        raise _fail("imageTag", image_tag, problem)
    warnings.extend(images.tag_warnings(image_tag))

    refuse_local_secrets(raw, stack)
    token_secret_arn = _matching(raw, "hfTokenSecretArn", identifiers.SECRET_ARN)
    if token_secret_arn is not None and raw.get("hfToken"):
        raise _fail(
            "hfTokenSecretArn",
            token_secret_arn,
            f"set either '{_key('hfToken')}' (secret config) or '{_key('hfTokenSecretArn')}', "
            "not both",
        )
    source_url = _matching(raw, "sourceModelDataUrl", identifiers.S3_TARBALL_URL)
    expected_sha = _matching(raw, "expectedArtifactSha256", identifiers.SHA256)

    engine = _choice(raw, "inferenceEngine", "auto", ENGINE_CHOICES)
    python = images.python_version(image_tag)
    if engine == "onnx" and source_url:
        raise _fail(
            "inferenceEngine",
            engine,
            f"'{_key('sourceModelDataUrl')}' archives are packaged for PyTorch; the ONNX engine "
            "needs a Hub model that ships onnx/model.onnx (use auto or torch)",
        )
    if engine == "onnx" and runtime_wheel(python) is None:
        raise _fail(
            "inferenceEngine",
            engine,
            f"no ONNX Runtime wheel is known for Python {python} (imageTag {image_tag!r}); "
            f"known: Python {', '.join(RUNTIME_WHEELS)}. Use auto or torch, or such an image",
        )
    onnx_file = _onnx_file(raw, engine, backend, source_url, runtime_wheel(python), image_tag)
    onnx_fusion = _onnx_fusion(raw, engine, backend, source_url)
    if engine == "auto" and not source_url and runtime_wheel(python) is None:
        warnings.append(
            f"inferenceEngine auto runs PyTorch: no ONNX Runtime wheel is known for the Python "
            f"{python} of imageTag {image_tag!r}"
        )

    bedrock_model_id = raw.get("bedrockModelId") or bedrock_models.DEFAULT_MODEL_ID
    if backend == "bedrock":
        problem = bedrock_models.model_problem(bedrock_model_id)
        if problem:
            raise _fail("bedrockModelId", bedrock_model_id, problem)

    return StackConfig(
        stack=stack,
        region=region,
        model_id=model_id,
        model_revision=revision,
        memory_size_mb=memory,
        max_concurrency=max_concurrency,
        provisioned_concurrency=provisioned,
        image_tag=image_tag,
        retain_artifacts=_bool(raw, "retainArtifacts", False),
        packaging_runner=_choice(raw, "packagingRunner", "lambda", RUNNERS),
        hf_token=raw.get("hfToken") or None,
        hf_token_secret_arn=token_secret_arn,
        source_model_data_url=source_url,
        expected_artifact_sha256=expected_sha,
        backend=backend,
        bedrock_model_id=bedrock_model_id,
        http_api=_bool(raw, "httpApi", False),
        http_api_auth=_choice(raw, "httpApiAuth", "iam", HTTP_API_AUTH_MODES),
        smoke_test=_bool(raw, "smokeTest", True),
        default_prompt_name=_matching(raw, "defaultPromptName", identifiers.PROMPT_NAME),
        max_seq_length=_max_seq_length(raw, backend),
        runtime_endpoint_url=_matching(raw, "runtimeEndpointUrl", identifiers.HTTP_URL),
        **_batch_prefixes(raw, backend),
        inference_engine=engine,
        onnx_file=onnx_file,
        onnx_fusion=onnx_fusion,
        allow_pickled_weights=_bool(raw, ALLOW_PICKLES_KEY, False),
        warnings=tuple(warnings),
        **_parse_operations(raw),
    )


# The stack `make up` deploys to the emulator. Its passphrase is public (scripts/local_env.sh
# defaults it, and the salt it adds to Pulumi.local.yaml may be committed).
LOCAL_STACK = "local"


def refuse_local_secrets(raw: Mapping[str, str], stack: str) -> None:
    """A secret on the local stack is readable by anyone with the repository: refused."""
    if stack == LOCAL_STACK and raw.get("hfToken"):
        raise ConfigError(
            f"config key '{_key('hfToken')}' is set on the '{LOCAL_STACK}' stack, whose "
            "passphrase is public (default `local-stack-only`): anyone with this repository can "
            "decrypt it from Pulumi.local.yaml. Remove it (`pulumi config rm -s local hfToken`), "
            "revoke the token on the Hub, and use the local stack with public models; private "
            "or gated models go to a dev stack with a passphrase or backend of your own"
        )


def _onnx_file(
    raw: Mapping[str, str],
    engine: str,
    backend: str,
    source_url: str | None,
    runtime: RuntimeWheel | None,
    image_tag: str,
) -> str | None:
    """onnxFile: the repo's graph the ONNX engine runs, or None (onnx/model.onnx)."""
    value = raw.get("onnxFile")
    if value in (None, ""):
        return None
    value = str(value).strip()
    problem = onnx_file_problem(value)
    if problem is None and backend != "sagemaker":
        problem = "the ONNX engine runs on the SageMaker backend only"
    elif problem is None and engine == "torch":
        problem = f"'{_key('inferenceEngine')}' is torch; set it to auto or onnx to run this graph"
    elif problem is None and source_url:
        problem = f"'{_key('sourceModelDataUrl')}' archives are packaged for PyTorch"
    elif problem is None and runtime is None:
        problem = (
            f"no ONNX Runtime wheel is known for the Python of imageTag {image_tag!r}; known: "
            f"Python {', '.join(RUNTIME_WHEELS)}"
        )
    if problem is not None:
        raise _fail("onnxFile", value, problem)
    return None if value == ONNX_MODEL_FILE else value


def _onnx_fusion(raw: Mapping[str, str], engine: str, backend: str, source_url: str | None) -> bool:
    """onnxFusion: fuse the ONNX graph when packaging it (default true); only where ONNX runs."""
    fusion = _bool(raw, "onnxFusion", True)
    if raw.get("onnxFusion") in (None, ""):
        return fusion
    problem = None
    if backend != "sagemaker":
        problem = "the ONNX engine runs on the SageMaker backend only"
    elif engine == "torch":
        problem = f"'{_key('inferenceEngine')}' is torch, which packages no ONNX graph"
    elif source_url:
        problem = f"'{_key('sourceModelDataUrl')}' archives are packaged for PyTorch"
    if problem is not None:
        raise _fail("onnxFusion", raw["onnxFusion"], f"{problem}; unset it")
    return fusion


def _max_seq_length(raw: Mapping[str, str], backend: str) -> int | None:
    """maxSeqLength: tokens per text, or None (the model's own limit); SageMaker only."""
    if raw.get("maxSeqLength") in (None, ""):
        return None
    allowed = f"expected an integer 1-{MAX_SEQ_LENGTH_LIMIT} (tokens per text)"
    value = _int(raw, "maxSeqLength", 0, allowed)
    if not 1 <= value <= MAX_SEQ_LENGTH_LIMIT:
        raise _fail("maxSeqLength", value, allowed)
    if backend != "sagemaker":
        raise _fail("maxSeqLength", value, "the token cap needs backend sagemaker (Bedrock's own)")
    return value


def _batch_prefixes(raw: Mapping[str, str], backend: str) -> dict[str, str | None]:
    """batchInputPrefix and batchOutputPrefix: both or neither, separate folders, SageMaker only."""
    source = _matching(raw, "batchInputPrefix", identifiers.S3_PREFIX_URL)
    target = _matching(raw, "batchOutputPrefix", identifiers.S3_PREFIX_URL)
    if (source is None) != (target is None):
        missing = "batchOutputPrefix" if target is None else "batchInputPrefix"
        raise ConfigError(
            f"config key '{_key(missing)}' is required with "
            f"'{_key('batchInputPrefix' if target is None else 'batchOutputPrefix')}': "
            "Batch Transform reads one folder and writes another"
        )
    if source is not None and target is not None:
        if backend != "sagemaker":
            raise _fail("batchInputPrefix", source, "Batch Transform needs backend sagemaker")
        if source.startswith(target) or target.startswith(source):
            raise _fail(
                "batchOutputPrefix",
                target,
                f"expected a folder outside batchInputPrefix {source!r} and not containing it "
                "(a job would read its own output)",
            )
    return {"batch_input_prefix": source, "batch_output_prefix": target}


CONFIG_KEYS = (
    "modelId",
    "modelRevision",
    "memorySizeMb",
    "maxConcurrency",
    "provisionedConcurrency",
    "imageTag",
    "retainArtifacts",
    "packagingRunner",
    "hfToken",
    "hfTokenSecretArn",
    "sourceModelDataUrl",
    "expectedArtifactSha256",
    "backend",
    "bedrockModelId",
    "httpApi",
    "httpApiAuth",
    "smokeTest",
    "defaultPromptName",
    "maxSeqLength",
    "runtimeEndpointUrl",
    # Batch Transform (docs/bulk.md)
    "batchInputPrefix",
    "batchOutputPrefix",
    "inferenceEngine",
    "onnxFile",
    "onnxFusion",
    ALLOW_PICKLES_KEY,
)
# Operations: log retention of every log group, the endpoint's alarms (components/
# endpoint_monitoring.py) and where they notify.
OPERATIONS_KEYS = (
    "logRetentionDays",
    "alarmTopicArn",
    *(key for key, _, _ in THRESHOLD_KEYS.values()),
)
CONFIG_KEYS += OPERATIONS_KEYS


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


# AWS provider settings that choose credentials but that the packager and the post-deploy check
# (boto3 sessions of their own) do not follow: they use aws:profile, aws:assumeRoles and the
# environment's credentials.
UNFOLLOWED_AWS_KEYS = (
    "accessKey",
    "secretKey",
    "token",
    "sharedConfigFiles",
    "sharedCredentialsFiles",
    "assumeRoleWithWebIdentity",
)


def unfollowed_aws_warnings(keys: Iterable[str]) -> tuple[str, ...]:
    """A warning for each credential setting of the AWS provider our own sessions ignore."""
    present = set(keys)
    return tuple(
        f"aws:{name} is set: the AWS provider uses it, but the packager and the post-deploy check "
        "do not (they use aws:profile, aws:assumeRoles and the environment's credentials); "
        "give them the same account through a profile or environment variables"
        for name in UNFOLLOWED_AWS_KEYS
        if f"aws:{name}" in present
    )


def _all_config_keys() -> set[str]:
    """Every config key of the stack, however the language host passed them in."""
    from pulumi.runtime import config as runtime_config

    return set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())


def load_config() -> StackConfig:
    """This stack's validated config; a bad value stops the run before any resource is declared.

    Raises `pulumi.RunError` with the ConfigError's message, which Pulumi prints without a trace.
    """
    try:
        return _load_config()
    except ConfigError as error:
        raise pulumi.RunError(str(error)) from None


def _load_config() -> StackConfig:
    keys = _all_config_keys()
    check_known_keys(keys)
    config = pulumi.Config(NAMESPACE)
    raw = {key: config.get(key) for key in CONFIG_KEYS if key != "hfToken"}
    token = config.get_secret("hfToken")
    if token is not None:
        # Only its presence is validated here; the value stays a secret Output.
        raw["hfToken"] = "<secret>"
    region = (
        pulumi.Config("aws").get("region")
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
    )
    parsed = parse_config(
        {k: v for k, v in raw.items() if v is not None},
        stack=pulumi.get_stack(),
        region=region,
    )
    aws = pulumi.Config("aws")
    endpoints: dict[str, str] = {}
    for entry in aws.get_object("endpoints") or []:
        endpoints.update({str(k): str(v) for k, v in dict(entry).items()})
    try:
        assume_roles = assume_roles_from_config(aws.get_object("assumeRoles"))
    except AwsSettingsError as error:
        raise ConfigError(f"config key {error}") from None
    return replace(
        parsed,
        hf_token=token,
        aws_endpoints=tuple(sorted(endpoints.items())),
        aws_profile=aws.get("profile") or None,
        aws_assume_roles=assume_roles,
        warnings=parsed.warnings + unfollowed_aws_warnings(keys),
    )
