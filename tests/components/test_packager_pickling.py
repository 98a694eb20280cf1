"""The provider survives Pulumi's serialization into a process that cannot import this project.

The serialized provider is the `__provider` property HfModelPackager's `pulumi.dynamic.Resource`
registers (dill, recurse=True, base64, under Pulumi mocks) and is loaded as the provider process
does (`dill.loads(base64.b64decode(...))`), in a fresh interpreter started from another directory
with no PYTHONPATH — where `import components` fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pulumi.runtime import rpc

from loader.version import format_version
from tests.fixtures.aws import FAKE_CREDENTIALS, AwsEndpoint
from tests.fixtures.hub import HubServer
from tests.support.packager import (
    TINY_COMMIT,
    TINY_MODEL_ID,
    register_tiny,
    registered_provider,
    resource_inputs,
)

SHA = "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"

# Runs in the child: prove the project is not importable, then load and call the provider.
CHILD = """
import base64, importlib.util, json, sys
import dill

assert importlib.util.find_spec("components") is None, "the project leaked onto sys.path"
provider = dill.loads(base64.b64decode(sys.stdin.read()))
request = json.loads(sys.argv[1])
operation = request["operation"]
if operation == "diff":
    result = provider.diff("id", request["olds"], request["news"])
    answer = {"changes": result.changes, "replaces": result.replaces}
elif operation == "check":
    result = provider.check(request["olds"], request["news"])
    answer = {"inputs": result.inputs, "failures": [f.reason for f in result.failures]}
else:
    result = provider.create(request["news"])
    answer = {"id": result.id, "outs": result.outs}
print(json.dumps(answer))
"""


@pytest.fixture(scope="module")
def serialized_provider() -> str:
    """The `__provider` value HfModelPackager's dynamic resource registers with the engine."""

    wrapped = registered_provider()
    assert wrapped[rpc._special_sig_key] == rpc._special_secret_sig  # always stored as a secret
    return wrapped["value"]


def run_in_clean_process(
    serialized: str, tmp_path: Path, request: dict, extra_env: dict[str, str] | None = None
) -> dict:
    # No PYTHONPATH, and S3 only through the stack's `aws_endpoints` input.
    dropped = ("PYTHONPATH", "AWS_ENDPOINT_URL")
    environment = {k: v for k, v in os.environ.items() if k not in dropped}
    environment.update(extra_env or {})
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(request)],
        input=serialized,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_unpickled_provider_diffs_in_a_process_without_the_project(
    serialized_provider: str, tmp_path: Path
) -> None:
    olds = {"model_id": "org/model", "pinned_revision": SHA, "bucket": "b", "key_prefix": "m/"}
    news = olds | {"pinned_revision": "0" * 40}
    request = {"operation": "diff", "olds": olds, "news": news}
    answer = run_in_clean_process(serialized_provider, tmp_path, request)
    assert answer == {"changes": True, "replaces": ["pinned_revision"]}


def test_unpickled_provider_checks_a_sha_revision_in_a_process_without_the_project(
    serialized_provider: str, tmp_path: Path, hub: HubServer
) -> None:
    # The check reads the commit's config.json (is the model its repository's own code?).
    register_tiny(hub)
    news = {"model_id": TINY_MODEL_ID, "requested_revision": TINY_COMMIT, "runner": "local"}
    request = {"operation": "check", "olds": {}, "news": news}
    answer = run_in_clean_process(serialized_provider, tmp_path, request, {"HF_ENDPOINT": hub.url})
    assert answer["inputs"]["pinned_revision"] == TINY_COMMIT
    assert answer["failures"] == []


@pytest.mark.usefixtures("aws")
def test_unpickled_provider_packages_in_a_process_without_the_project(
    serialized_provider: str,
    tmp_path: Path,
    hub: HubServer,
    moto_server: AwsEndpoint,
    s3_bucket: str,
) -> None:
    register_tiny(hub)
    news = resource_inputs(
        s3_bucket, requested_revision=TINY_COMMIT, aws_endpoints={"s3": moto_server.url}
    ) | {"pinned_revision": TINY_COMMIT}
    environment = FAKE_CREDENTIALS | {"HF_ENDPOINT": hub.url}
    request = {"operation": "create", "news": news}
    answer = run_in_clean_process(serialized_provider, tmp_path, request, environment)
    folder = f"models/test-org/tiny-embedder/{TINY_COMMIT}/{format_version()}"
    assert answer["id"] == f"s3://{s3_bucket}/{folder}/model.tar.gz"
    assert len(answer["outs"]["sha256"]) == 64
