"""`HttpApiKeyAuthorizer`: the bearer token OpenAI clients send, kept in Secrets Manager.

The key is created once (its value is ignored after creation, so a rotation stays); the
authorizer is `proxy/authorizer.py`. Issue, rotate, revoke: docs/bedrock-and-http-api.md.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import iam
from components.proxy_function import ProxyFunction, ProxyFunctionArgs
from facts.cloudwatch_logs import DEFAULT_RETENTION_DAYS
from facts.http_api import API_KEY_SECRET_VARIABLE, AUTHORIZER_RESULT_TTL_SECONDS

AUTHORIZER_HANDLER = "proxy.authorizer.handler"


@dataclass(frozen=True)
class HttpApiKeyAuthorizerArgs:
    """Which API the authorizer guards."""

    api_id: pulumi.Input[str]
    execution_arn: pulumi.Input[str]
    log_retention_days: int = DEFAULT_RETENTION_DAYS
    tags: tuple[tuple[str, str], ...] = ()


class HttpApiKeyAuthorizer(pulumi.ComponentResource):
    """The key (a secret output), its secret and the API Gateway authorizer that checks it."""

    api_key: pulumi.Output[str]
    secret_arn: pulumi.Output[str]
    authorizer_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: HttpApiKeyAuthorizerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("embedding-endpoint:index:HttpApiKeyAuthorizer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        secret = aws.secretsmanager.Secret(
            f"{name}-secret",
            description="Bearer token for the embeddings HTTP API (OpenAI clients' api_key)",
            tags=tags,
            opts=child,
        )
        version = aws.secretsmanager.SecretVersion(
            f"{name}-value",
            secret_id=secret.id,
            secret_string=pulumi.Output.secret(secrets.token_urlsafe(32)),
            # Generated once: later runs (and a key rotated in Secrets Manager) keep the value.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["secret_string"]),
        )
        authorizer_function = ProxyFunction(
            f"{name}-authorizer",
            ProxyFunctionArgs(
                handler=AUTHORIZER_HANDLER,
                statements=secret.arn.apply(
                    lambda arn: iam.secret_read_statements(arn, sid="ReadApiKey")
                ),
                environment=secret.arn.apply(lambda arn: {API_KEY_SECRET_VARIABLE: arn}),
                memory_size_mb=128,
                timeout_seconds=10,
                log_retention_days=args.log_retention_days,
                tags=args.tags,
            ),
            opts=child,
        )
        authorizer = aws.apigatewayv2.Authorizer(
            f"{name}-authorizer",
            api_id=args.api_id,
            authorizer_type="REQUEST",
            authorizer_uri=authorizer_function.function.invoke_arn,
            authorizer_payload_format_version="2.0",
            enable_simple_responses=True,
            identity_sources=["$request.header.Authorization"],
            authorizer_result_ttl_in_seconds=AUTHORIZER_RESULT_TTL_SECONDS,
            opts=child,
        )
        authorizer_function.allow_api_gateway(
            f"{name}-authorizer-permission",
            pulumi.Output.from_input(args.execution_arn).apply(lambda arn: f"{arn}/authorizers/*"),
            child,
        )
        self.api_key = pulumi.Output.secret(version.secret_string)
        self.secret_arn = secret.arn
        self.authorizer_id = authorizer.id
        self.register_outputs({"secret_arn": self.secret_arn, "authorizer_id": self.authorizer_id})
