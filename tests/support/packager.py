"""Shared helpers for the packager provider tests: a tiny Hub repo and resource inputs."""

from __future__ import annotations

import json
from typing import Any

from tests.fixtures.hub import HubRepo, HubServer, make_repo

TINY_MODEL_ID = "test-org/tiny-embedder"
TINY_COMMIT = "1111111111111111111111111111111111111111"
NEWER_COMMIT = "2222222222222222222222222222222222222222"


def tiny_repo(commit: str = TINY_COMMIT, *, gated: bool = False, private: bool = False) -> HubRepo:
    """A small but complete repo (config, tokenizer, safetensors) so each packaging run is fast."""
    files = {
        "config.json": json.dumps({"model_type": "bert", "hidden_size": 8}).encode(),
        "tokenizer.json": json.dumps({"version": "1.0"}).encode(),
        "model.safetensors": bytes(range(256)) * 64,
        "model.onnx": b"onnx duplicate, never packaged",
    }
    return make_repo(TINY_MODEL_ID, files, commit=commit, gated=gated, private=private)


def register_tiny(
    hub: HubServer, commit: str = TINY_COMMIT, *, gated: bool = False, private: bool = False
) -> HubRepo:
    return hub.register(tiny_repo(commit, gated=gated, private=private))


def resource_inputs(bucket: str, **overrides: Any) -> dict[str, Any]:
    """The dynamic resource's inputs as HfModelPackager declares them (before `check`)."""
    from loader.version import format_version

    base: dict[str, Any] = {
        "model_id": TINY_MODEL_ID,
        "requested_revision": "main",
        "bucket": bucket,
        "key_prefix": "models/",
        "source_model_data_url": None,
        "expected_sha256": None,
        "retain_artifacts": False,
        "runner": "local",
        "region": "us-east-1",
        "aws_endpoints": {},
        "function_name": None,
        "hf_token": None,
        "hf_token_secret_arn": None,
        "format_version": format_version(),
        "local_timeout_seconds": 300,
    }
    return base | overrides


def registered_provider() -> dict[str, Any]:
    """The `__provider` input HfModelPackager's dynamic resource registers with the engine.

    Pulumi wraps it as a secret: `{sig: secret, "value": <base64 dill pickle>}`.
    """
    from components.packager import HfModelPackager, HfModelPackagerArgs
    from deploy_account.session import AwsSettings
    from tests.fixtures.pulumi_mocks import DYNAMIC_RESOURCE, run_program

    def program() -> None:
        HfModelPackager(
            "model",
            HfModelPackagerArgs(
                bucket_name="artifacts-bucket",
                bucket_arn="arn:aws:s3:::artifacts-bucket",
                model_id="org/model",
                revision="main",
                runner="local",
                aws=AwsSettings(region="us-east-1"),
            ),
        )

    registered = run_program({"aws:region": "us-east-1"}, program=program)
    return registered.one(DYNAMIC_RESOURCE).inputs["__provider"]


def object_keys(s3: Any, bucket: str) -> list[str]:
    return sorted(item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
