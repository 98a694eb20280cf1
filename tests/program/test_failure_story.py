"""A new user's story: a model too big for its memory, one config change, a successful deploy.

`__main__.py` runs as two `pulumi up`s under mocks that play the providers against moto's
SageMaker. The fault layer plays SageMaker: a variant with less memory than the model needs
never becomes healthy, so the endpoint stays `Failed`. The failed-endpoint guard runs as Pulumi
runs it: its pickled provider in a separate process, checking and updating from the outputs the
first run recorded. The Endpoint follows the current provider's behaviour, where a failed create
leaves nothing in the state. The deploy check runs its real command line. Between the two runs
the user changes one config key, and does nothing else.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest

from facts.sagemaker_endpoints import VARIANT_NAME
from tests.fixtures.aws import (
    FAKE_CREDENTIALS,
    AwsEndpoint,
    forget_sagemaker_results,
    queue_sagemaker_results,
)
from tests.fixtures.pulumi_mocks import DYNAMIC_RESOURCE, ProgramMocks, ProgramRun
from tests.support.provider_host import run_provider
from tests.support.sagemaker_faults import OUT_OF_MEMORY_FAILURE, SageMakerFaults
from tests.support.stacks import stack_config

MODEL_ID = "BAAI/bge-large-en-v1.5"
WEIGHTS_BYTES = 1_340_000_000  # 1,278 MB: more than 2048 MB at peak (components/memory_sizing.py)
MEMORY_THE_MODEL_NEEDS_MB = 3580
MODEL = "aws:sagemaker/model:Model"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
COMMAND = "command:local:Command"


class StoryMocks(ProgramMocks):
    """ProgramMocks whose SageMaker resources, guard and deploy check act against moto."""

    def __init__(
        self, aws: AwsEndpoint, faults: SageMakerFaults, state: dict[str, Any], work_dir: Path
    ) -> None:
        super().__init__(aws.region, weights_bytes={MODEL_ID: WEIGHTS_BYTES})
        self.aws, self.faults, self.state, self.work_dir = aws, faults, state, work_dir
        self.events: list[str] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        inputs = dict(args.inputs)
        if args.typ == DYNAMIC_RESOURCE and "endpoint_name" in inputs:
            role = "record" if "record_key" in inputs and "owner_tags" not in inputs else "guard"
            if role == "record":  # the artifact bucket the program declared, as AWS would have it
                self.faults.aws.client("s3").create_bucket(Bucket=inputs["bucket"])
            result = run_provider(inputs, self.work_dir, self.state.get(role), role)
            self.state[role] = result["outs"]
            self.events.append(f"{role} {result['operation']}")
            return result["id"], result["outs"]
        resource_id, outputs = super().new_resource(args)
        if args.typ == MODEL:
            container = inputs["primaryContainer"]
            self.faults.client.create_model(
                ModelName=outputs["name"],
                ExecutionRoleArn=inputs["executionRoleArn"],
                PrimaryContainer={
                    "Image": container["image"],
                    "ModelDataUrl": container["modelDataUrl"],
                    "Environment": container["environment"],
                },
            )
        elif args.typ == CONFIG:
            (variant,) = inputs["productionVariants"]
            serverless = variant["serverlessConfig"]
            self.faults.client.create_endpoint_config(
                EndpointConfigName=outputs["name"],
                ProductionVariants=[
                    {
                        "VariantName": VARIANT_NAME,
                        "ModelName": variant["modelName"],
                        "ServerlessConfig": {
                            "MemorySizeInMB": int(serverless["memorySizeInMb"]),
                            "MaxConcurrency": int(serverless["maxConcurrency"]),
                        },
                    }
                ],
            )
            self.state["memory"] = serverless["memorySizeInMb"]
        elif args.typ == ENDPOINT:
            self._create_endpoint(outputs["name"], inputs["endpointConfigName"], inputs["tags"])
        elif args.typ == COMMAND:
            self._run_check(inputs)
        return resource_id, outputs

    def _create_endpoint(self, name: str, config_name: str, tags: dict[str, str]) -> None:
        """The provider's create: CreateEndpoint, then wait for InService (it ends Failed here)."""
        self.faults.create_endpoint(name, config_name, tags)
        if self.state["memory"] < MEMORY_THE_MODEL_NEEDS_MB:
            self.faults.fail_creation(name, OUT_OF_MEMORY_FAILURE)
            self.events.append("endpoint failed")
            raise RuntimeError(
                f"waiting for SageMaker AI Endpoint ({name}) create: unexpected state 'Failed', "
                f"wanted target 'InService'. last error: {OUT_OF_MEMORY_FAILURE}"
            )
        self.events.append("endpoint created")

    def _run_check(self, inputs: dict[str, Any]) -> None:
        """The Command's create: the deploy check's real command line, in its directory."""
        environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        completed = subprocess.run(
            shlex.split(inputs["create"]),
            cwd=inputs["dir"],
            env=environment | FAKE_CREDENTIALS,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        self.events.append(f"check exit {completed.returncode}")
        if completed.returncode != 0:
            raise RuntimeError(completed.stderr)


@pytest.fixture
def story(aws: AwsEndpoint, tmp_path: Path) -> Iterator[tuple[SageMakerFaults, str, StoryMocks]]:
    stack = f"story{uuid.uuid4().hex[:8]}"
    faults = SageMakerFaults(aws)
    mocks = StoryMocks(aws, faults, {}, tmp_path)
    yield faults, stack, mocks
    faults.cleanup(f"embedding-endpoint-{stack}")
    for table, prefix in ((faults.backend.endpoint_configs, "embedding-config-"),
                          (faults.backend._models, "embedding-model-")):  # fmt: skip
        for name in [name for name in table if name.startswith(prefix)]:
            table.pop(name)


def _up(
    pulumi_program: Callable[..., ProgramRun],
    aws: AwsEndpoint,
    stack: str,
    mocks: StoryMocks,
    memory_mb: str,
) -> ProgramRun:
    config = stack_config(
        "dev", modelId=MODEL_ID, memorySizeMb=memory_mb, runtimeEndpointUrl=aws.url
    )
    config["aws:endpoints"] = json.dumps([{"sagemaker": aws.url}])
    return pulumi_program(config, stack=stack, mocks=mocks, raise_errors=False)


def test_too_big_for_its_memory_then_one_config_change_then_a_successful_deploy(
    pulumi_program: Callable[..., ProgramRun], aws: AwsEndpoint, story
) -> None:
    faults, stack, mocks = story
    endpoint = f"embedding-endpoint-{stack}"

    # 1. `pulumi up` with the default 2048 MB: warned about, then the endpoint fails to load.
    first = _up(pulumi_program, aws, stack, mocks, "2048")
    assert first.error is not None and OUT_OF_MEMORY_FAILURE in str(first.error)
    assert any("set memorySizeMb: 4096" in warning for warning in first.warnings)
    assert faults.endpoint(endpoint).endpoint_status == "Failed"
    assert mocks.events == ["guard create", "endpoint failed"]

    # 2. `pulumi config set embedding-endpoint:memorySizeMb 4096`, `pulumi up`: nothing else.
    mocks.events.clear()
    forget_sagemaker_results(aws)  # the smoke test's texts are fixed
    queue_sagemaker_results(
        aws,
        json.dumps({"embeddings": [[1.0, 0.0], [0.8, 0.6]], "model": MODEL_ID, "dimensions": 2}),
        json.dumps({"embeddings": [[0.0, 1.0]], "model": MODEL_ID, "dimensions": 2}),
    )
    second = _up(pulumi_program, aws, stack, mocks, "4096")
    assert second.error is None, second.error
    # The guard removed the failed endpoint: replaced, and the Endpoint with it.
    assert mocks.events[:2] == ["guard replace", "endpoint created"]
    # Both wait for the Endpoint alone: either may come first.
    assert sorted(mocks.events[2:]) == ["check exit 0", "record create"]
    live = faults.endpoint(endpoint)
    assert (live.endpoint_status, live.endpoint_config_name) == (
        "InService",
        second.outputs["endpointConfigName"],
    )
    assert not any("memorySizeMb" in warning for warning in second.warnings)
