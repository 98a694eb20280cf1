"""`EmbeddingHttpApi`: an API Gateway HTTP API with IAM auth in front of a small proxy Lambda.

`POST /embed` (SigV4-signed, `execute-api:Invoke`) → proxy Lambda (python3.12, code from
`proxy/`, built as a deterministic zip) → SageMaker `InvokeEndpoint` or Bedrock `InvokeModel`.
The Lambda's role may invoke only that one endpoint or model and write only its own log group.
Callers get a managed policy allowing `execute-api:Invoke` on exactly this route.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import iam
from components.proxy_bundle import HANDLER, build_proxy_zip
from facts import proxy_budget
from facts.identifiers import BACKENDS

ROUTE_METHOD = "POST"
ROUTE_PATH = "/embed"
LAMBDA_RUNTIME = "python3.12"
# API Gateway HTTP APIs stop waiting for an integration after 30 s.
INTEGRATION_TIMEOUT_MS = proxy_budget.INTEGRATION_TIMEOUT_SECONDS * 1000


def proxy_invoke_statements(backend: str, target_arn: str) -> list[iam.Statement]:
    """Invoke the one endpoint (sagemaker) or foundation model (bedrock) the proxy serves."""
    action = "sagemaker:InvokeEndpoint" if backend == "sagemaker" else "bedrock:InvokeModel"
    return [{"Sid": "InvokeTarget", "Effect": "Allow", "Action": action, "Resource": target_arn}]


def proxy_role_policy(backend: str, target_arn: str, log_group_arn: str) -> iam.PolicyDocument:
    """The proxy role's whole policy: its target and its own logs."""
    return iam.document(
        proxy_invoke_statements(backend, target_arn) + iam.log_write_statements(log_group_arn)
    )


def route_arn(execution_arn: str) -> str:
    """The execute-api ARN of `POST /embed` on any stage of the API."""
    return f"{execution_arn}/*/{ROUTE_METHOD}{ROUTE_PATH}"


def caller_policy(execution_arn: str) -> iam.PolicyDocument:
    """What a client needs to call the route with SigV4."""
    return iam.document(
        [
            {
                "Sid": "InvokeEmbedRoute",
                "Effect": "Allow",
                "Action": "execute-api:Invoke",
                "Resource": route_arn(execution_arn),
            }
        ]
    )


def embed_url(api_endpoint: str) -> str:
    """The full URL clients POST to."""
    return f"{api_endpoint.rstrip('/')}{ROUTE_PATH}"


def proxy_environment(backend: str, target: str) -> dict[str, str]:
    """The Lambda's environment: which backend and which endpoint name / model id."""
    return {"EMBED_BACKEND": backend, "EMBED_TARGET": target}


@dataclass(frozen=True)
class EmbeddingHttpApiArgs:
    """What the proxy calls and how it is sized. Validated on construction."""

    backend: str
    # SageMaker endpoint name or Bedrock model id, and its ARN (what the role may invoke).
    target_name: pulumi.Input[str]
    target_arn: pulumi.Input[str]
    memory_size_mb: int = 256
    # The proxy's upstream calls are sized to end before this (facts/proxy_budget.py).
    timeout_seconds: int = proxy_budget.LAMBDA_TIMEOUT_SECONDS
    # Days CloudWatch keeps the proxy's logs (the stack's `logRetentionDays`).
    log_retention_days: int = 30
    throttling_rate_limit: float = 50.0
    throttling_burst_limit: int = 100
    tags: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(
                f"EmbeddingHttpApiArgs.backend {self.backend!r}: expected one of "
                f"{', '.join(BACKENDS)}"
            )
        if not 128 <= self.memory_size_mb <= 10_240:
            raise ValueError(
                f"EmbeddingHttpApiArgs.memory_size_mb {self.memory_size_mb}: expected 128-10240"
            )
        if not 1 <= self.timeout_seconds <= INTEGRATION_TIMEOUT_MS // 1000:
            raise ValueError(
                f"EmbeddingHttpApiArgs.timeout_seconds {self.timeout_seconds}: expected 1-30 "
                "(API Gateway stops waiting after 30 s)"
            )
        problem = proxy_budget.budget_problem(
            self.timeout_seconds,
            proxy_budget.UPSTREAM_CONNECT_TIMEOUT_SECONDS,
            proxy_budget.UPSTREAM_READ_TIMEOUT_SECONDS,
            proxy_budget.UPSTREAM_MAX_ATTEMPTS,
        )
        if problem:
            raise ValueError(
                f"EmbeddingHttpApiArgs.timeout_seconds {self.timeout_seconds}: {problem}"
            )


class EmbeddingHttpApi(pulumi.ComponentResource):
    """HTTP API + IAM-authorized route + proxy Lambda for one embedding target."""

    url: pulumi.Output[str]
    api_id: pulumi.Output[str]
    function_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    invoke_policy_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: EmbeddingHttpApiArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("embedding-endpoint:index:EmbeddingHttpApi", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-proxy-logs",
            name_prefix=f"/aws/lambda/{name}-proxy-",
            retention_in_days=args.log_retention_days,
            tags=tags,
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-proxy-role",
            assume_role_policy=json.dumps(iam.assume_role_policy("lambda.amazonaws.com")),
            tags=tags,
            opts=child,
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-proxy-policy",
            role=role.id,
            policy=pulumi.Output.all(args.target_arn, log_group.arn).apply(
                lambda arns: json.dumps(proxy_role_policy(args.backend, arns[0], arns[1]))
            ),
            opts=child,
        )
        # Deterministic bytes, so Pulumi's archive hash (and an update) changes only with the code.
        # No code_sha256/source_code_hash: the provider compares those with what AWS computes.
        function = aws.lambda_.Function(
            f"{name}-proxy",
            runtime=LAMBDA_RUNTIME,
            handler=HANDLER,
            role=role.arn,
            code=pulumi.FileArchive(str(build_proxy_zip())),
            memory_size=args.memory_size_mb,
            timeout=args.timeout_seconds,
            environment={
                "variables": pulumi.Output.from_input(args.target_name).apply(
                    lambda target: proxy_environment(args.backend, target)
                )
            },
            logging_config={"log_format": "Text", "log_group": log_group.name},
            tags=tags,
            # The first request must find the role allowed to call the target.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
        )

        api = aws.apigatewayv2.Api(
            f"{name}-api",
            protocol_type="HTTP",
            description="Embeddings: POST /embed (IAM auth)",
            tags=tags,
            opts=child,
        )
        integration = aws.apigatewayv2.Integration(
            f"{name}-integration",
            api_id=api.id,
            integration_type="AWS_PROXY",
            integration_method="POST",
            integration_uri=function.invoke_arn,
            payload_format_version="2.0",
            timeout_milliseconds=INTEGRATION_TIMEOUT_MS,
            opts=child,
        )
        route = aws.apigatewayv2.Route(
            f"{name}-route",
            api_id=api.id,
            route_key=f"{ROUTE_METHOD} {ROUTE_PATH}",
            authorization_type="AWS_IAM",
            target=integration.id.apply(lambda integration_id: f"integrations/{integration_id}"),
            opts=child,
        )
        aws.apigatewayv2.Stage(
            f"{name}-stage",
            api_id=api.id,
            name="$default",
            auto_deploy=True,
            default_route_settings={
                "throttling_rate_limit": args.throttling_rate_limit,
                "throttling_burst_limit": args.throttling_burst_limit,
            },
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[route]),
        )
        aws.lambda_.Permission(
            f"{name}-invoke-permission",
            action="lambda:InvokeFunction",
            function=function.name,
            principal="apigateway.amazonaws.com",
            source_arn=api.execution_arn.apply(route_arn),
            opts=child,
        )
        invoke_policy = aws.iam.Policy(
            f"{name}-caller",
            description="Call POST /embed on the embeddings HTTP API (SigV4)",
            policy=api.execution_arn.apply(lambda arn: json.dumps(caller_policy(arn))),
            tags=tags,
            opts=child,
        )

        self.url = api.api_endpoint.apply(embed_url)
        self.api_id = api.id
        self.function_name = function.name
        self.role_arn = role.arn
        self.invoke_policy_arn = invoke_policy.arn
        self.register_outputs(
            {
                "url": self.url,
                "api_id": self.api_id,
                "function_name": self.function_name,
                "role_arn": self.role_arn,
                "invoke_policy_arn": self.invoke_policy_arn,
            }
        )
