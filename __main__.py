"""embedding-endpoint: stack config → artifact bucket → packager → serverless endpoint.

The diagram in docs/architecture.md, in code. Every rule lives in `components/`; this file only
wires the components together and exports what clients, the smoke test and `promote` read.
"""

from __future__ import annotations

import pulumi

from components.artifact_bucket import ModelArtifactBucket, ModelArtifactBucketArgs
from components.bedrock_access import BedrockEmbeddingAccess, BedrockEmbeddingAccessArgs
from components.config import ConfigError, StackConfig, load_config
from components.endpoint import (
    ServerlessEmbeddingEndpoint,
    ServerlessEmbeddingEndpointArgs,
    endpoint_name_for,
    memory_fit_warning,
    smoke_test_command,
)
from components.http_api import EmbeddingHttpApi, EmbeddingHttpApiArgs
from components.packager import HfModelPackager, HfModelPackagerArgs
from components.smoke_test import PostDeploySmokeTest, PostDeploySmokeTestArgs

ARTIFACT_KEY_PREFIX = "models/"


def read_config() -> StackConfig:
    """The validated config; a bad value stops the run with one message before any resource."""
    try:
        return load_config()
    except ConfigError as err:
        raise pulumi.RunError(str(err)) from None


def report_warnings(*warnings: pulumi.Input[str | None]) -> pulumi.Output[list[str]]:
    """Log each warning once it is known and return them all for the `warnings` output.

    Plain strings (config warnings) are logged at once, so `pulumi preview` shows them too;
    outputs (e.g. the memory fit, known after packaging) when they resolve.
    """

    def log_late(warning: str | None) -> str | None:
        if warning:
            pulumi.log.warn(warning)
        return warning

    for warning in warnings:
        if isinstance(warning, str):
            pulumi.log.warn(warning)
    resolved = [
        warning if isinstance(warning, str) else pulumi.Output.from_input(warning).apply(log_late)
        for warning in warnings
    ]
    return pulumi.Output.all(*resolved).apply(lambda found: [w for w in found if w])


def deploy_sagemaker(cfg: StackConfig, tags: tuple[tuple[str, str], ...]) -> None:
    """Bucket → packaged model → serverless endpoint, and their outputs."""
    bucket = ModelArtifactBucket(
        "artifacts", ModelArtifactBucketArgs(retain=cfg.retain_artifacts, tags=tags)
    )
    packager = HfModelPackager(
        "model",
        HfModelPackagerArgs(
            bucket_name=bucket.bucket_name,
            bucket_arn=bucket.bucket_arn,
            model_id=cfg.model_id,
            revision=cfg.model_revision,
            runner=cfg.packaging_runner,
            region=cfg.region,
            key_prefix=ARTIFACT_KEY_PREFIX,
            hf_token=cfg.hf_token,
            hf_token_secret_arn=cfg.hf_token_secret_arn,
            source_model_data_url=cfg.source_model_data_url,
            expected_sha256=cfg.expected_artifact_sha256,
            retain_artifacts=cfg.retain_artifacts,
            aws_endpoints=cfg.aws_endpoints,
        ),
    )
    endpoint_name = endpoint_name_for(pulumi.get_project(), cfg.stack)
    endpoint = ServerlessEmbeddingEndpoint(
        "embedding",
        ServerlessEmbeddingEndpointArgs(
            endpoint_name=endpoint_name,
            region=cfg.region,
            image_tag=cfg.image_tag,
            model_id=cfg.model_id,
            model_revision=packager.revision,
            model_data_url=packager.model_data_url,
            artifact_sha256=packager.sha256,
            bucket_arn=bucket.bucket_arn,
            artifact_prefix=f"{ARTIFACT_KEY_PREFIX}{cfg.model_id}/",
            memory_size_mb=cfg.memory_size_mb,
            max_concurrency=cfg.max_concurrency,
            provisioned_concurrency=cfg.provisioned_concurrency,
            protect=cfg.retain_artifacts,
            tags=tags,
        ),
    )
    if cfg.smoke_test:
        PostDeploySmokeTest(
            "smoke-test",
            PostDeploySmokeTestArgs(
                endpoint=endpoint,
                endpoint_name=endpoint.endpoint_name,
                region=cfg.region,
                artifact_sha256=packager.sha256,
                endpoint_settings=(
                    endpoint.image_uri,
                    cfg.memory_size_mb,
                    cfg.max_concurrency,
                    cfg.provisioned_concurrency,
                ),
                endpoint_url=cfg.aws_endpoint("sagemaker"),
            ),
        )

    memory_warning = packager.weights_bytes.apply(
        lambda weights: memory_fit_warning(cfg.model_id, weights, cfg.memory_size_mb)
    )
    pulumi.export("endpointName", endpoint.endpoint_name)
    pulumi.export("endpointArn", endpoint.endpoint_arn)
    pulumi.export("imageUri", endpoint.image_uri)
    pulumi.export("bucketName", bucket.bucket_name)
    pulumi.export("modelDataUrl", packager.model_data_url)
    pulumi.export("modelId", cfg.model_id)
    pulumi.export("modelRevision", packager.revision)
    pulumi.export("artifactSha256", packager.sha256)
    pulumi.export(
        "smokeTestCommand",
        endpoint.endpoint_name.apply(
            lambda name: smoke_test_command(cfg.region, name, cfg.aws_endpoint("sagemaker"))
        ),
    )
    pulumi.export("warnings", report_warnings(*cfg.warnings, memory_warning))
    if cfg.http_api:
        deploy_http_api("sagemaker", endpoint.endpoint_name, endpoint.endpoint_arn, tags)


def deploy_bedrock(cfg: StackConfig, tags: tuple[tuple[str, str], ...]) -> None:
    """A managed Bedrock model: nothing to package or host, only a policy to call it."""
    access = BedrockEmbeddingAccess(
        "bedrock",
        BedrockEmbeddingAccessArgs(model_id=cfg.bedrock_model_id, region=cfg.region, tags=tags),
    )
    pulumi.export("bedrockModelId", cfg.bedrock_model_id)
    pulumi.export("bedrockModelArn", access.model_arn)
    pulumi.export("bedrockInvokePolicyArn", access.policy_arn)
    pulumi.export("warnings", report_warnings(*cfg.warnings, access.warning))
    if cfg.http_api:
        deploy_http_api("bedrock", cfg.bedrock_model_id, access.model_arn, tags)


def deploy_http_api(
    backend: str,
    target_name: pulumi.Input[str],
    target_arn: pulumi.Input[str],
    tags: tuple[tuple[str, str], ...],
) -> None:
    """Optional `POST /embed` (IAM auth) in front of whichever backend was deployed."""
    api = EmbeddingHttpApi(
        "http",
        EmbeddingHttpApiArgs(
            backend=backend, target_name=target_name, target_arn=target_arn, tags=tags
        ),
    )
    pulumi.export("httpApiUrl", api.url)
    pulumi.export("httpApiInvokePolicyArn", api.invoke_policy_arn)


cfg = read_config()
tags = (("project", pulumi.get_project()), ("stack", cfg.stack))
pulumi.export("backend", cfg.backend)
pulumi.export("region", cfg.region)
if cfg.uses_sagemaker:
    deploy_sagemaker(cfg, tags)
else:
    deploy_bedrock(cfg, tags)
