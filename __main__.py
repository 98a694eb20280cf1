"""embedding-endpoint: stack config → artifact bucket → packager → serverless endpoint → check.

The diagram in docs/architecture.md, in code: every rule lives in `components/`; this file only
wires the components together and exports what clients, the post-deploy check and `promote` read.
"""

from __future__ import annotations

import pulumi

from components.artifact_bucket import ModelArtifactBucket, ModelArtifactBucketArgs
from components.batch_access import BatchTransformAccess, BatchTransformAccessArgs
from components.bedrock_access import BedrockEmbeddingAccess, BedrockEmbeddingAccessArgs
from components.config import StackConfig
from components.config_loader import load_config
from components.endpoint import ServerlessEmbeddingEndpoint, ServerlessEmbeddingEndpointArgs
from components.http_api import EmbeddingHttpApi, EmbeddingHttpApiArgs
from components.packager import HfModelPackager, HfModelPackagerArgs
from components.post_deploy_check import PostDeployCheck, PostDeployCheckArgs
from components.stack_warnings import report_warnings
from facts import stack as stack_facts

Tags = tuple[tuple[str, str], ...]


def export(outputs: dict[str, pulumi.Input[object] | None]) -> None:
    """Export every output that applies to this stack (None: not this stack's)."""
    for name, value in outputs.items():
        if value is not None:
            pulumi.export(name, value)


def deploy_sagemaker(cfg: StackConfig, tags: Tags) -> None:
    """Bucket → packaged model → serverless endpoint → post-deploy check, and their outputs."""
    bucket = ModelArtifactBucket("artifacts", ModelArtifactBucketArgs(cfg.retain_artifacts, tags))
    packager = HfModelPackager("model", HfModelPackagerArgs.for_stack(cfg, bucket))
    endpoint = ServerlessEmbeddingEndpoint(
        "embedding", ServerlessEmbeddingEndpointArgs.for_stack(cfg, bucket, packager, tags)
    )
    check = PostDeployCheck(
        "post-deploy-check", PostDeployCheckArgs.for_stack(cfg, endpoint, packager)
    )
    export(
        {
            stack_facts.ENDPOINT_NAME: endpoint.endpoint_name,
            stack_facts.ENDPOINT_ARN: endpoint.endpoint_arn,
            stack_facts.ENDPOINT_CONFIG_NAME: endpoint.endpoint_config_name,
            stack_facts.MODEL_NAME: endpoint.model_name,
            stack_facts.IMAGE_URI: endpoint.image_uri,
            stack_facts.BUCKET_NAME: bucket.bucket_name,
            stack_facts.MODEL_DATA_URL: packager.model_data_url,
            stack_facts.MODEL_ID: cfg.model_id,
            stack_facts.MODEL_REVISION: packager.revision,
            stack_facts.ARTIFACT_SHA256: packager.sha256,
            stack_facts.INFERENCE_ENGINE: packager.engine,
            stack_facts.SMOKE_TEST_COMMAND: check.command_line,
            stack_facts.SAGEMAKER_RUNTIME_URL: cfg.runtime_endpoint_url,
            stack_facts.WARNINGS: report_warnings(*cfg.warnings, endpoint.memory_warning),
        }
    )
    if cfg.http_api:
        deploy_http_api(cfg, "sagemaker", endpoint.endpoint_name, endpoint.endpoint_arn, tags)
    if cfg.batch_input_prefix and cfg.batch_output_prefix:
        deploy_batch_access(cfg, endpoint)


def deploy_batch_access(cfg: StackConfig, endpoint: ServerlessEmbeddingEndpoint) -> None:
    """Batch Transform on the stack's Model: its role reads one S3 folder and writes another."""
    batch = BatchTransformAccess("batch", BatchTransformAccessArgs.for_stack(cfg, endpoint))
    export(
        {
            stack_facts.BATCH_INPUT_PREFIX: cfg.batch_input_prefix,
            stack_facts.BATCH_OUTPUT_PREFIX: cfg.batch_output_prefix,
            stack_facts.BATCH_JOB_PREFIX: batch.job_name_prefix,
        }
    )


def deploy_bedrock(cfg: StackConfig, tags: Tags) -> None:
    """A managed Bedrock model: nothing to package or host, only a policy to call it."""
    access = BedrockEmbeddingAccess(
        "bedrock", BedrockEmbeddingAccessArgs(cfg.bedrock_model_id, cfg.region, tags)
    )
    export(
        {
            stack_facts.BEDROCK_MODEL_ID: cfg.bedrock_model_id,
            stack_facts.BEDROCK_MODEL_ARN: access.model_arn,
            stack_facts.BEDROCK_INVOKE_POLICY_ARN: access.policy_arn,
            stack_facts.WARNINGS: report_warnings(*cfg.warnings, access.warning),
        }
    )
    if cfg.http_api:
        deploy_http_api(cfg, "bedrock", cfg.bedrock_model_id, access.model_arn, tags)


def deploy_http_api(
    cfg: StackConfig, backend: str, name: pulumi.Input[str], arn: pulumi.Input[str], tags: Tags
) -> None:
    """Optional HTTP API (native and OpenAI routes) in front of whichever backend was deployed."""
    api = EmbeddingHttpApi("http", EmbeddingHttpApiArgs.for_stack(cfg, backend, (name, arn), tags))
    export(
        {
            stack_facts.HTTP_API_URL: api.url,
            stack_facts.HTTP_API_OPENAI_BASE_URL: api.openai_base_url,
            stack_facts.HTTP_API_INVOKE_POLICY_ARN: api.invoke_policy_arn,
            stack_facts.HTTP_API_KEY: api.api_key,
            stack_facts.HTTP_API_KEY_SECRET_ARN: api.api_key_secret_arn,
        }
    )


cfg = load_config()
tags = (("project", pulumi.get_project()), ("stack", cfg.stack))
export({stack_facts.BACKEND: cfg.backend, stack_facts.REGION: cfg.region})
(deploy_sagemaker if cfg.uses_sagemaker else deploy_bedrock)(cfg, tags)
