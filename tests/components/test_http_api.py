"""`httpApi: true` under Pulumi mocks: `POST /embed` and `POST /v1/embeddings`, authorized by IAM or
an API key, → proxy Lambda whose role may invoke only the one endpoint or model, both backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.http_api import EmbeddingHttpApiArgs
from components.proxy_bundle import HANDLER, build_proxy_zip
from facts.http_api import API_KEY_CACHE_SECONDS, API_KEY_REVOCATION_SECONDS

COMPONENT = "embedding-endpoint:index:EmbeddingHttpApi"
FUNCTION = "aws:lambda/function:Function"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROUTE = "aws:apigatewayv2/route:Route"
INTEGRATION = "aws:apigatewayv2/integration:Integration"
STAGE = "aws:apigatewayv2/stage:Stage"
PERMISSION = "aws:lambda/permission:Permission"
API = "aws:apigatewayv2/api:Api"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


@pytest.fixture
def run_with_api(pulumi_program):
    """The shared mocks already compute what AWS does for an HTTP API (URL, execute-api ARN)."""
    return pulumi_program


def _sagemaker(**extra: str) -> dict[str, str]:
    config = {
        "aws:region": "us-east-1",
        "embedding-endpoint:modelId": "sentence-transformers/all-MiniLM-L6-v2",
        "embedding-endpoint:smokeTest": "false",
    }
    config.update({f"embedding-endpoint:{key}": value for key, value in extra.items()})
    return config


def _bedrock(**extra: str) -> dict[str, str]:
    config = {"aws:region": "us-east-1", "embedding-endpoint:backend": "bedrock"}
    config.update({f"embedding-endpoint:{key}": value for key, value in extra.items()})
    return config


def _named(run, typ: str, name: str):
    """The resource of `typ` the HTTP API declared (the sagemaker backend has a loader too)."""
    (found,) = [r for r in run.of_type(typ) if r.name == name]
    return found


def _role_statements(run) -> list[dict]:
    return json.loads(_named(run, ROLE_POLICY, "http-proxy-policy").inputs["policy"])["Statement"]


def test_http_api_is_absent_unless_enabled(run_with_api):
    run = run_with_api(_bedrock())
    assert not run.of_type(COMPONENT) and not run.of_type(API)


def _routes(run) -> dict[str, dict]:
    return {route.inputs["routeKey"]: route.inputs for route in run.of_type(ROUTE)}


def test_routes_are_native_and_openai_with_iam_authorization_by_default(run_with_api):
    routes = _routes(run_with_api(_bedrock(httpApi="true")))
    assert set(routes) == {"POST /embed", "POST /v1/embeddings"}
    assert {route["authorizationType"] for route in routes.values()} == {"AWS_IAM"}


def test_route_targets_a_lambda_proxy_integration_with_payload_2(run_with_api):
    run = run_with_api(_bedrock(httpApi="true"))
    integration = run.one(INTEGRATION)
    assert integration.inputs["integrationType"] == "AWS_PROXY"
    assert integration.inputs["payloadFormatVersion"] == "2.0"
    assert integration.inputs["integrationUri"].endswith(
        f"{run.one(FUNCTION).outputs['arn']}/invocations"
    )
    for route in _routes(run).values():
        assert route["target"] == f"integrations/{integration.outputs['name']}"


def test_stage_is_the_auto_deployed_default(run_with_api):
    stage = run_with_api(_bedrock(httpApi="true")).one(STAGE)
    assert stage.inputs["name"] == "$default"
    assert stage.inputs["autoDeploy"] is True


def test_stage_writes_its_access_log_to_a_group_kept_as_long_as_the_stacks_logs(run_with_api):
    run = run_with_api(_bedrock(httpApi="true", logRetentionDays="90"))
    log_group = _named(run, LOG_GROUP, "http-access-logs")
    assert log_group.inputs["retentionInDays"] == 90
    assert log_group.parent == run.one(COMPONENT).urn
    settings = run.one(STAGE).inputs["accessLogSettings"]
    assert settings["destinationArn"] == log_group.outputs["arn"]


def test_access_log_is_one_json_object_naming_the_request_and_how_it_ended(run_with_api):
    settings = run_with_api(_bedrock(httpApi="true")).one(STAGE).inputs["accessLogSettings"]
    fields = json.loads(settings["format"])
    assert {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "integrationError": "$context.integrationErrorMessage",
        "authorizerError": "$context.authorizer.error",
    }.items() <= fields.items()


def test_access_log_never_carries_a_header_or_the_body(run_with_api):
    run = run_with_api(_bedrock(httpApi="true", httpApiAuth="apiKey"))
    fields = json.loads(run.one(STAGE).inputs["accessLogSettings"]["format"])
    for value in fields.values():
        assert value.startswith("$context."), value
        assert "header" not in value.lower() and "authorization" not in value.lower(), value


def test_sagemaker_proxy_role_may_invoke_only_that_endpoint_and_write_its_logs(run_with_api):
    run = run_with_api(_sagemaker(httpApi="true"))
    statements = _role_statements(run)
    endpoint_arn = run.outputs["endpointArn"]
    assert statements[0] == {
        "Sid": "InvokeTarget",
        "Effect": "Allow",
        "Action": "sagemaker:InvokeEndpoint",
        "Resource": endpoint_arn,
    }
    assert {s["Sid"] for s in statements[1:]} == {"WriteLogs"}  # the group is managed
    log_group = _named(run, "aws:cloudwatch/logGroup:LogGroup", "http-proxy-logs").outputs["arn"]
    assert all(s["Resource"].startswith(log_group) for s in statements[1:])


def test_bedrock_proxy_role_may_invoke_only_that_model(run_with_api):
    run = run_with_api(_bedrock(httpApi="true", bedrockModelId="cohere.embed-english-v3"))
    assert _role_statements(run)[0] == {
        "Sid": "InvokeTarget",
        "Effect": "Allow",
        "Action": "bedrock:InvokeModel",
        "Resource": "arn:aws:bedrock:us-east-1::foundation-model/cohere.embed-english-v3",
    }


def test_no_proxy_statement_grants_a_wildcard_resource(run_with_api):
    for config in (_sagemaker(httpApi="true"), _bedrock(httpApi="true")):
        for statement in _role_statements(run_with_api(config)):
            assert statement["Resource"] != "*", statement


def test_proxy_function_runs_the_proxy_archive_on_python_312(run_with_api):
    function = _named(run_with_api(_bedrock(httpApi="true")), FUNCTION, "http-proxy")
    assert function.inputs["runtime"] == "python3.12"
    assert function.inputs["handler"] == HANDLER
    assert Path(function.inputs["code"].path) == build_proxy_zip()


def test_proxy_environment_names_the_backend_and_target(run_with_api):
    run = run_with_api(_sagemaker(httpApi="true"))
    variables = _named(run, FUNCTION, "http-proxy").inputs["environment"]["variables"]
    assert variables == {"EMBED_BACKEND": "sagemaker", "EMBED_TARGET": run.outputs["endpointName"]}


def test_proxy_logs_go_to_its_own_group(run_with_api):
    run = run_with_api(_bedrock(httpApi="true"))
    log_group = _named(run, LOG_GROUP, "http-proxy-logs")
    function = _named(run, FUNCTION, "http-proxy")
    assert function.inputs["loggingConfig"]["logGroup"] == log_group.outputs["name"]


def test_api_gateway_may_invoke_the_function_only_through_its_post_routes(run_with_api):
    run = run_with_api(_bedrock(httpApi="true"))
    permission = run.one(PERMISSION)
    execution_arn = run.one(API).outputs["executionArn"]
    assert permission.inputs["principal"] == "apigateway.amazonaws.com"
    assert permission.inputs["sourceArn"] == f"{execution_arn}/*/POST/*"


def test_caller_policy_allows_execute_api_invoke_on_the_routes_only(run_with_api):
    run = run_with_api(_bedrock(httpApi="true"))
    execution_arn = run.one(API).outputs["executionArn"]
    caller = next(
        r for r in run.of_type("aws:iam/policy:Policy") if "execute-api" in r.inputs["policy"]
    )
    assert json.loads(caller.inputs["policy"])["Statement"] == [
        {
            "Sid": "InvokeEmbedRoutes",
            "Effect": "Allow",
            "Action": "execute-api:Invoke",
            "Resource": [f"{execution_arn}/*/POST/embed", f"{execution_arn}/*/POST/v1/embeddings"],
        }
    ]
    assert run.outputs["httpApiInvokePolicyArn"] == caller.outputs["arn"]


def test_http_api_url_is_the_embed_route_and_openai_clients_get_a_base_url(run_with_api):
    run = run_with_api(_sagemaker(httpApi="true"))
    assert run.outputs["httpApiUrl"] == f"{run.one(API).outputs['apiEndpoint']}/embed"
    assert run.outputs["httpApiOpenAiBaseUrl"] == f"{run.one(API).outputs['apiEndpoint']}/v1"


def test_every_http_api_resource_is_under_the_component(run_with_api):
    for auth in ("iam", "apiKey"):
        run = run_with_api(_bedrock(httpApi="true", httpApiAuth=auth))
        component = run.one(COMPONENT)
        for resource in run.resources:
            if resource.name.startswith("http-"):
                ancestors = _ancestors(run, resource)
                assert component.urn in ancestors, f"{auth}: {resource.name}"


def _ancestors(run, resource) -> list[str]:
    by_urn = {r.urn: r for r in run.resources}
    found = []
    while resource.parent in by_urn:
        found.append(resource.parent)
        resource = by_urn[resource.parent]
    return found


# --- apiKey mode: a bearer token for OpenAI clients ---------------------------------------------

AUTHORIZER = "aws:apigatewayv2/authorizer:Authorizer"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"


def test_api_key_mode_guards_both_routes_with_a_lambda_authorizer(run_with_api):
    run = run_with_api(_sagemaker(httpApi="true", httpApiAuth="apiKey"))
    authorizer = run.one(AUTHORIZER)
    assert authorizer.inputs["authorizerType"] == "REQUEST"
    assert authorizer.inputs["identitySources"] == ["$request.header.Authorization"]
    assert authorizer.inputs["enableSimpleResponses"] is True
    assert authorizer.inputs["authorizerPayloadFormatVersion"] == "2.0"
    function = _named(run, FUNCTION, "http-key-authorizer")
    assert function.inputs["handler"] == "proxy.authorizer.handler"
    assert authorizer.inputs["authorizerUri"].endswith(f"{function.outputs['arn']}/invocations")
    for route in _routes(run).values():
        assert route["authorizationType"] == "CUSTOM"
        assert route["authorizerId"] == authorizer.outputs["name"]


def test_authorizer_answers_are_cached_briefly_enough_to_revoke_a_key_within_30_s(run_with_api):
    authorizer = run_with_api(_sagemaker(httpApi="true", httpApiAuth="apiKey")).one(AUTHORIZER)
    ttl = authorizer.inputs["authorizerResultTtlInSeconds"]
    # API Gateway's cache, then the authorizer's own copy of the secret (proxy/authorizer.py).
    assert ttl + API_KEY_CACHE_SECONDS == API_KEY_REVOCATION_SECONDS <= 30


def test_api_key_is_a_secret_output_generated_once(run_with_api):
    run = run_with_api(_sagemaker(httpApi="true", httpApiAuth="apiKey"))
    version = run.one(SECRET_VERSION)
    # Later runs must not mint a new key (nor undo a rotation made in Secrets Manager).
    assert version.ignore_changes == ("secretString",)
    assert "httpApiKey" in run.outputs and "httpApiInvokePolicyArn" not in run.outputs
    assert len(run.outputs["httpApiKey"]) >= 40


def test_authorizer_reads_only_its_secret(run_with_api):
    run = run_with_api(_bedrock(httpApi="true", httpApiAuth="apiKey"))
    policy = json.loads(_named(run, ROLE_POLICY, "http-key-authorizer-policy").inputs["policy"])
    secret_arn = run.one("aws:secretsmanager/secret:Secret").outputs["arn"]
    reads = [s for s in policy["Statement"] if s["Action"] == "secretsmanager:GetSecretValue"]
    assert [s["Resource"] for s in reads] == [secret_arn]
    # Where the documented rotation and revocation commands find it.
    assert run.outputs["httpApiKeySecretArn"] == secret_arn
    variables = _named(run, FUNCTION, "http-key-authorizer").inputs["environment"]["variables"]
    assert variables == {"EMBED_API_KEY_SECRET_ARN": secret_arn}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"backend": "openai"}, "backend 'openai'"),
        ({"timeout_seconds": 60}, "timeout_seconds 60"),
        ({"memory_size_mb": 64}, "memory_size_mb 64"),
        ({"auth": "basic"}, "auth 'basic'"),
    ],
)
def test_args_are_validated(changes, message):
    args = {"backend": "bedrock", "target_name": "m", "target_arn": "arn"} | changes
    with pytest.raises(ValueError, match=message):
        EmbeddingHttpApiArgs(**args)
