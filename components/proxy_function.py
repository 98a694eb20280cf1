"""`ProxyFunction`: a Lambda running a handler of the proxy zip, with its own role and log group.

The HTTP API's proxy and its API-key authorizer are both Python 3.12 functions from `proxy/`
(components/proxy_bundle.py); each gets a role that may do only what its statements say plus
write its own logs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components import iam
from components.proxy_bundle import build_proxy_zip
from components.service_role import service_role
from facts.cloudwatch_logs import DEFAULT_RETENTION_DAYS
from facts.lambda_runtime import LAMBDA_RUNTIME


@dataclass(frozen=True)
class ProxyFunctionArgs:
    """Which handler, what it may do (policy statements besides its logs), and its settings."""

    handler: str
    # Builds the role's statements once the inputs they are scoped to are known.
    statements: pulumi.Input[list[iam.Statement]]
    environment: pulumi.Input[dict[str, str]] = field(default_factory=dict)
    memory_size_mb: int = 256
    timeout_seconds: int = 30
    log_retention_days: int = DEFAULT_RETENTION_DAYS
    tags: tuple[tuple[str, str], ...] = ()


class ProxyFunction(pulumi.ComponentResource):
    """A Lambda of the proxy zip; its first invocation finds its permissions in place."""

    function: aws.lambda_.Function

    def __init__(
        self, name: str, args: ProxyFunctionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("embedding-endpoint:index:ProxyFunction", name, None, opts)
        # These resources were once children of the HTTP API component itself, under the same
        # names: the alias keeps existing stacks from replacing them.
        previous = [pulumi.Alias(parent=opts.parent)] if opts and opts.parent else []
        child = pulumi.ResourceOptions(parent=self, aliases=previous)
        tags = dict(args.tags)
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name_prefix=f"/aws/lambda/{name}-",
            retention_in_days=args.log_retention_days,
            tags=tags,
            opts=child,
        )
        # Lambda documents no aws:SourceAccount / aws:SourceArn for execution role trust policies.
        role, policy = service_role(
            name,
            iam.assume_role_policy("lambda.amazonaws.com"),
            pulumi.Output.all(args.statements, log_group.arn).apply(
                lambda values: json.dumps(
                    iam.document(list(values[0]) + iam.log_write_statements(values[1]))
                )
            ),
            tags=tags,
            opts=child,
        )
        # Deterministic bytes, so Pulumi's archive hash (and an update) changes only with the code.
        self.function = aws.lambda_.Function(
            name,
            runtime=LAMBDA_RUNTIME,
            handler=args.handler,
            role=role.arn,
            code=pulumi.FileArchive(str(build_proxy_zip())),
            memory_size=args.memory_size_mb,
            timeout=args.timeout_seconds,
            environment={"variables": args.environment},
            logging_config={"log_format": "Text", "log_group": log_group.name},
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy], aliases=previous),
        )
        self.register_outputs({"function_name": self.function.name})

    def allow_api_gateway(
        self, name: str, source_arn: pulumi.Input[str], opts: pulumi.ResourceOptions
    ) -> aws.lambda_.Permission:
        """Let API Gateway invoke the function from `source_arn`; `opts` keeps each permission's
        parent where existing stacks have it."""
        return aws.lambda_.Permission(
            name,
            action="lambda:InvokeFunction",
            function=self.function.name,
            principal="apigateway.amazonaws.com",
            source_arn=source_arn,
            opts=opts,
        )
