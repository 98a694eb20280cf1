"""The post-deploy check calls the endpoint in the stack's account: its profile, its roles.

`python -m embedding_client.smoke --endpoint … --profile … --assume-roles …` against moto's
sagemaker-runtime behind the recording proxy, which tells which access key signed each call.
"""

from __future__ import annotations

import json

import pytest
from moto.sts.models import sts_backends

from embedding_client import smoke
from tests.fixtures.aws import AwsEndpoint, NamedProfile, create_role, queue_sagemaker_results
from tests.fixtures.aws_proxy import AwsProxy

# A region no other test queues sagemaker-runtime answers in (moto keeps them per region).
REGION = "ca-central-1"
PARAPHRASES = {"embeddings": [[1.0, 0.0, 0.0], [0.8, 0.6, 0.0]], "model": "m", "dimensions": 3}
UNRELATED = {"embeddings": [[0.0, 0.0, 1.0]], "model": "m", "dimensions": 3}


@pytest.fixture
def endpoint(moto_server: AwsEndpoint, aws: AwsEndpoint) -> AwsEndpoint:
    regional = AwsEndpoint(url=moto_server.url, region=REGION)
    queue_sagemaker_results(regional, json.dumps(PARAPHRASES), json.dumps(UNRELATED))
    return regional


def run_check(proxy: AwsProxy, capsys, *aws_options: str) -> tuple[int, str]:
    argv = ["--endpoint", "embed-dev", "--region", REGION, "--endpoint-url", proxy.url]
    code = smoke.main([*argv, "--attempts", "1", *aws_options])
    return code, capsys.readouterr().err


def test_the_check_signs_with_the_stacks_profile(
    endpoint, named_profile: NamedProfile, aws_proxy: AwsProxy, capsys
) -> None:
    code, err = run_check(aws_proxy, capsys, "--profile", named_profile.name)
    assert code == 0, err
    assert aws_proxy.access_keys("sagemaker") == {named_profile.access_key_id}


def test_the_check_signs_with_the_last_role_of_the_chain(
    endpoint, named_profile: NamedProfile, aws_proxy: AwsProxy, aws: AwsEndpoint, capsys
) -> None:
    role = create_role(aws)
    roles = json.dumps([{"roleArn": role, "sessionName": "smoke"}])
    code, err = run_check(
        aws_proxy, capsys, "--profile", named_profile.name, "--assume-roles", roles
    )
    assert code == 0, err
    issued = {
        assumed.access_key_id
        for account in list(sts_backends.keys())
        for backend in sts_backends[account].values()
        for assumed in backend.assumed_roles
        if assumed.role_arn == role and assumed.session_name == "smoke"
    }
    used = aws_proxy.access_keys("sagemaker")
    assert used and used <= issued


def test_an_unknown_profile_fails_the_check_saying_so(aws_proxy: AwsProxy, aws, capsys) -> None:
    code, err = run_check(aws_proxy, capsys, "--profile", "no-such-profile")
    assert code == 1
    assert "no-such-profile" in err
    assert aws_proxy.requests == []
