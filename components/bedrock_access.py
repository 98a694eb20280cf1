"""`BedrockEmbeddingAccess`: one IAM policy allowing `bedrock:InvokeModel` on exactly one model.

The `bedrock` backend has no SageMaker, bucket or packaging resources; attach the policy to your
application's role. (Model access is granted per account in the Bedrock console, not here.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import iam
from facts import bedrock_models


def invoke_model_policy(model_id: str, region: str) -> iam.PolicyDocument:
    """The policy document for invoking `model_id` in `region`."""
    model_arn = bedrock_models.foundation_model_arn(model_id, region)
    return iam.document(iam.invoke_statements("bedrock", model_arn, sid="InvokeEmbeddingModel"))


@dataclass(frozen=True)
class BedrockEmbeddingAccessArgs:
    """The model to grant access to. Validated on construction."""

    model_id: str
    region: str
    tags: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        problem = bedrock_models.model_problem(self.model_id)
        if problem:
            raise ValueError(f"BedrockEmbeddingAccessArgs.model_id {self.model_id!r}: {problem}")
        if not self.region:
            raise ValueError("BedrockEmbeddingAccessArgs.region is empty: expected e.g. us-east-1")


class BedrockEmbeddingAccess(pulumi.ComponentResource):
    """A managed policy scoped to one Bedrock embedding model, and the facts a client needs."""

    policy_arn: pulumi.Output[str]
    warning: str | None  # the region is not known to offer the model
    model_arn: str
    model_id: str
    region: str

    def __init__(
        self,
        name: str,
        args: BedrockEmbeddingAccessArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("embedding-endpoint:index:BedrockEmbeddingAccess", name, None, opts)
        # The program logs and exports it with the stack's other warnings.
        self.warning = bedrock_models.model_warning(args.model_id, args.region)
        self.model_id = args.model_id
        self.region = args.region
        self.model_arn = bedrock_models.foundation_model_arn(args.model_id, args.region)
        policy = aws.iam.Policy(
            f"{name}-invoke",
            description=f"Invoke the Bedrock embedding model {args.model_id} in {args.region}",
            policy=json.dumps(invoke_model_policy(args.model_id, args.region)),
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.policy_arn = policy.arn
        self.register_outputs(
            {"policy_arn": self.policy_arn, "model_arn": self.model_arn, "model_id": self.model_id}
        )
