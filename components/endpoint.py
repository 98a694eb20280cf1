"""`ServerlessEmbeddingEndpoint`: execution role → Model → EndpointConfiguration → Endpoint.

Model and EndpointConfiguration are auto-named (every property change replaces them, created
first); the Endpoint keeps one name and rolls to a new configuration in place (UpdateEndpoint),
so replacing it deletes first. Its log group, alarms and dashboard are declared here too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components import iam, images
from components.artifact_bucket import ModelArtifactBucket
from components.config import StackConfig
from components.endpoint_monitoring import (
    AlarmThresholds,
    EndpointMonitoring,
    EndpointMonitoringArgs,
)
from components.endpoint_record import EndpointRecord, EndpointRecordArgs, record_key
from components.failed_endpoint_guard import (
    OWNER_ID_TAG,
    FailedEndpointGuard,
    FailedEndpointGuardArgs,
)
from components.memory_sizing import memory_fit_warning, sizing_engine
from components.packager import HfModelPackager
from components.service_role import service_role
from deploy_account.session import AwsSettings
from facts import cloudwatch_logs, serverless
from facts.sagemaker_endpoints import (
    ARTIFACT_SHA256_VARIABLE,
    DEFAULT_PROMPT_VARIABLE,
    MAX_SEQ_LENGTH_VARIABLE,
    MODEL_ID_VARIABLE,
    MODEL_REVISION_VARIABLE,
    VARIANT_NAME,
    endpoint_log_group,
)

SAGEMAKER_NAME_MAX = 63
_SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


def endpoint_name_for(project: str, stack: str) -> str:
    """The endpoint's physical name: project and stack, so stacks can share one account."""
    name = re.sub(r"[^a-zA-Z0-9]+", "-", f"{project}-{stack}").strip("-")
    return name[:SAGEMAKER_NAME_MAX].rstrip("-")


def model_environment(
    model_id: str,
    model_revision: str,
    artifact_sha256: str | None = None,
    default_prompt_name: str | None = None,
    max_seq_length: int | None = None,
) -> dict[str, str]:
    """The DLC's environment: one worker, the embedding task, the served model for logs.

    No HF_MODEL_ID: the DLC would download from the Hub instead of serving the archive. The
    archive's sha256 makes a rebuilt archive at the same URL replace the Model.
    """
    return {
        # One worker per container: serverless memory is small and a second worker doubles it.
        "MMS_DEFAULT_WORKERS_PER_MODEL": "1",
        "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
        "HF_TASK": "feature-extraction",
        # Everything the container needs is in model.tar.gz; never reach out to the Hub.
        "HF_HUB_OFFLINE": "1",
        MODEL_ID_VARIABLE: model_id,
        MODEL_REVISION_VARIABLE: model_revision,
        **({ARTIFACT_SHA256_VARIABLE: artifact_sha256} if artifact_sha256 else {}),
        # The prompt applied when a request names none (code/sentence_embedding/encoder.py checks).
        **({DEFAULT_PROMPT_VARIABLE: default_prompt_name} if default_prompt_name else {}),
        # At most this many tokens per text (bounds the attention's memory for long-context models).
        **({MAX_SEQ_LENGTH_VARIABLE: str(max_seq_length)} if max_seq_length else {}),
    }


def serverless_config(
    memory_size_mb: int, max_concurrency: int, provisioned_concurrency: int
) -> dict[str, int]:
    """The variant's serverless settings; provisioned concurrency only when it is on."""
    config = {"memory_size_in_mb": memory_size_mb, "max_concurrency": max_concurrency}
    if provisioned_concurrency > 0:
        config["provisioned_concurrency"] = provisioned_concurrency
    return config


@dataclass(frozen=True)
class ServerlessEmbeddingEndpointArgs:
    """What the endpoint serves and how it scales. Validated on construction."""

    endpoint_name: str
    region: str
    image_tag: str
    model_id: str
    model_revision: pulumi.Input[str]
    model_data_url: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    # The role may read only objects under this prefix of the bucket (the packager's).
    artifact_prefix: str
    memory_size_mb: int
    max_concurrency: int
    provisioned_concurrency: int = 0
    # The packaged archive's sha256: a new one replaces the Model even when the URL is the same.
    artifact_sha256: pulumi.Input[str] | None = None
    # Size of the model's weights and the engine the archive is for ("onnx int8" for an int8
    # graph: memory_sizing.sizing_engine), for the memory-fit warning (None: no warning).
    weights_bytes: pulumi.Input[int] | None = None
    engine: pulumi.Input[str] | None = None
    # The model prompt applied when a request names none (None: the model's own default).
    default_prompt_name: str | None = None
    # At most this many tokens per text (None: the model's own limit).
    max_seq_length: int | None = None
    # Protect the Endpoint itself (prod): `pulumi destroy` refuses until it is unprotected.
    protect: bool = False
    # Days CloudWatch keeps the endpoint's container logs (one of CloudWatch's allowed values).
    log_retention_days: int = cloudwatch_logs.DEFAULT_RETENTION_DAYS
    # The stack's profile, roles and endpoint overrides: the failed-endpoint guard's session.
    aws: AwsSettings | None = None
    # When the endpoint's CloudWatch alarms fire, and the SNS topic they notify (None: none).
    alarm_thresholds: AlarmThresholds = field(default_factory=AlarmThresholds)
    alarm_topic_arn: str | None = None
    tags: tuple[tuple[str, str], ...] = ()

    @classmethod
    def for_stack(
        cls,
        cfg: StackConfig,
        bucket: ModelArtifactBucket,
        packager: HfModelPackager,
        tags: tuple[tuple[str, str], ...],
    ) -> ServerlessEmbeddingEndpointArgs:
        """The stack's endpoint: its name, settings, and the archive the packager built."""
        return cls(
            endpoint_name=endpoint_name_for(pulumi.get_project(), cfg.stack),
            region=cfg.region,
            image_tag=str(cfg.image_tag),
            model_id=str(cfg.model_id),
            model_revision=packager.revision,
            model_data_url=packager.model_data_url,
            artifact_sha256=packager.sha256,
            weights_bytes=packager.weights_bytes,
            engine=packager.engine.apply(
                lambda engine: sizing_engine(engine, cfg.onnx_quantization)
            ),
            bucket_arn=bucket.bucket_arn,
            artifact_prefix=packager.key_prefix,
            memory_size_mb=cfg.memory_size_mb,
            max_concurrency=cfg.max_concurrency,
            provisioned_concurrency=cfg.provisioned_concurrency,
            default_prompt_name=cfg.default_prompt_name,
            max_seq_length=cfg.max_seq_length,
            protect=cfg.retain_artifacts,
            log_retention_days=cfg.log_retention_days,
            aws=cfg.aws,
            alarm_thresholds=cfg.alarm_thresholds,
            alarm_topic_arn=cfg.alarm_topic_arn,
            tags=tags,
        )

    def __post_init__(self) -> None:
        if not _SAGEMAKER_NAME.match(self.endpoint_name):
            raise ValueError(
                f"ServerlessEmbeddingEndpointArgs.endpoint_name {self.endpoint_name!r} is "
                "invalid: expected 1-63 characters of [a-zA-Z0-9-], not starting or ending with '-'"
            )
        problem = images.tag_problem(self.image_tag) or images.region_problem(self.region)
        if problem:
            raise ValueError(f"ServerlessEmbeddingEndpointArgs image/region: {problem}")
        low, high = serverless.CONCURRENCY_MIN, serverless.CONCURRENCY_MAX
        if not low <= self.max_concurrency <= high:
            raise ValueError(
                f"ServerlessEmbeddingEndpointArgs.max_concurrency {self.max_concurrency}: "
                f"expected {low}-{high}"
            )
        if not 0 <= self.provisioned_concurrency <= self.max_concurrency:
            raise ValueError(
                f"ServerlessEmbeddingEndpointArgs.provisioned_concurrency "
                f"{self.provisioned_concurrency}: expected 0 to max_concurrency"
            )


COMPONENT_TYPE = "embedding-endpoint:index:ServerlessEmbeddingEndpoint"


class ServerlessEmbeddingEndpoint(pulumi.ComponentResource):
    """A SageMaker Serverless endpoint serving one packaged embedding model from the HF DLC."""

    endpoint_name: pulumi.Output[str]
    endpoint_arn: pulumi.Output[str]
    # The Endpoint resource itself: what the post-deploy check waits for and follows.
    endpoint_resource: aws.sagemaker.Endpoint
    # Where SageMaker writes the container logs (declared here, with a retention).
    log_group_name: str
    # Auto-named: any change of model, image or settings gives a new one (and rolls the endpoint).
    endpoint_config_name: pulumi.Output[str]
    model_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    # The Model's execution role, which Batch Transform jobs on the Model also run as.
    role_name: pulumi.Output[str]
    image_uri: str
    # The memory-fit warning once the weights' size is known, else None.
    memory_warning: pulumi.Output[str | None]

    def __init__(
        self,
        name: str,
        args: ServerlessEmbeddingEndpointArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self.image_uri = images.image_uri(args.region, args.image_tag)
        self.log_group_name = endpoint_log_group(args.endpoint_name)
        role, policy = self._declare_role(name, args)
        model = self._declare_model(name, args, role, policy)
        config = self._declare_config(name, args, model)
        endpoint, guard = self._declare_endpoint(name, args, config)
        EndpointMonitoring(
            f"{name}-monitoring",
            EndpointMonitoringArgs(
                endpoint_name=args.endpoint_name,
                region=args.region,
                thresholds=args.alarm_thresholds,
                alarm_topic_arn=args.alarm_topic_arn,
                tags=args.tags,
            ),
            # Alarms and the dashboard are upserts by name: only once the guard found no other
            # stack's endpoint of this name may they be written.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[guard]),
        )

        self.endpoint_resource = endpoint
        self.endpoint_name = endpoint.name
        self.endpoint_arn = endpoint.arn
        self.endpoint_config_name = config.name
        self.model_name = model.name
        self.role_arn = role.arn
        self.role_name = role.name
        self.memory_warning = pulumi.Output.all(args.weights_bytes, args.engine).apply(
            lambda resolved: memory_fit_warning(
                args.model_id, resolved[1], resolved[0], args.memory_size_mb
            )
        )
        self.register_outputs(
            {
                "endpoint_name": self.endpoint_name,
                "endpoint_arn": self.endpoint_arn,
                "endpoint_config_name": self.endpoint_config_name,
                "model_name": self.model_name,
                "role_arn": self.role_arn,
                "role_name": self.role_name,
                "memory_warning": self.memory_warning,
            }
        )

    def _declare_role(
        self, name: str, args: ServerlessEmbeddingEndpointArgs
    ) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        """The Model's execution role: SageMaker may assume it for this account's resources only."""
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        trust = identity.account_id.apply(
            lambda account_id: iam.assume_role_policy(
                "sagemaker.amazonaws.com",
                source_account=account_id,
                source_arn=iam.sagemaker_source_arn(args.region, account_id),
            )
        )
        return service_role(
            name,
            trust,
            self._execution_policy(args, identity.account_id),
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _declare_model(
        self,
        name: str,
        args: ServerlessEmbeddingEndpointArgs,
        role: aws.iam.Role,
        policy: aws.iam.RolePolicy,
    ) -> aws.sagemaker.Model:
        """The Model: the DLC image, the packaged archive and the environment the code reads."""
        return aws.sagemaker.Model(
            f"{name}-model",
            execution_role_arn=role.arn,
            primary_container={
                "image": self.image_uri,
                "model_data_url": args.model_data_url,
                "environment": pulumi.Output.all(args.model_revision, args.artifact_sha256).apply(
                    lambda values: model_environment(
                        args.model_id,
                        *values,
                        default_prompt_name=args.default_prompt_name,
                        max_seq_length=args.max_seq_length,
                    )
                ),
            },
            tags=dict(args.tags),
            # SageMaker checks the role's access to the image and the archive when it creates
            # the model: the policy must be in place first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )

    def _declare_config(
        self, name: str, args: ServerlessEmbeddingEndpointArgs, model: aws.sagemaker.Model
    ) -> aws.sagemaker.EndpointConfiguration:
        """The serverless endpoint configuration: one variant of the Model."""
        return aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            production_variants=[
                {
                    "variant_name": VARIANT_NAME,
                    "model_name": model.name,
                    "serverless_config": serverless_config(
                        args.memory_size_mb, args.max_concurrency, args.provisioned_concurrency
                    ),
                }
            ],
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _declare_endpoint(
        self,
        name: str,
        args: ServerlessEmbeddingEndpointArgs,
        config: aws.sagemaker.EndpointConfiguration,
    ) -> tuple[aws.sagemaker.Endpoint, FailedEndpointGuard]:
        """The Endpoint, its log group and the guard that clears a failed endpoint of its name."""
        child = pulumi.ResourceOptions(parent=self)
        endpoint_tags = {**dict(args.tags), OWNER_ID_TAG: args.bucket_arn}
        bucket = pulumi.Output.from_input(args.bucket_arn).apply(lambda arn: arn.split(":::")[-1])
        record = record_key(args.artifact_prefix, args.endpoint_name)
        guard = FailedEndpointGuard(
            f"{name}-failed-endpoint-guard",
            FailedEndpointGuardArgs(
                endpoint_name=args.endpoint_name,
                region=args.region,
                aws=args.aws,
                owner_tags=endpoint_tags,
                import_command=self._import_command(name, args.endpoint_name),
                record_bucket=bucket,
                record_key=record,
            ),
            opts=child,
        )
        # Named after the endpoint: only once the guard found no other stack's endpoint of that
        # name, whose log group this would otherwise collide with (or be imported over).
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=self.log_group_name,
            retention_in_days=args.log_retention_days,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[guard]),
        )
        endpoint = aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            name=args.endpoint_name,
            endpoint_config_name=config.name,
            tags=endpoint_tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.protect,
                # The log group exists before the first container writes and outlives it on
                # destroy; a failed endpoint of this name is gone before a create.
                depends_on=[log_group, guard],
                # The name is fixed: a replacement (`pulumi up --replace`, or recovery from
                # `Failed`) must delete the old endpoint before it creates the new one.
                delete_before_replace=True,
                # Changes when the guard removed a failed endpoint or found none: an Endpoint
                # still in state for it is then recreated instead of updated (which SageMaker
                # would refuse). `replace_with` does the same where the old state has no trigger
                # (the engine ignores a trigger that had no value before).
                replacement_trigger=guard.failed_endpoint,
                replace_with=[guard],
            ),
        )
        EndpointRecord(
            f"{name}-record",
            EndpointRecordArgs(
                endpoint_name=endpoint.name,
                endpoint_config_name=endpoint.endpoint_config_name,
                bucket=bucket,
                record_key=record,
                aws=args.aws or AwsSettings(region=args.region),
            ),
            # Runs once the Endpoint is in the state, and again for a recreated one.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[endpoint], replace_with=[endpoint]
            ),
        )
        return endpoint, guard

    def _import_command(self, name: str, endpoint_name: str) -> pulumi.Output[str]:
        """`pulumi import` of an existing endpoint of this name as this component's child.

        From the URN's parts: using `self.urn` would make the guard depend on the Endpoint.
        """
        parent = pulumi.create_urn(name, COMPONENT_TYPE)
        return parent.apply(
            lambda urn: (
                f"pulumi import 'aws:sagemaker/endpoint:Endpoint' {name}-endpoint "
                f"{endpoint_name} --parent '{name}={urn}'"
            )
        )

    def _execution_policy(
        self, args: ServerlessEmbeddingEndpointArgs, account_id: pulumi.Output[str]
    ) -> pulumi.Output[str]:
        """The role's policy JSON: read the artifact prefix, pull the DLC, write its own logs."""
        return pulumi.Output.all(args.bucket_arn, account_id).apply(
            lambda values: json.dumps(
                iam.sagemaker_execution_policy(
                    bucket_arn=values[0],
                    artifact_prefix=args.artifact_prefix,
                    repository_arn=images.repository_arn(args.region),
                    log_group_arn=iam.log_group_arn(args.region, values[1], self.log_group_name),
                )
            )
        )
