"""HfModelPackager: turns `modelId@revision` into a verified `model.tar.gz` in the artifact bucket.

The loader packages it, run by a dynamic resource (components/packager_provider.py) in a loader
Lambda declared here (runner `lambda`) or in the Pulumi process (`local`). See docs/packager.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import pulumi
import pulumi_aws as aws

from components import iam
from components.artifact_bucket import ModelArtifactBucket
from components.config import StackConfig
from components.loader_bundle import build_loader_zip, zip_sha256_base64
from components.packager_provider import PackagerProvider
from components.packager_state import OUTPUT_NAMES, PackagerInputs
from components.packaging_runs import LOCAL_TIMEOUT_SECONDS, RUNNERS
from components.project_provider import aws_inputs
from components.service_role import service_role
from deploy_account.session import AwsSettings
from facts import cloudwatch_logs, engine_choice, identifiers
from facts.engine_choice import EngineAsk, choose_engine
from facts.identifiers import parse_s3_url
from facts.lambda_runtime import LAMBDA_RUNTIME
from facts.onnx_quantization import NO_QUANTIZATION, QUANTIZATIONS
from facts.onnx_runtime import ENGINE_CHOICES, RuntimeWheel
from loader.version import format_version

LOADER_ARCHITECTURE = "x86_64"
LOADER_HANDLER = "loader.handler.handler"
# Lambda's ceiling; the loader streams, so 15 minutes bounds the model size by throughput only.
LOADER_TIMEOUT_SECONDS = 900
# Memory buys CPU and network bandwidth on Lambda (1,769 MB = one full vCPU). Streaming keeps the
# loader's own footprint under 300 MB whatever the model size; fusing an ONNX graph peaks at about
# 100 MB + 4.7× the graph (facts/onnx_fusion.py bounds the graphs it fuses to fit). 3,008 MB: the
# most a new account may give a function until AWS lifts its quota ("Member must have value less
# than or equal to 3008").
LOADER_MEMORY_MB = 3008
# /tmp while an ONNX graph is fused: the export, its weights set aside, and the fused graph, each
# at most MAX_FUSED_GRAPH_BYTES (Lambda's default is 512 MB).
LOADER_EPHEMERAL_STORAGE_MB = 2048
# The loader's zip is uploaded to the artifact bucket here (under the key prefix), and the function
# created from it: with ONNX Runtime's optimizer it is over 50 MB, Lambda's direct-upload limit.
LOADER_CODE_FOLDER = "loader-code/"
# The Hub client keeps its small config under HF_HOME; /tmp is Lambda's only writable path.
LOADER_ENVIRONMENT = {
    "HF_HOME": "/tmp/hf",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}


@dataclass(frozen=True)
class HfModelPackagerArgs:
    """What to package and where; validated on construction, before anything is declared."""

    bucket_name: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    model_id: str
    revision: str
    runner: str
    # Region, profile, role chain and endpoints: packaging runs in the AWS provider's account.
    aws: AwsSettings
    key_prefix: str = "models/"
    # A secret Output (from `pulumi config set --secret hfToken`) or None for public models.
    hf_token: pulumi.Input[str] | None = None
    # Alternative to hf_token: the loader reads the token from Secrets Manager at run time.
    hf_token_secret_arn: str | None = None
    source_model_data_url: str | None = None
    expected_sha256: str | None = None
    retain_artifacts: bool = False
    # Runner `local` only: the deadline for one packaging run inside the Pulumi process.
    local_timeout_seconds: int = LOCAL_TIMEOUT_SECONDS
    # Days CloudWatch keeps the loader Lambda's logs (the stack's `logRetentionDays`).
    log_retention_days: int = cloudwatch_logs.DEFAULT_RETENTION_DAYS
    # auto | torch | onnx; auto and onnx need `onnx_runtime`, the wheel for the image's Python.
    inference_engine: str = "torch"
    onnx_runtime: RuntimeWheel | None = None
    # The stack's `onnxFile`: the repo's graph the ONNX engine runs; None: onnx/model.onnx.
    onnx_file: str | None = None
    # The stack's `onnxFusion`: the loader fuses that graph as it packages it.
    onnx_fusion: bool = True
    # The stack's `onnxQuantization`: int8 quantizes that graph, shipped behind its quality check.
    onnx_quantization: str = NO_QUANTIZATION
    # The stack's `defaultPromptName`: checked against the model's prompts at preview.
    default_prompt_name: str | None = None
    # The stack's `allowPickledWeights`: package weights that are pickles only (trusted repo).
    allow_pickled_weights: bool = False

    @classmethod
    def for_stack(cls, cfg: StackConfig, bucket: ModelArtifactBucket) -> HfModelPackagerArgs:
        """What the stack's config asks to package, into the stack's bucket."""
        return cls(
            bucket_name=bucket.bucket_name,
            bucket_arn=bucket.bucket_arn,
            model_id=str(cfg.model_id),
            revision=cfg.model_revision,
            runner=cfg.packaging_runner,
            aws=cfg.aws,
            hf_token=cfg.hf_token,
            hf_token_secret_arn=cfg.hf_token_secret_arn,
            source_model_data_url=cfg.source_model_data_url,
            expected_sha256=cfg.expected_artifact_sha256,
            retain_artifacts=cfg.retain_artifacts,
            log_retention_days=cfg.log_retention_days,
            inference_engine=cfg.inference_engine,
            onnx_runtime=cfg.onnx_runtime,
            onnx_file=cfg.onnx_file,
            onnx_fusion=cfg.onnx_fusion,
            onnx_quantization=cfg.onnx_quantization,
            default_prompt_name=cfg.default_prompt_name,
            allow_pickled_weights=cfg.allow_pickled_weights,
        )

    def __post_init__(self) -> None:
        rules = (
            ("model_id", self.model_id, identifiers.MODEL_ID),
            ("revision", self.revision, identifiers.REVISION),
            ("key_prefix", self.key_prefix, identifiers.KEY_PREFIX),
            ("hf_token_secret_arn", self.hf_token_secret_arn, identifiers.SECRET_ARN),
            ("source_model_data_url", self.source_model_data_url, identifiers.S3_TARBALL_URL),
            ("expected_sha256", self.expected_sha256, identifiers.SHA256),
            ("default_prompt_name", self.default_prompt_name, identifiers.PROMPT_NAME),
        )
        for field, value, rule in rules:
            if value is not None and not rule.matches(value):
                raise ValueError(
                    f"HfModelPackagerArgs.{field} {value!r} is invalid: {rule.problem(value)}"
                )
        choices = (
            ("runner", self.runner, RUNNERS),
            ("inference_engine", self.inference_engine, ENGINE_CHOICES),
            ("onnx_quantization", self.onnx_quantization, QUANTIZATIONS),
        )
        for field, value, allowed in choices:
            if value not in allowed:
                raise ValueError(
                    f"HfModelPackagerArgs.{field} {value!r} is invalid: "
                    f"expected one of {', '.join(allowed)}"
                )
        if not self.aws.region:
            raise ValueError("HfModelPackagerArgs.aws.region is empty: expected an AWS region")
        if self.hf_token is not None and self.hf_token_secret_arn is not None:
            raise ValueError(
                "HfModelPackagerArgs.hf_token_secret_arn cannot be combined with hf_token: "
                "give the token either directly (secret config) or as a Secrets Manager ARN"
            )
        self._check_engine()
        if self.local_timeout_seconds <= 0:
            raise ValueError(
                f"HfModelPackagerArgs.local_timeout_seconds {self.local_timeout_seconds!r} is "
                "invalid: expected a positive number of seconds"
            )

    def _check_engine(self) -> None:
        """The engine rules the stack config and the loader follow (facts/engine_choice.py)."""
        python = self.onnx_runtime.python if self.onnx_runtime else None
        ask = EngineAsk(self.inference_engine, python, self.onnx_file)
        ask = replace(ask, onnx_quantization=self.onnx_quantization)
        choice = choose_engine(replace(ask, source_archive=bool(self.source_model_data_url)))
        if not choice.problems:
            return
        problem = choice.problems[0]
        if problem.field == engine_choice.ONNX_QUANTIZATION:
            raise ValueError(
                f"HfModelPackagerArgs.onnx_quantization {self.onnx_quantization!r} is invalid: "
                f"{problem.explain()}; it needs an ONNX archive (or onnx_quantization 'none')"
            )
        if problem.field != engine_choice.ONNX_FILE:
            raise ValueError(
                "HfModelPackagerArgs.inference_engine 'onnx' needs onnx_runtime (the wheel "
                "for the image's Python) and a Hub model, not a source_model_data_url"
            )
        why = problem.explain()
        if problem.reason == engine_choice.TORCH_ENGINE:
            why = "it needs inference_engine auto or onnx"
        raise ValueError(f"HfModelPackagerArgs.onnx_file {self.onnx_file!r} is invalid: {why}")


class PackagedModel(pulumi.dynamic.Resource):
    """The dynamic resource: one packaged artifact; its outputs are the loader's result."""

    model_data_url: pulumi.Output[str]
    revision: pulumi.Output[str]
    pinned_revision: pulumi.Output[str]
    sha256: pulumi.Output[str]
    size_bytes: pulumi.Output[int]
    weights_bytes: pulumi.Output[int]
    files: pulumi.Output[list[str]]
    format_version: pulumi.Output[str]
    engine: pulumi.Output[str]

    def __init__(
        self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        # Outputs must exist as (unknown) properties for Pulumi to expose them on the resource.
        seeded = {key: None for key in OUTPUT_NAMES} | props
        super().__init__(PackagerProvider(), name, seeded, opts)


class HfModelPackager(pulumi.ComponentResource):
    """The loader (Lambda or in-process) and the packaged artifact it produces."""

    model_data_url: pulumi.Output[str]
    revision: pulumi.Output[str]
    sha256: pulumi.Output[str]
    size_bytes: pulumi.Output[int]
    weights_bytes: pulumi.Output[int]
    artifact_key: pulumi.Output[str]
    # The engine the archive is for (`torch` or `onnx`), as `check` resolved `auto`.
    engine: pulumi.Output[str]
    key_prefix: str
    loader_function_name: pulumi.Output[str] | None

    def __init__(
        self, name: str, args: HfModelPackagerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("embedding-endpoint:index:HfModelPackager", name, None, opts)

        # Without a runtime wheel for the image's Python, `auto` is PyTorch (check decides).
        runtime = args.onnx_runtime if args.inference_engine != "torch" else None
        function_name: pulumi.Output[str] | None = None
        depends_on: list[pulumi.Resource] = []
        if args.runner == "lambda":
            function, policy = self._declare_loader_function(name, args, runtime)
            function_name = function.name
            depends_on = [function, policy]

        inputs = _packager_inputs(args, runtime, function_name)
        # Asked of `check` but never kept in the state: the token, and the prompt it vets.
        props = inputs.given() | {
            "hf_token": pulumi.Output.secret(args.hf_token) if args.hf_token else None,
            "default_prompt_name": args.default_prompt_name,
        }
        artifact = PackagedModel(
            f"{name}-artifact",
            props,
            pulumi.ResourceOptions(
                parent=self,
                depends_on=depends_on,
                # Never let a stack's only artifact be deleted before its replacement exists.
                delete_before_replace=False,
                # The provider never returns the token; should it ever, it stays encrypted.
                additional_secret_outputs=["hf_token"],
            ),
        )

        self.model_data_url = artifact.model_data_url
        self.revision = artifact.revision
        self.sha256 = artifact.sha256
        self.size_bytes = artifact.size_bytes
        self.weights_bytes = artifact.weights_bytes
        self.engine = artifact.engine
        self.artifact_key = artifact.model_data_url.apply(
            lambda url: parse_s3_url(url)[1] if url else url
        )
        # Every artifact of this packager lives under it, whichever model or revision: a
        # reader scoped to it keeps reading the old archive while an update rolls (or back).
        self.key_prefix = args.key_prefix
        self.loader_function_name = function_name
        self.register_outputs(
            {
                "model_data_url": self.model_data_url,
                "revision": self.revision,
                "sha256": self.sha256,
                "artifact_key": self.artifact_key,
                "engine": self.engine,
                "loader_function_name": self.loader_function_name,
            }
        )

    def _declare_loader_function(
        self, name: str, args: HfModelPackagerArgs, runtime: RuntimeWheel | None
    ) -> tuple[aws.lambda_.Function, aws.iam.RolePolicy]:
        """The loader Lambda (`runtime`'s wheel in its zip), its logs, a role for the prefix."""
        child = pulumi.ResourceOptions(parent=self)
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-loader-logs", retention_in_days=args.log_retention_days, opts=child
        )
        # Lambda documents no aws:SourceAccount / aws:SourceArn for execution role trust policies.
        role, policy = service_role(
            f"{name}-loader",
            iam.assume_role_policy("lambda.amazonaws.com"),
            pulumi.Output.all(args.bucket_arn, log_group.arn).apply(
                lambda arns: json.dumps(
                    iam.loader_policy(
                        region=args.aws.region,
                        bucket_arn=arns[0],
                        key_prefix=args.key_prefix,
                        log_group_arn=arns[1],
                        hf_token_secret_arn=args.hf_token_secret_arn,
                        source_model_data_url=args.source_model_data_url,
                    )
                )
            ),
            opts=child,
        )
        bundle = build_loader_zip(runtime=runtime)
        code = aws.s3.BucketObjectv2(
            f"{name}-loader-code",
            bucket=args.bucket_name,
            key=f"{args.key_prefix}{LOADER_CODE_FOLDER}{bundle.name}",
            source=pulumi.FileAsset(str(bundle)),
            opts=child,
        )
        function = aws.lambda_.Function(
            f"{name}-loader",
            role=role.arn,
            runtime=LAMBDA_RUNTIME,
            architectures=[LOADER_ARCHITECTURE],
            handler=LOADER_HANDLER,
            s3_bucket=code.bucket,
            s3_key=code.key,
            s3_object_version=code.version_id,
            source_code_hash=zip_sha256_base64(bundle),
            timeout=LOADER_TIMEOUT_SECONDS,
            memory_size=LOADER_MEMORY_MB,
            ephemeral_storage={"size": LOADER_EPHEMERAL_STORAGE_MB},
            environment={"variables": LOADER_ENVIRONMENT},
            logging_config={"log_format": "Text", "log_group": log_group.name},
            # Created (and so first invoked) only once its role's policy is put; IAM may still
            # take seconds to apply it, which the loader waits out (loader/access.py).
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group, policy]),
        )
        return function, policy


def _packager_inputs(
    args: HfModelPackagerArgs,
    runtime: RuntimeWheel | None,
    function_name: pulumi.Output[str] | None,
) -> PackagerInputs:
    """The provider's inputs; fields left unset stay out: `check` settles them or reads them
    as absent."""
    return PackagerInputs(
        model_id=args.model_id,
        requested_revision=args.revision,
        bucket=args.bucket_name,
        key_prefix=args.key_prefix,
        source_model_data_url=args.source_model_data_url,
        expected_sha256=args.expected_sha256,
        retain_artifacts=args.retain_artifacts,
        runner=args.runner,
        **aws_inputs(args.aws),
        function_name=function_name,
        hf_token_secret_arn=args.hf_token_secret_arn,
        format_version=format_version(),
        local_timeout_seconds=args.local_timeout_seconds,
        inference_engine=args.inference_engine,
        container_python=runtime.python if runtime else None,
        onnx_file=args.onnx_file if runtime else None,
        onnx_fusion=args.onnx_fusion if runtime else None,
        # Recorded only when int8: the states of fp32 archives stay as they were.
        onnx_quantization=(
            args.onnx_quantization
            if runtime and args.onnx_quantization != NO_QUANTIZATION
            else None
        ),
        allow_pickled_weights=args.allow_pickled_weights,
    )
