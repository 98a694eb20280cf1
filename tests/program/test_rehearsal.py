"""Deploy rehearsal, no CLI: config → artifact → vectors, and the promotion flow.

The program (`__main__.py`) runs under Pulumi mocks with the `local` stack's config from
Pulumi.local.yaml, except that its emulator URL is the test's moto server. The mocks answer most
resources with names and ARNs, but two of them do their real work: the artifact bucket is created
in moto, and the packager's dynamic resource is handed to its own pickled provider, which runs
`check` and `create` in a fresh Python process started elsewhere (as Pulumi's provider host does):
it pins the revision on the Hub fixture and packages the model into moto S3 with the local runner.
The resulting archive is then served by the local endpoint and queried with `embed`.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import os
import runpy
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime import settings
from ruamel.yaml import YAML

from loader.version import format_version
from scripts import promote
from tests.fixtures.aws import AwsEndpoint
from tests.fixtures.hub import REFERENCE_COMMIT, REFERENCE_MODEL_ID, HubServer
from tests.fixtures.pulumi_mocks import (
    DYNAMIC_RESOURCE,
    PROGRAM,
    PROJECT,
    ProgramMocks,
    RecordingMonitor,
)
from tests.support.provider_host import run_provider

ROOT = Path(__file__).resolve().parents[2]
LOCAL_CONFIG = ROOT / "Pulumi.local.yaml"
SERVE_TIMEOUT_S = 300


def bucket_name(run_id: str) -> str:
    return f"rehearsal-{run_id}"


class RehearsalMocks(ProgramMocks):
    """ProgramMocks whose bucket exists in moto and whose packager really packages."""

    def __init__(self, region: str, aws: AwsEndpoint, work_dir: Path, run_id: str) -> None:
        super().__init__(region)
        self.aws = aws
        self.work_dir = work_dir
        self.run_id = run_id
        self.buckets: list[str] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        if args.typ == "aws:s3/bucket:Bucket":
            name = bucket_name(self.run_id)
            self.aws.client("s3").create_bucket(Bucket=name)
            self.buckets.append(name)
            return name, dict(args.inputs) | {"bucket": name, "arn": f"arn:aws:s3:::{name}"}
        # The endpoint record reads an endpoint these mocks never create in moto (its own
        # tests play it: tests/components/test_endpoint_record.py).
        if args.typ == DYNAMIC_RESOURCE and not args.name.endswith("-record"):
            return self._run_provider(dict(args.inputs))
        return super().new_resource(args)

    def _run_provider(self, inputs: dict[str, Any]) -> tuple[str, dict]:
        created = run_provider(inputs, self.work_dir)
        return created["id"], created["outs"]


@dataclass
class Deployment:
    outputs: dict[str, Any]
    mocks: RehearsalMocks


def local_stack_config(emulator_url: str, overrides: Mapping[str, str] = ()) -> dict[str, str]:
    """Pulumi.local.yaml as `set_all_config` wants it, with the emulator at `emulator_url`."""
    raw = YAML(typ="safe").load(LOCAL_CONFIG.read_text())["config"]
    config: dict[str, str] = {}
    for key, value in raw.items():
        if key == "aws:endpoints":
            value = json.dumps([{service: emulator_url for service in entry} for entry in value])
        elif isinstance(value, bool):
            value = "true" if value else "false"
        config[key] = str(value)
    config.update(overrides)
    return config


def deploy(
    config: Mapping[str, str], aws: AwsEndpoint, work_dir: Path, run_id: str | None = None
) -> Deployment:
    """Run `__main__.py` once for the local stack under RehearsalMocks (bucket per `run_id`)."""
    mocks = RehearsalMocks(config["aws:region"], aws, work_dir, run_id or uuid.uuid4().hex[:12])
    settings.ROOT.set(None)
    pulumi.runtime.set_all_config(dict(config), [])
    pulumi.runtime.set_mocks(
        mocks, project=PROJECT, stack="local", preview=False, monitor=RecordingMonitor(mocks)
    )
    outputs: dict[str, Any] = {}

    @pulumi.runtime.test
    def run() -> pulumi.Output[Any]:
        runpy.run_path(str(PROGRAM), run_name="__main__")
        root = settings.get_root_resource()
        return pulumi.Output.from_input(dict(root.outputs)).apply(outputs.update)

    try:
        run()
    finally:
        pulumi.runtime.set_all_config({}, [])
    return Deployment(outputs, mocks)


def _retrieve_expected_failures(marker: str) -> None:
    """Mark the failed run's futures as retrieved (the failure is what the test expects).

    Pulumi's mock runtime sets the provider's exception on every output future of the resource;
    nothing awaits them once the run has failed, so asyncio would log each one as "never
    retrieved" whenever a later test resets the runtime and they are collected.
    """
    for candidate in gc.get_objects():
        if not isinstance(candidate, asyncio.Future) or not candidate.done():
            continue
        # Peek without retrieving, so that other tests' unexpected failures still get logged.
        error = getattr(candidate, "_exception", None)
        if error is not None and marker in str(error):
            candidate.exception()


def _empty_bucket(aws: AwsEndpoint, bucket: str) -> None:
    s3 = aws.client("s3")
    for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(Bucket=bucket, Key=item["Key"], VersionId=item["VersionId"])
    s3.delete_bucket(Bucket=bucket)


@pytest.fixture(scope="module")
def rehearsal_env(moto_server: AwsEndpoint, hub_server: HubServer) -> Iterator[AwsEndpoint]:
    """Fake AWS credentials and the Hub fixture for this module (module scope: one packaging)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("AWS_ACCESS_KEY_ID", "testing")
    patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    patch.setenv("AWS_DEFAULT_REGION", moto_server.region)
    patch.delenv("AWS_PROFILE", raising=False)
    patch.delenv("AWS_ENDPOINT_URL", raising=False)  # the stack's aws:endpoints must suffice
    patch.setenv("HF_ENDPOINT", hub_server.url)
    patch.delenv("HF_TOKEN", raising=False)
    hub_server.reset()
    try:
        yield moto_server
    finally:
        patch.undo()


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rehearsal")


@pytest.fixture(scope="module")
def local_deployment(rehearsal_env: AwsEndpoint, work_dir: Path) -> Iterator[Deployment]:
    deployment = deploy(local_stack_config(rehearsal_env.url), rehearsal_env, work_dir)
    try:
        yield deployment
    finally:
        for bucket in deployment.mocks.buckets:
            _empty_bucket(rehearsal_env, bucket)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def local_endpoint(
    local_deployment: Deployment, rehearsal_env: AwsEndpoint, work_dir: Path
) -> Iterator[str]:
    """The packaged archive served by `python -m embedding_client serve s3://…`."""
    port = _free_port()
    env = dict(os.environ, AWS_ENDPOINT_URL=rehearsal_env.url)
    log = (work_dir / "serve.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "embedding_client",
            "serve",
            local_deployment.outputs["modelDataUrl"],
        ]
        + ["--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVE_TIMEOUT_S
        while True:
            if server.poll() is not None:
                raise AssertionError(
                    f"serve exited: {(work_dir / 'serve.log').read_text()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("local endpoint did not answer /ping in time")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)
        log.close()


# --- config → artifact ---------------------------------------------------------------------------


def test_local_stack_pins_the_hub_revision(local_deployment: Deployment) -> None:
    assert local_deployment.outputs["modelId"] == REFERENCE_MODEL_ID
    assert local_deployment.outputs["modelRevision"] == REFERENCE_COMMIT


def test_local_stack_packages_the_archive_into_the_emulator(
    local_deployment: Deployment, rehearsal_env: AwsEndpoint
) -> None:
    url = local_deployment.outputs["modelDataUrl"]
    bucket, key = url.removeprefix("s3://").split("/", 1)
    assert key == f"models/{REFERENCE_MODEL_ID}/{REFERENCE_COMMIT}/{format_version()}/model.tar.gz"
    body = rehearsal_env.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == local_deployment.outputs["artifactSha256"]


def test_local_stack_exports_what_clients_and_promotion_read(local_deployment: Deployment) -> None:
    outputs = local_deployment.outputs
    for key in ("endpointName", "bucketName", "modelDataUrl", "region", "backend"):
        assert outputs.get(key), key
    assert outputs["backend"] == "sagemaker"


# --- artifact → vectors --------------------------------------------------------------------------


def test_served_artifact_passes_the_smoke_test(local_endpoint: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "embedding_client.smoke", "--url", local_endpoint]
        + ["--expected-dimensions", "384"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["dimensions"] == 384


def test_embed_returns_vectors_from_the_served_artifact(local_endpoint: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "embedding_client.embed", "--url", local_endpoint]
        + ["--json", "a first sentence", "a second one"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["model"] == REFERENCE_MODEL_ID
    assert answer["dimensions"] == 384
    assert [len(vector) for vector in answer["embeddings"]] == [384, 384]


# --- promotion -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def promoted_config(local_deployment: Deployment, rehearsal_env: AwsEndpoint, work_dir: Path):
    """The local config after `promote --from local --to target`, as the program reads it."""
    config_dir = work_dir / "promotion"
    config_dir.mkdir()
    (config_dir / "Pulumi.target.yaml").write_text(LOCAL_CONFIG.read_text())
    target_file, diff = promote.promote(
        "local", "target", config_dir=config_dir, outputs=local_deployment.outputs
    )
    assert "expectedArtifactSha256" in diff
    raw = YAML(typ="safe").load(target_file.read_text())["config"]
    return local_stack_config(rehearsal_env.url) | {
        key: str(value) for key, value in raw.items() if key.startswith("embedding-endpoint:")
    }


def test_promoted_config_rebuilds_the_identical_artifact(
    promoted_config: dict[str, str],
    local_deployment: Deployment,
    rehearsal_env: AwsEndpoint,
    work_dir: Path,
) -> None:
    promoted = deploy(promoted_config, rehearsal_env, work_dir)
    try:
        assert promoted.outputs["artifactSha256"] == local_deployment.outputs["artifactSha256"]
        assert promoted.outputs["modelRevision"] == REFERENCE_COMMIT
    finally:
        for bucket in promoted.mocks.buckets:
            _empty_bucket(rehearsal_env, bucket)


def test_wrong_expected_sha_fails_the_deploy_and_leaves_nothing_at_the_key(
    promoted_config: dict[str, str], rehearsal_env: AwsEndpoint, work_dir: Path
) -> None:
    wrong = "0" * 64
    config = promoted_config | {"embedding-endpoint:expectedArtifactSha256": wrong}
    run_id = uuid.uuid4().hex[:12]
    s3 = rehearsal_env.client("s3")
    try:
        with pytest.raises(Exception, match=wrong):
            deploy(config, rehearsal_env, work_dir, run_id=run_id)
        _retrieve_expected_failures(wrong)
        bucket = bucket_name(run_id)
        prefix = f"models/{REFERENCE_MODEL_ID}/{REFERENCE_COMMIT}/"
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        assert [item["Key"] for item in listed if item["Key"].endswith("model.tar.gz")] == []
        assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    finally:
        _empty_bucket(rehearsal_env, bucket_name(run_id))
