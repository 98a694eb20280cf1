"""`httpApi: true` under Pulumi mocks: IAM-authorized `POST /embed` → proxy Lambda whose role may
invoke only the one endpoint or model, for both backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.http_api import EmbeddingHttpApiArgs
from components.proxy_bundle import HANDLER, build_proxy_zip

COMPONENT = "embedding-endpoint:index:EmbeddingHttpApi"
FUNCTION = "aws:lambda/function:Function"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROUTE = "aws:apigatewayv2/route:Route"
INTEGRATION = "aws:apigatewayv2/integration:Integration"
STAGE = "aws:apigatewayv2/stage:Stage"
PERMISSION = "aws:lambda/permission:Permission"
API = "aws:apigatewayv2/api:Api"


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


def test_route_is_post_embed_with_iam_authorization(run_with_api):
    route = run_with_api(_bedrock(httpApi="true")).one(ROUTE)
    assert route.inputs["routeKey"] == "POST /embed"
    assert route.inputs["authorizationType"] == "AWS_IAM"


def test_route_targets_a_lambda_proxy_integration_with_payload_2(run_with_api):
    run = run_with_api(_bedrock(httpApi="true"))
    integration = run.one(INTEGRATION)
    assert integration.inputs["integrationType"] == "AWS_PROXY"
    assert integration.inputs["payloadFormatVersion"] == "2.0"
    assert integration.inputs["integrationUri"].endswith(
        f"{run.one(FUNCTION).outputs['arn']}/invocations"
    )
    assert run.one(ROUTE).inputs["target"] == f"integrations/{integration.outputs['name']}"


def test_stage_is_the_auto_deployed_default(run_with_api):
    stage = run_with_api(_bedrock(httpApi="true")).one(STAGE)
    assert stage.inputs["name"] == "$default"
    assert stage.inputs["autoDeploy"] is True


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
    function = run_with_api(_bedrock(httpApi="true")).one(FUNCTION)
    assert function.inputs["runtime"] == "python3.12"
    assert function.inputs["handler"] == HANDLER
    assert Path(function.inputs["code"].path) == build_proxy_zip()


def test_proxy_environment_names_the_backend_and_target(run_with_api):
    run = run_with_api(_sagemaker(httpApi="true"))
    variables = _named(run, FUNCTION, "http-proxy").inputs["environment"]["variables"]
    assert variables == {"EMBED_BACKEND": "sagemaker", "EMBED_TARGET": run.outputs["endpointName"]}


def test_proxy_logs_go_to_its_own_group(run_with_api):
    run = run_with_api(_bedrock(httpApi="true"))
    log_group = run.one("aws:cloudwatch/logGroup:LogGroup")
    assert run.one(FUNCTION).inputs["loggingConfig"]["logGroup"] == log_group.outputs["name"]


def test_api_gateway_may_invoke_the_function_only_through_the_route(run_with_api):
    run = run_with_api(_bedrock(httpApi="true"))
    permission = run.one(PERMISSION)
    execution_arn = run.one(API).outputs["executionArn"]
    assert permission.inputs["principal"] == "apigateway.amazonaws.com"
    assert permission.inputs["sourceArn"] == f"{execution_arn}/*/POST/embed"


def test_caller_policy_allows_execute_api_invoke_on_the_route_only(run_with_api):
    run = run_with_api(_bedrock(httpApi="true"))
    execution_arn = run.one(API).outputs["executionArn"]
    caller = next(
        r for r in run.of_type("aws:iam/policy:Policy") if "execute-api" in r.inputs["policy"]
    )
    assert json.loads(caller.inputs["policy"])["Statement"] == [
        {
            "Sid": "InvokeEmbedRoute",
            "Effect": "Allow",
            "Action": "execute-api:Invoke",
            "Resource": f"{execution_arn}/*/POST/embed",
        }
    ]
    assert run.outputs["httpApiInvokePolicyArn"] == caller.outputs["arn"]


def test_http_api_url_is_the_embed_route(run_with_api):
    run = run_with_api(_sagemaker(httpApi="true"))
    assert run.outputs["httpApiUrl"] == f"{run.one(API).outputs['apiEndpoint']}/embed"


def test_every_http_api_resource_is_a_child_of_the_component(run_with_api):
    run = run_with_api(_bedrock(httpApi="true"))
    component = run.one(COMPONENT)
    kinds = {API, ROUTE, INTEGRATION, STAGE, FUNCTION, PERMISSION, ROLE_POLICY}
    for resource in run.resources:
        if resource.typ in kinds:
            assert resource.parent == component.urn, resource.name


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"backend": "openai"}, "backend 'openai'"),
        ({"timeout_seconds": 60}, "timeout_seconds 60"),
        ({"memory_size_mb": 64}, "memory_size_mb 64"),
    ],
)
def test_args_are_validated(changes, message):
    args = {"backend": "bedrock", "target_name": "m", "target_arn": "arn"} | changes
    with pytest.raises(ValueError, match=message):
        EmbeddingHttpApiArgs(**args)
