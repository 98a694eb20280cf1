"""The whole program in the China and GovCloud partitions: no input names the commercial one.

`__main__.py` runs under mocks for a `cn-north-1` and a `us-gov-west-1` stack with every backend
and option that builds an ARN or a service domain (HTTP API, a source archive, a token secret,
Bedrock). Every registered input is searched for `arn:aws:` and, in China, for a service domain
(an endpoint or registry host, `<service>.<region>.amazonaws.com`) that lacks the `.cn` suffix.
Service principals (`lambda.amazonaws.com`) are the same in every partition: AWS's China
documentation writes trust policies with them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from components.config_rules import HUB_ONLY_KEYS
from tests.fixtures.pulumi_mocks import ProgramRun

PARTITIONS = {"cn-north-1": "aws-cn", "us-gov-west-1": "aws-us-gov"}
# Bedrock models the region tables list in each partition (a warning otherwise, not an error).
BEDROCK_MODELS = {
    "cn-north-1": "amazon.titan-embed-text-v2:0",
    "us-gov-west-1": "cohere.embed-english-v3",
}


def stack(region: str, **options: str) -> dict[str, str]:
    partition = PARTITIONS[region]
    config = {
        "aws:region": region,
        "embedding-endpoint:modelId": "sentence-transformers/all-MiniLM-L6-v2",
        "embedding-endpoint:modelRevision": "main",
        "embedding-endpoint:httpApi": "true",
        "embedding-endpoint:hfTokenSecretArn": (
            f"arn:{partition}:secretsmanager:{region}:123456789012:secret:hf-token-AbCdEf"
        ),
    }
    config.update({f"embedding-endpoint:{key}": value for key, value in options.items()})
    if "sourceModelDataUrl" in options:  # it reads no Hub keys, and refuses them
        for key in HUB_ONLY_KEYS:
            config.pop(f"embedding-endpoint:{key}", None)
    return config


def commercial_references(run: ProgramRun, region: str) -> list[str]:
    """`name: excerpt` for every registered input that names the commercial partition."""
    found = []
    for resource in run.resources:
        text = json.dumps(resource.inputs, default=str)
        hits = [m.start() for m in re.finditer(r"arn:aws:", text)]
        if region.startswith("cn-"):
            host = re.compile(rf"\.{region}\.amazonaws\.com(?!\.cn)")
            hits += [m.start() for m in host.finditer(text)]
        found += [
            f"{resource.typ} {resource.name}: …{text[max(0, i - 60) : i + 60]}…" for i in hits
        ]
    return found


SAGEMAKER_VARIANTS = {
    "hub model, token secret, HTTP API, Lambda runner": {},
    "source archive": {"sourceModelDataUrl": "s3://training-out/job-1/output/model.tar.gz"},
    "local runner": {"packagingRunner": "local"},
    "HTTP API with an API key": {"httpApiAuth": "apiKey"},
}


@pytest.mark.parametrize("region", sorted(PARTITIONS))
@pytest.mark.parametrize("variant", sorted(SAGEMAKER_VARIANTS))
def test_no_input_of_a_sagemaker_stack_names_the_commercial_partition(
    pulumi_program: Callable[..., ProgramRun], region: str, variant: str
) -> None:
    run = pulumi_program(stack(region, **SAGEMAKER_VARIANTS[variant]))
    assert run.resources, "the program declared nothing"
    assert commercial_references(run, region) == []


@pytest.mark.parametrize("region", sorted(PARTITIONS))
@pytest.mark.parametrize("auth", ["iam", "apiKey"])
def test_no_input_of_a_bedrock_stack_names_the_commercial_partition(
    pulumi_program: Callable[..., ProgramRun], region: str, auth: str
) -> None:
    config = stack(
        region, backend="bedrock", bedrockModelId=BEDROCK_MODELS[region], httpApiAuth=auth
    )
    for key in ("hfTokenSecretArn", "modelId", "modelRevision"):  # SageMaker's keys
        del config[f"embedding-endpoint:{key}"]
    run = pulumi_program(config)
    assert run.resources, "the program declared nothing"
    assert commercial_references(run, region) == []
