"""An IAM role a service assumes, with its one inline policy: how each component grants access.

The SageMaker Model, the loader Lambda and the proxy Lambdas each get a role of their own whose
inline policy is scoped to what that runtime touches (components/iam.py writes the documents).
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from components.iam import PolicyDocument


def service_role(
    name: str,
    trust: pulumi.Input[PolicyDocument],
    policy: pulumi.Input[str],
    *,
    opts: pulumi.ResourceOptions,
    tags: dict[str, str] | None = None,
) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
    """`{name}-role` trusting `trust`'s principal, and `{name}-policy` (policy JSON) on it.

    Whatever the role runs should depend on the policy, or it may start without permissions.
    """
    role = aws.iam.Role(
        f"{name}-role",
        assume_role_policy=pulumi.Output.from_input(trust).apply(json.dumps),
        tags=tags,
        opts=opts,
    )
    role_policy = aws.iam.RolePolicy(f"{name}-policy", role=role.id, policy=policy, opts=opts)
    return role, role_policy
