"""`EmbeddingHttpApi`: an API Gateway HTTP API in front of a small proxy Lambda.

`POST /embed` and `POST /v1/embeddings` → proxy Lambda (`proxy/`) → the endpoint or the Bedrock
model, which alone its role may invoke. Callers sign SigV4 (`iam`: a managed policy allows exactly
these routes) or send a bearer token (`apiKey`, components/http_api_key.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import iam
from components.config import StackConfig
from components.http_api_key import HttpApiKeyAuthorizer, HttpApiKeyAuthorizerArgs
from components.proxy_bundle import HANDLER
from components.proxy_function import ProxyFunction, ProxyFunctionArgs
from facts import cloudwatch_logs, proxy_budget
from facts.http_api import (
    BACKEND_VARIABLE,
    NATIVE_ROUTE,
    OPENAI_BASE_PATH,
    OPENAI_ROUTE,
    ROUTE_METHOD,
    ROUTES,
    TARGET_VARIABLE,
)
from facts.identifiers import BACKENDS, HTTP_API_AUTH_MODES

# API Gateway HTTP APIs stop waiting for an integration after 30 s.
INTEGRATION_TIMEOUT_MS = proxy_budget.INTEGRATION_TIMEOUT_SECONDS * 1000

# One JSON line per request in the stage's access log: who, which route, how it ended and why.
# Only $context variables of the request's outcome: no header (never Authorization), no body.
# https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-logging-variables.html
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTime",
    "ip": "$context.identity.sourceIp",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "responseLatencyMs": "$context.responseLatency",
    "integrationStatus": "$context.integrationStatus",
    "integrationError": "$context.integrationErrorMessage",
    "authorizerError": "$context.authorizer.error",
    "error": "$context.error.message",
}


def route_arns(execution_arn: str) -> list[str]:
    """The execute-api ARNs of the API's routes on any stage."""
    return [f"{execution_arn}/*/{ROUTE_METHOD}{path}" for path in ROUTES]


def embed_url(api_endpoint: str) -> str:
    """The full URL native clients POST to."""
    return f"{api_endpoint.rstrip('/')}{NATIVE_ROUTE}"


def openai_base_url(api_endpoint: str) -> str:
    """What OpenAI clients take as `base_url` (they append `/embeddings`)."""
    return f"{api_endpoint.rstrip('/')}{OPENAI_BASE_PATH}"


@dataclass(frozen=True)
class EmbeddingHttpApiArgs:
    """What the proxy calls, how callers authenticate and how it is sized. Validated."""

    backend: str
    # SageMaker endpoint name or Bedrock model id, and its ARN (what the role may invoke).
    target_name: pulumi.Input[str]
    target_arn: pulumi.Input[str]
    auth: str = "iam"
    memory_size_mb: int = 256
    # The proxy's upstream calls are sized to end before this (facts/proxy_budget.py).
    timeout_seconds: int = proxy_budget.LAMBDA_TIMEOUT_SECONDS
    # Days CloudWatch keeps the proxy's logs (the stack's `logRetentionDays`).
    log_retention_days: int = cloudwatch_logs.DEFAULT_RETENTION_DAYS
    throttling_rate_limit: float = 50.0
    throttling_burst_limit: int = 100
    tags: tuple[tuple[str, str], ...] = ()

    @classmethod
    def for_stack(
        cls,
        cfg: StackConfig,
        backend: str,
        target: tuple[pulumi.Input[str], pulumi.Input[str]],
        tags: tuple[tuple[str, str], ...],
    ) -> EmbeddingHttpApiArgs:
        """An HTTP API in front of the stack's deployed backend (its name and ARN)."""
        name, arn = target
        return cls(
            backend,
            name,
            arn,
            auth=cfg.http_api_auth,
            log_retention_days=cfg.log_retention_days,
            tags=tags,
        )

    def __post_init__(self) -> None:
        for field, value, allowed in (
            ("backend", self.backend, BACKENDS),
            ("auth", self.auth, HTTP_API_AUTH_MODES),
        ):
            if value not in allowed:
                raise ValueError(
                    f"EmbeddingHttpApiArgs.{field} {value!r}: expected one of {', '.join(allowed)}"
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
    """HTTP API + authorized routes + proxy Lambda for one embedding target."""

    url: pulumi.Output[str]
    openai_base_url: pulumi.Output[str]
    api_id: pulumi.Output[str]
    function_name: pulumi.Output[str]
    # `iam` only: the managed policy callers attach to sign requests.
    invoke_policy_arn: pulumi.Output[str] | None
    # `apiKey` only: the bearer token (a secret output) and the secret that keeps it.
    api_key: pulumi.Output[str] | None
    api_key_secret_arn: pulumi.Output[str] | None

    def __init__(
        self, name: str, args: EmbeddingHttpApiArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("embedding-endpoint:index:EmbeddingHttpApi", name, None, opts)
        proxy = self._declare_proxy(name, args)
        api, integration = self._declare_api(name, args, proxy)
        route_auth = self._declare_auth(name, args, api)
        self._declare_routes(name, args, api, integration, route_auth)
        proxy.allow_api_gateway(
            f"{name}-invoke-permission",
            api.execution_arn.apply(lambda arn: f"{arn}/*/{ROUTE_METHOD}/*"),
            pulumi.ResourceOptions(parent=self),
        )
        self.invoke_policy_arn = self._declare_caller_policy(name, args, api)

        self.url = api.api_endpoint.apply(embed_url)
        self.openai_base_url = api.api_endpoint.apply(openai_base_url)
        self.api_id = api.id
        self.function_name = proxy.function.name
        self.register_outputs(
            {
                "url": self.url,
                "openai_base_url": self.openai_base_url,
                "api_id": self.api_id,
                "function_name": self.function_name,
                "invoke_policy_arn": self.invoke_policy_arn,
                "api_key_secret_arn": self.api_key_secret_arn,
            }
        )

    def _declare_proxy(self, name: str, args: EmbeddingHttpApiArgs) -> ProxyFunction:
        """The proxy Lambda: it may invoke only the one endpoint or model it fronts."""
        return ProxyFunction(
            f"{name}-proxy",
            ProxyFunctionArgs(
                handler=HANDLER,
                statements=pulumi.Output.from_input(args.target_arn).apply(
                    lambda arn: iam.invoke_statements(args.backend, arn)
                ),
                # Which backend, and which endpoint name or model id.
                environment=pulumi.Output.from_input(args.target_name).apply(
                    lambda target: {BACKEND_VARIABLE: args.backend, TARGET_VARIABLE: target}
                ),
                memory_size_mb=args.memory_size_mb,
                timeout_seconds=args.timeout_seconds,
                log_retention_days=args.log_retention_days,
                tags=args.tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _declare_api(
        self, name: str, args: EmbeddingHttpApiArgs, proxy: ProxyFunction
    ) -> tuple[aws.apigatewayv2.Api, aws.apigatewayv2.Integration]:
        """The HTTP API and its one integration: the proxy, within API Gateway's 30 s."""
        child = pulumi.ResourceOptions(parent=self)
        api = aws.apigatewayv2.Api(
            f"{name}-api",
            protocol_type="HTTP",
            description=f"Embeddings: POST {NATIVE_ROUTE}, POST {OPENAI_ROUTE} ({args.auth} auth)",
            tags=dict(args.tags),
            opts=child,
        )
        integration = aws.apigatewayv2.Integration(
            f"{name}-integration",
            api_id=api.id,
            integration_type="AWS_PROXY",
            integration_method="POST",
            integration_uri=proxy.function.invoke_arn,
            payload_format_version="2.0",
            timeout_milliseconds=INTEGRATION_TIMEOUT_MS,
            opts=child,
        )
        return api, integration

    def _declare_auth(
        self, name: str, args: EmbeddingHttpApiArgs, api: aws.apigatewayv2.Api
    ) -> dict[str, pulumi.Input[str]]:
        """How the routes authorize: SigV4 (`iam`), or the bearer-token authorizer (`apiKey`)."""
        self.api_key = self.api_key_secret_arn = None
        if args.auth != "apiKey":
            return {"authorization_type": "AWS_IAM"}
        key = HttpApiKeyAuthorizer(
            f"{name}-key",
            HttpApiKeyAuthorizerArgs(
                api_id=api.id,
                execution_arn=api.execution_arn,
                log_retention_days=args.log_retention_days,
                tags=args.tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.api_key, self.api_key_secret_arn = key.api_key, key.secret_arn
        return {"authorization_type": "CUSTOM", "authorizer_id": key.authorizer_id}

    def _declare_routes(
        self,
        name: str,
        args: EmbeddingHttpApiArgs,
        api: aws.apigatewayv2.Api,
        integration: aws.apigatewayv2.Integration,
        route_auth: dict[str, pulumi.Input[str]],
    ) -> None:
        """The two routes, and the auto-deployed, throttled default stage with its access log."""
        routes = [
            aws.apigatewayv2.Route(
                f"{name}-route" if path == NATIVE_ROUTE else f"{name}-openai-route",
                api_id=api.id,
                route_key=f"{ROUTE_METHOD} {path}",
                target=integration.id.apply(
                    lambda integration_id: f"integrations/{integration_id}"
                ),
                **route_auth,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for path in ROUTES
        ]
        access_log = aws.cloudwatch.LogGroup(
            f"{name}-access-logs",
            name_prefix=f"/aws/apigateway/{name}-",
            retention_in_days=args.log_retention_days,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
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
            access_log_settings={
                "destination_arn": access_log.arn,
                "format": json.dumps(ACCESS_LOG_FIELDS),
            },
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self, depends_on=routes),
        )

    def _declare_caller_policy(
        self, name: str, args: EmbeddingHttpApiArgs, api: aws.apigatewayv2.Api
    ) -> pulumi.Output[str] | None:
        """`iam` only: the managed policy that lets a caller sign requests to exactly the routes."""
        if args.auth != "iam":
            return None
        return aws.iam.Policy(
            f"{name}-caller",
            description=f"Call POST {NATIVE_ROUTE} and {OPENAI_ROUTE} on the embeddings API",
            policy=api.execution_arn.apply(
                lambda arn: json.dumps(iam.execute_api_invoke_policy(route_arns(arn)))
            ),
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        ).arn
