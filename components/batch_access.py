"""`BatchTransformAccess`: lets SageMaker Batch Transform jobs run on the stack's Model.

A job runs as its Model's role (CreateTransformJob has no role parameter), so the stack grants
that role what a job needs, on the stack's batch folders only (docs/bulk.md).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import iam
from components.config import StackConfig
from components.endpoint import ServerlessEmbeddingEndpoint, endpoint_name_for
from facts import identifiers

# Room left for `-YYYYmmdd-HHMMSS` after the prefix in a 63-character job name.
JOB_PREFIX_MAX = 45


def batch_job_prefix(endpoint_name: str) -> str:
    """Names of this stack's transform jobs start with this (`embed batch` adds a timestamp).

    A name too long to keep whole keeps a hash of itself: two stacks whose names share their
    first characters would otherwise share a prefix, and each one's role could write the other's
    job logs.
    """
    room = JOB_PREFIX_MAX - len("-batch-")
    if len(endpoint_name) > room:
        digest = hashlib.sha256(endpoint_name.encode()).hexdigest()[:6]
        endpoint_name = endpoint_name[: room - 7].rstrip("-") + "-" + digest
    return endpoint_name + "-batch-"


@dataclass(frozen=True)
class BatchTransformAccessArgs:
    """The role to extend and the folders its jobs may use. Validated on construction."""

    role_name: pulumi.Input[str]
    # The stack's endpoint name: job names (and so the log streams granted) start with it.
    endpoint_name: str
    region: str
    input_prefix: str
    output_prefix: str

    @classmethod
    def for_stack(
        cls, cfg: StackConfig, endpoint: ServerlessEmbeddingEndpoint
    ) -> BatchTransformAccessArgs:
        """The stack's batch folders, granted to the role of the stack's endpoint's Model."""
        return cls(
            role_name=endpoint.role_name,
            endpoint_name=endpoint_name_for(pulumi.get_project(), cfg.stack),
            region=cfg.region,
            input_prefix=str(cfg.batch_input_prefix),
            output_prefix=str(cfg.batch_output_prefix),
        )

    def __post_init__(self) -> None:
        for name in ("input_prefix", "output_prefix"):
            problem = identifiers.S3_PREFIX_URL.problem(getattr(self, name))
            if problem:
                raise ValueError(f"BatchTransformAccessArgs.{name}: {problem}")


class BatchTransformAccess(pulumi.ComponentResource):
    """A policy on the Model's role for Batch Transform: one input folder, one output folder."""

    policy_name: pulumi.Output[str]
    job_name_prefix: str

    def __init__(
        self, name: str, args: BatchTransformAccessArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("embedding-endpoint:index:BatchTransformAccess", name, None, opts)
        self.job_name_prefix = batch_job_prefix(args.endpoint_name)
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))

        def render(account_id: str) -> str:
            log_group = iam.log_group_arn(
                args.region, account_id, iam.SAGEMAKER_TRANSFORM_LOG_GROUP
            )
            return json.dumps(
                iam.document(
                    iam.batch_transform_statements(
                        region=args.region,
                        input_url=args.input_prefix,
                        output_url=args.output_prefix,
                        log_group_arn=log_group,
                        job_name_prefix=self.job_name_prefix,
                    )
                )
            )

        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=args.role_name,
            policy=identity.account_id.apply(render),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.policy_name = policy.name
        self.register_outputs({"policy_name": self.policy_name})
