"""embedding-endpoint: stack config → artifact bucket → packager → serverless endpoint.

The diagram in docs/architecture.md, in code: every rule lives in `components/`; this file only
wires the components together and exports what clients, the post-deploy check and `promote` read.
"""

from __future__ import annotations

import pulumi

from components.artifact_bucket import ModelArtifactBucket, ModelArtifactBucketArgs
from components.bedrock_access import BedrockEmbeddingAccess, BedrockEmbeddingAccessArgs
from components.config import StackConfig, load_config
from components.endpoint import (
    ServerlessEmbeddingEndpoint,
    ServerlessEmbeddingEndpointArgs,
    endpoint_name_for,
)
from components.http_api import EmbeddingHttpApi, EmbeddingHttpApiArgs
from components.packager import HfModelPackager, HfModelPackagerArgs
from components.post_deploy_check import PostDeployCheck, PostDeployCheckArgs
from components.stack_warnings import report_warnings


def deploy_sagemaker(cfg: StackConfig, tags: tuple[tuple[str, str], ...]) -> None:
    """Bucket → packaged model → serverless endpoint → post-deploy check, and their outputs."""
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
            hf_token=cfg.hf_token,
            hf_token_secret_arn=cfg.hf_token_secret_arn,
            source_model_data_url=cfg.source_model_data_url,
            expected_sha256=cfg.expected_artifact_sha256,
            retain_artifacts=cfg.retain_artifacts,
            aws_endpoints=cfg.aws_endpoints,
            inference_engine=cfg.inference_engine,
            onnx_runtime=cfg.onnx_runtime,
        ),
    )
    endpoint = ServerlessEmbeddingEndpoint(
        "embedding",
        ServerlessEmbeddingEndpointArgs(
            endpoint_name=endpoint_name_for(pulumi.get_project(), cfg.stack),
            region=cfg.region,
            image_tag=cfg.image_tag,
            model_id=cfg.model_id,
            model_revision=packager.revision,
            model_data_url=packager.model_data_url,
            artifact_sha256=packager.sha256,
            weights_bytes=packager.weights_bytes,
            bucket_arn=bucket.bucket_arn,
            artifact_prefix=packager.key_prefix,
            memory_size_mb=cfg.memory_size_mb,
            max_concurrency=cfg.max_concurrency,
            provisioned_concurrency=cfg.provisioned_concurrency,
            protect=cfg.retain_artifacts,
            tags=tags,
        ),
    )
    check = PostDeployCheck(
        "post-deploy-check",
        PostDeployCheckArgs(
            endpoint=endpoint,
            endpoint_name=endpoint.endpoint_name,
            endpoint_config_name=endpoint.endpoint_config_name,
            region=cfg.region,
            endpoint_url=cfg.aws_endpoint("sagemaker"),
            run_on_deploy=cfg.smoke_test,
        ),
    )
    pulumi.export("endpointName", endpoint.endpoint_name)
    pulumi.export("endpointArn", endpoint.endpoint_arn)
    pulumi.export("endpointConfigName", endpoint.endpoint_config_name)
    pulumi.export("imageUri", endpoint.image_uri)
    pulumi.export("bucketName", bucket.bucket_name)
    pulumi.export("modelDataUrl", packager.model_data_url)
    pulumi.export("modelId", cfg.model_id)
    pulumi.export("modelRevision", packager.revision)
    pulumi.export("artifactSha256", packager.sha256)
    pulumi.export("inferenceEngine", packager.engine)
    pulumi.export("smokeTestCommand", check.command_line)
    pulumi.export("warnings", report_warnings(*cfg.warnings, endpoint.memory_warning))
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


cfg = load_config()
tags = (("project", pulumi.get_project()), ("stack", cfg.stack))
pulumi.export("backend", cfg.backend)
pulumi.export("region", cfg.region)
if cfg.uses_sagemaker:
    deploy_sagemaker(cfg, tags)
else:
    deploy_bedrock(cfg, tags)
