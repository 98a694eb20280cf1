"""The bedrock backend under Pulumi mocks: one policy scoped to the model, no hosting resources."""

from __future__ import annotations

import json

import pytest

from components.bedrock_access import BedrockEmbeddingAccessArgs, invoke_model_policy

ACCESS = "embedding-endpoint:index:BedrockEmbeddingAccess"
POLICY = "aws:iam/policy:Policy"


def _bedrock_config(region: str = "us-east-1", **extra: str) -> dict[str, str]:
    config = {"aws:region": region, "embedding-endpoint:backend": "bedrock"}
    config.update({f"embedding-endpoint:{key}": value for key, value in extra.items()})
    return config


def test_bedrock_backend_declares_only_the_access_policy(pulumi_program):
    run = pulumi_program(_bedrock_config())
    assert sorted(r.typ for r in run.resources) == sorted([ACCESS, POLICY])


def test_policy_allows_invoke_model_on_exactly_the_configured_model(pulumi_program):
    run = pulumi_program(
        _bedrock_config("eu-central-1", bedrockModelId="cohere.embed-multilingual-v3")
    )
    document = json.loads(run.one(POLICY).inputs["policy"])
    assert document["Statement"] == [
        {
            "Sid": "InvokeEmbeddingModel",
            "Effect": "Allow",
            "Action": "bedrock:InvokeModel",
            "Resource": (
                "arn:aws:bedrock:eu-central-1::foundation-model/cohere.embed-multilingual-v3"
            ),
        }
    ]


def test_policy_is_a_child_of_the_access_component(pulumi_program):
    run = pulumi_program(_bedrock_config())
    assert run.one(POLICY).parent == run.one(ACCESS).urn


def test_outputs_tell_the_client_how_to_call_the_model(pulumi_program):
    run = pulumi_program(_bedrock_config("us-west-2", bedrockModelId="amazon.titan-embed-text-v1"))
    assert run.outputs["backend"] == "bedrock"
    assert run.outputs["region"] == "us-west-2"
    assert run.outputs["bedrockModelId"] == "amazon.titan-embed-text-v1"
    assert run.outputs["bedrockModelArn"] == (
        "arn:aws:bedrock:us-west-2::foundation-model/amazon.titan-embed-text-v1"
    )
    assert run.outputs["bedrockInvokePolicyArn"].startswith("arn:aws:iam::")
    assert "httpApiUrl" not in run.outputs


def test_region_not_known_to_offer_the_model_is_a_warning_not_a_failure(pulumi_program):
    run = pulumi_program(_bedrock_config("af-south-1"))
    assert len(run.outputs["warnings"]) == 1
    assert "af-south-1" in run.outputs["warnings"][0]
    assert any("af-south-1" in message for message in run.warnings)


def test_unknown_bedrock_model_stops_the_program_before_any_resource(pulumi_program):
    with pytest.raises(Exception, match="embedding-endpoint:bedrockModelId"):
        pulumi_program(_bedrock_config(bedrockModelId="amazon.titan-text-express-v1"))


def test_args_reject_an_unknown_model():
    with pytest.raises(ValueError, match="BedrockEmbeddingAccessArgs.model_id"):
        BedrockEmbeddingAccessArgs(model_id="meta.llama3-8b-instruct-v1:0", region="us-east-1")


def test_govcloud_policy_uses_the_govcloud_partition():
    document = invoke_model_policy("amazon.titan-embed-text-v2:0", "us-gov-west-1")
    assert document["Statement"][0]["Resource"].startswith("arn:aws-us-gov:bedrock:us-gov-west-1::")
