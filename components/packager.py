"""HfModelPackager: turns `modelId@revision` into a verified `model.tar.gz` in the artifact bucket.

The packaging itself is done by the loader (`loader/handler.py`), run by a Pulumi dynamic resource
(`components/packager_provider.py`) either in a loader Lambda declared here (runner `lambda`) or
inside the Pulumi process (runner `local`: emulator stacks, and models whose packaging outlasts
Lambda's 15 minutes). See docs/packager.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.packager_provider import (
    LOCAL_TIMEOUT_SECONDS,
    OUTPUT_NAMES,
    RUNNERS,
    PackagerProvider,
)
from loader import patterns
from loader.keys import parse_s3_url

LOADER_RUNTIME = "python3.12"
LOADER_ARCHITECTURE = "x86_64"
LOADER_HANDLER = "loader.handler.handler"
# Lambda's ceiling; the loader streams, so 15 minutes bounds the model size by throughput only.
LOADER_TIMEOUT_SECONDS = 900
# Memory buys CPU and network bandwidth on Lambda (1,769 MB = one full vCPU); the loader's own
# footprint stays well under 300 MB whatever the model size, so this is sized for throughput.
LOADER_MEMORY_MB = 2048
LOADER_LOG_RETENTION_DAYS = 14

_KEY_PREFIX = patterns.KEY_PREFIX
_SECRET_ARN = patterns.SECRET_ARN
_S3_URL = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>.+)$")


@dataclass(frozen=True)
class HfModelPackagerArgs:
    """What to package and where; validated on construction, before anything is declared."""

    bucket_name: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    model_id: str
    revision: str
    runner: str
    region: str
    key_prefix: str = "models/"
    # A secret Output (from `pulumi config set --secret hfToken`) or None for public models.
    hf_token: pulumi.Input[str] | None = None
    # Alternative to hf_token: the loader reads the token from Secrets Manager at run time.
    hf_token_secret_arn: str | None = None
    source_model_data_url: str | None = None
    expected_sha256: str | None = None
    retain_artifacts: bool = False
    # `aws:endpoints` overrides (service -> URL) for emulator stacks.
    aws_endpoints: tuple[tuple[str, str], ...] = ()
    # The loader Lambda's code; None builds it with `loader_bundle.build_loader_zip()` (pip, cached
    # by content). Tests pass a prepared archive so that no network is needed.
    loader_code: pulumi.Archive | None = None
    # Runner `local` only: the deadline for one packaging run inside the Pulumi process.
    local_timeout_seconds: int = LOCAL_TIMEOUT_SECONDS

    def __post_init__(self) -> None:
        if self.runner not in RUNNERS:
            raise ValueError(
                f"HfModelPackagerArgs.runner {self.runner!r} is invalid: "
                f"expected one of {', '.join(RUNNERS)}"
            )
        if not self.model_id or "/" not in self.model_id:
            raise ValueError(
                f"HfModelPackagerArgs.model_id {self.model_id!r} is invalid: "
                "expected a Hub repo id 'org/name'"
            )
        if not self.revision:
            raise ValueError(
                "HfModelPackagerArgs.revision is empty: expected a branch, a tag or a commit sha"
            )
        if not self.region:
            raise ValueError("HfModelPackagerArgs.region is empty: expected an AWS region")
        if not _KEY_PREFIX.match(self.key_prefix):
            raise ValueError(
                f"HfModelPackagerArgs.key_prefix {self.key_prefix!r} is invalid: expected '' or "
                "'/'-terminated path segments without a leading '/', such as 'models/'"
            )
        if self.hf_token is not None and self.hf_token_secret_arn is not None:
            raise ValueError(
                "HfModelPackagerArgs.hf_token_secret_arn cannot be combined with hf_token: "
                "give the token either directly (secret config) or as a Secrets Manager ARN"
            )
        if self.hf_token_secret_arn is not None and not _SECRET_ARN.match(self.hf_token_secret_arn):
            raise ValueError(
                f"HfModelPackagerArgs.hf_token_secret_arn {self.hf_token_secret_arn!r} is "
                "invalid: expected a Secrets Manager secret ARN"
            )
        if self.source_model_data_url is not None and not _S3_URL.match(self.source_model_data_url):
            raise ValueError(
                f"HfModelPackagerArgs.source_model_data_url {self.source_model_data_url!r} is "
                "invalid: expected s3://bucket/key"
            )
        if self.local_timeout_seconds <= 0:
            raise ValueError(
                f"HfModelPackagerArgs.local_timeout_seconds {self.local_timeout_seconds!r} is "
                "invalid: expected a positive number of seconds"
            )


def artifact_key_of(model_data_url: str) -> str:
    """The object key inside an `s3://bucket/key` URL."""
    return parse_s3_url(model_data_url)[1]


def source_object_arn(source_model_data_url: str) -> str:
    """The S3 object ARN of a `source_model_data_url`, for the loader's read permission."""
    match = _S3_URL.match(source_model_data_url)
    if not match:
        raise ValueError(f"{source_model_data_url!r} is not an s3://bucket/key URL")
    return f"arn:aws:s3:::{match.group('bucket')}/{match.group('key')}"


def loader_policy_document(
    *,
    bucket_arn: str,
    key_prefix: str,
    log_group_arn: str,
    hf_token_secret_arn: str | None = None,
    source_model_data_url: str | None = None,
) -> dict[str, Any]:
    """The loader role's permissions: its prefix of the bucket, its log group, nothing else."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "WriteArtifactsUnderPrefix",
            "Effect": "Allow",
            "Action": [
                "s3:GetObject",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
            ],
            "Resource": [f"{bucket_arn}/{key_prefix}*"],
        },
        {
            # Without s3:ListBucket, S3 answers 403 instead of 404 for a missing key, and the
            # loader's "already packaged?" check must tell the two apart. It reveals key names of
            # this stack's own artifact bucket only, and grants no read of other objects.
            "Sid": "ListArtifactBucket",
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:ListBucketMultipartUploads"],
            "Resource": [bucket_arn],
        },
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [f"{log_group_arn}:*"],
        },
    ]
    if hf_token_secret_arn:
        statements.append(
            {
                "Sid": "ReadHubToken",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                "Resource": [hf_token_secret_arn],
            }
        )
    if source_model_data_url:
        statements.append(
            {
                "Sid": "ReadSourceArtifact",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": [source_object_arn(source_model_data_url)],
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


LAMBDA_ASSUME_ROLE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def loader_environment() -> dict[str, str]:
    """The loader Lambda's environment: Hub caches under /tmp (the only writable path)."""
    return {
        "HF_HOME": "/tmp/hf",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }


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

    def __init__(
        self,
        name: str,
        props: dict[str, Any],
        opts: pulumi.ResourceOptions | None = None,
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
    loader_function_name: pulumi.Output[str] | None

    def __init__(
        self,
        name: str,
        args: HfModelPackagerArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("embedding-endpoint:index:HfModelPackager", name, None, opts)
        from loader import FORMAT_VERSION  # the loader package never imports pulumi

        function_name: pulumi.Output[str] | None = None
        depends_on: list[pulumi.Resource] = []
        if args.runner == "lambda":
            function, policy = self._declare_loader_function(name, args)
            function_name = function.name
            depends_on = [function, policy]

        props: dict[str, Any] = {
            "model_id": args.model_id,
            "requested_revision": args.revision,
            "bucket": args.bucket_name,
            "key_prefix": args.key_prefix,
            "source_model_data_url": args.source_model_data_url,
            "expected_sha256": args.expected_sha256,
            "retain_artifacts": args.retain_artifacts,
            "runner": args.runner,
            "region": args.region,
            "aws_endpoints": dict(args.aws_endpoints),
            "function_name": function_name,
            "hf_token": pulumi.Output.secret(args.hf_token) if args.hf_token else None,
            "hf_token_secret_arn": args.hf_token_secret_arn,
            "format_version": FORMAT_VERSION,
            "local_timeout_seconds": args.local_timeout_seconds,
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
        self.artifact_key = artifact.model_data_url.apply(
            lambda url: artifact_key_of(url) if url else url
        )
        self.loader_function_name = function_name
        self.register_outputs(
            {
                "model_data_url": self.model_data_url,
                "revision": self.revision,
                "sha256": self.sha256,
                "artifact_key": self.artifact_key,
                "loader_function_name": self.loader_function_name,
            }
        )

    def _declare_loader_function(
        self, name: str, args: HfModelPackagerArgs
    ) -> tuple[aws.lambda_.Function, aws.iam.RolePolicy]:
        """The loader Lambda, its log group and a role that can write only under the prefix."""
        child = pulumi.ResourceOptions(parent=self)
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-loader-logs",
            retention_in_days=LOADER_LOG_RETENTION_DAYS,
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-loader-role",
            assume_role_policy=pulumi.Output.json_dumps(LAMBDA_ASSUME_ROLE_POLICY),
            opts=child,
        )
        policy_document = pulumi.Output.all(
            bucket_arn=args.bucket_arn, log_group_arn=log_group.arn
        ).apply(
            lambda resolved: loader_policy_document(
                bucket_arn=resolved["bucket_arn"],
                key_prefix=args.key_prefix,
                log_group_arn=resolved["log_group_arn"],
                hf_token_secret_arn=args.hf_token_secret_arn,
                source_model_data_url=args.source_model_data_url,
            )
        )
        policy = aws.iam.RolePolicy(
            f"{name}-loader-policy",
            role=role.id,
            policy=pulumi.Output.json_dumps(policy_document),
            opts=child,
        )
        code = args.loader_code
        if code is None:
            from components.loader_bundle import build_loader_zip

            code = pulumi.FileArchive(str(build_loader_zip()))
        function = aws.lambda_.Function(
            f"{name}-loader",
            role=role.arn,
            runtime=LOADER_RUNTIME,
            architectures=[LOADER_ARCHITECTURE],
            handler=LOADER_HANDLER,
            code=code,
            timeout=LOADER_TIMEOUT_SECONDS,
            memory_size=LOADER_MEMORY_MB,
            environment={"variables": loader_environment()},
            logging_config={"log_format": "Text", "log_group": log_group.name},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group]),
        )
        return function, policy
