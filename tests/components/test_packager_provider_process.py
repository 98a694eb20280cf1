"""The provider inside Pulumi's real dynamic-provider process, spoken to over gRPC like the engine.

`python -m pulumi.dynamic` (what the engine launches) runs from another directory with no
PYTHONPATH; the requests carry the `__provider` the component registered. This covers what the
unit tests cannot: the servicer's (de)serialization of inputs and outputs, `ReadResult`s with an
empty id, and the provider loading the project itself.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from tests.fixtures.aws import FAKE_CREDENTIALS, AwsEndpoint
from tests.fixtures.hub import HubServer
from tests.support.packager import (
    TINY_COMMIT,
    object_keys,
    register_tiny,
    registered_provider,
    resource_inputs,
)

URN = "urn:pulumi:dev::embedding-endpoint::pulumi-python:dynamic:Resource::model-artifact"


def to_struct(properties: dict[str, Any]):
    return asyncio.new_event_loop().run_until_complete(rpc.serialize_properties(properties, {}))


def from_struct(struct) -> dict[str, Any]:
    return dict(rpc.deserialize_properties(struct))


class ProviderProcess:
    """One `python -m pulumi.dynamic` process and a gRPC stub to it."""

    def __init__(self, workdir: Path, environment: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pulumi.dynamic"],
            cwd=workdir,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        port = int(self.process.stdout.readline().strip())  # the servicer prints its port
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)
        self.serialized_provider = registered_provider()["value"]

    def _props(self, properties: dict[str, Any]):
        return to_struct(properties | {"__provider": self.serialized_provider})

    def check(self, olds: dict, news: dict) -> provider_pb2.CheckResponse:
        request = provider_pb2.CheckRequest(urn=URN, olds=self._props(olds), news=self._props(news))
        return self.stub.Check(request, timeout=60)

    def create(self, inputs: dict) -> tuple[str, dict]:
        request = provider_pb2.CreateRequest(urn=URN, properties=self._props(inputs))
        response = self.stub.Create(request, timeout=300)
        return response.id, from_struct(response.properties)

    def diff(self, resource_id: str, olds: dict, news: dict) -> provider_pb2.DiffResponse:
        request = provider_pb2.DiffRequest(
            id=resource_id, urn=URN, olds=self._props(olds), news=self._props(news)
        )
        return self.stub.Diff(request, timeout=60)

    def read(self, resource_id: str, outputs: dict) -> provider_pb2.ReadResponse:
        request = provider_pb2.ReadRequest(id=resource_id, urn=URN, properties=self._props(outputs))
        return self.stub.Read(request, timeout=60)

    def delete(self, resource_id: str, outputs: dict) -> None:
        request = provider_pb2.DeleteRequest(
            id=resource_id, urn=URN, properties=self._props(outputs)
        )
        self.stub.Delete(request, timeout=60)

    def stop(self) -> None:
        self.channel.close()
        self.process.terminate()
        self.process.wait(timeout=30)
        self.process.stdout.close()
        self.process.stderr.close()


@pytest.fixture(scope="module")
def provider_process(
    tmp_path_factory: pytest.TempPathFactory, moto_server: AwsEndpoint, hub_server: HubServer
) -> Iterator[ProviderProcess]:
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "AWS_ENDPOINT_URL", "AWS_PROFILE", "HF_TOKEN")
    }
    environment |= FAKE_CREDENTIALS | {"HF_ENDPOINT": hub_server.url}
    process = ProviderProcess(tmp_path_factory.mktemp("provider-cwd"), environment)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def tiny(hub: HubServer) -> HubServer:
    register_tiny(hub)
    return hub


def test_provider_process_pins_packages_reads_and_deletes(
    provider_process: ProviderProcess, tiny, aws: AwsEndpoint, s3_bucket: str
) -> None:
    news = resource_inputs(s3_bucket, aws_endpoints={"s3": aws.url})
    checked = provider_process.check({}, news)
    assert list(checked.failures) == []
    inputs = from_struct(checked.inputs)
    assert inputs["pinned_revision"] == TINY_COMMIT

    resource_id, outputs = provider_process.create(inputs)
    assert resource_id == outputs["model_data_url"]
    assert outputs["revision"] == TINY_COMMIT
    assert len(object_keys(aws.client("s3"), s3_bucket)) == 2

    diff = provider_process.diff(resource_id, outputs, inputs)
    assert diff.changes == provider_pb2.DiffResponse.DIFF_NONE

    assert provider_process.read(resource_id, outputs).id == resource_id
    provider_process.delete(resource_id, outputs)
    assert object_keys(aws.client("s3"), s3_bucket) == []
    assert provider_process.read(resource_id, outputs).id == ""


def test_provider_process_reports_a_loader_failure_with_its_message(
    provider_process: ProviderProcess, hub: HubServer, aws: AwsEndpoint, s3_bucket: str
) -> None:
    news = resource_inputs(s3_bucket, model_id="nobody/missing-model", requested_revision="main")
    checked = provider_process.check({}, news)
    assert [f.property for f in checked.failures] == ["requested_revision"]
    assert "nobody/missing-model" in checked.failures[0].reason
    inputs = from_struct(checked.inputs) | {"requested_revision": TINY_COMMIT}
    with pytest.raises(grpc.RpcError) as failure:
        provider_process.create(inputs | {"aws_endpoints": {"s3": aws.url}})
    assert "nobody/missing-model" in failure.value.details()
    assert object_keys(aws.client("s3"), s3_bucket) == []
