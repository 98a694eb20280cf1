"""`bedrockModelId` validation: unknown ids fail before anything is declared, regions only warn."""

from __future__ import annotations

import pytest

from facts.bedrock_models import (
    DEFAULT_MODEL_ID,
    MODELS,
    foundation_model_arn,
    model_problem,
    model_warning,
)


def test_default_model_is_in_the_table():
    assert DEFAULT_MODEL_ID in MODELS


@pytest.mark.parametrize("model_id", sorted(MODELS))
def test_every_table_model_is_accepted(model_id):
    assert model_problem(model_id) is None


def test_unknown_model_lists_the_allowed_ids():
    problem = model_problem("anthropic.claude-3-haiku-20240307-v1:0")
    assert problem is not None
    for model_id in MODELS:
        assert model_id in problem


def test_inference_profile_id_is_rejected_with_the_reason():
    problem = model_problem("us.cohere.embed-v4:0")
    assert problem is not None and "inference profile" in problem


def test_region_outside_the_known_list_only_warns():
    assert model_problem("amazon.titan-embed-text-v1") is None
    warning = model_warning("amazon.titan-embed-text-v1", "af-south-1")
    assert warning is not None and "af-south-1" in warning and "us-east-1" in warning


def test_known_region_gives_no_warning():
    assert model_warning("amazon.titan-embed-text-v2:0", "us-east-1") is None


def test_model_without_a_region_list_says_so():
    warning = model_warning("cohere.embed-v4:0", "us-east-1")
    assert warning is not None and "no region list" in warning


def test_foundation_model_arn_has_no_account_and_uses_the_region_partition():
    assert (
        foundation_model_arn("amazon.titan-embed-text-v2:0", "eu-west-1")
        == "arn:aws:bedrock:eu-west-1::foundation-model/amazon.titan-embed-text-v2:0"
    )
    assert foundation_model_arn("cohere.embed-english-v3", "us-gov-west-1").startswith(
        "arn:aws-us-gov:bedrock:us-gov-west-1::"
    )


def test_config_rejects_an_unknown_bedrock_model_naming_the_key():
    from components.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match="embedding-endpoint:bedrockModelId"):
        parse_config(
            {"backend": "bedrock", "bedrockModelId": "amazon.titan-text-express-v1"},
            stack="dev",
            region="us-east-1",
        )
