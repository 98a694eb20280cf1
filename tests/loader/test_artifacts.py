"""Artifact records: manifest-backed idempotence and guarded deletion."""

from __future__ import annotations

import json
import shutil

import pytest
from botocore.exceptions import ClientError

from loader.artifacts import delete_artifact
from loader.errors import ChecksumMismatch
from loader.handler import handler
from tests.support.loader import TINY_MODEL_ID, hub_event, leftovers, read_object, tiny_repo


def artifact_exists(s3, model_data_url: str) -> bool:
    bucket, key = model_data_url.removeprefix("s3://").split("/", 1)
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError:
        return False
    return True


@pytest.fixture
def built(hub, aws, s3_bucket):
    hub.register(tiny_repo())
    return handler(hub_event(s3_bucket, model_id=TINY_MODEL_ID), None)


def test_built_artifact_exists(built, aws):
    assert artifact_exists(aws.client("s3"), built["model_data_url"])


def test_delete_removes_archive_and_manifest(built, aws, s3_bucket):
    s3 = aws.client("s3")
    assert delete_artifact(s3, built["model_data_url"]) is True
    assert leftovers(s3, s3_bucket) == ([], [])
    assert not artifact_exists(s3, built["model_data_url"])


def test_delete_of_a_missing_artifact_reports_false(aws, s3_bucket):
    assert delete_artifact(aws.client("s3"), f"s3://{s3_bucket}/m/x/model.tar.gz") is False


def test_guarded_delete_keeps_an_artifact_rebuilt_with_another_sha256(built, aws, s3_bucket):
    s3 = aws.client("s3")
    assert delete_artifact(s3, built["model_data_url"], only_if_sha256="0" * 64) is False
    assert artifact_exists(s3, built["model_data_url"])
    assert delete_artifact(s3, built["model_data_url"], only_if_sha256=built["sha256"]) is True


def test_object_replaced_out_of_band_is_rebuilt_on_rerun(built, hub, aws, s3_bucket):
    s3 = aws.client("s3")
    key = built["model_data_url"].split("/", 3)[3]
    s3.put_object(Bucket=s3_bucket, Key=key, Body=b"truncated")
    rebuilt = handler(hub_event(s3_bucket, model_id=TINY_MODEL_ID), None)
    assert rebuilt == built
    assert len(s3.get_object(Bucket=s3_bucket, Key=key)["Body"].read()) == built["size_bytes"]


def test_object_deleted_out_of_band_is_rebuilt_on_rerun(built, hub, aws, s3_bucket):
    s3 = aws.client("s3")
    s3.delete_object(Bucket=s3_bucket, Key=built["model_data_url"].split("/", 3)[3])
    assert handler(hub_event(s3_bucket, model_id=TINY_MODEL_ID), None) == built
    assert artifact_exists(s3, built["model_data_url"])


@pytest.fixture
def other_container_code(tmp_path, monkeypatch):
    """The container's code with one comment appended to inference.py, as an upgrade would ship."""
    from loader import version

    copy = tmp_path / "container"
    shutil.copytree(version.CONTAINER_DIR, copy)
    with (copy / version.ENTRY_SCRIPT).open("a") as script:
        script.write("# one more comment\n")
    version.format_version.cache_clear()
    monkeypatch.setattr(version, "CONTAINER_DIR", copy)
    yield
    version.format_version.cache_clear()


def test_a_build_with_other_code_gets_its_own_key_and_leaves_the_first_bytes(
    built, aws, s3_bucket, other_container_code
):
    s3 = aws.client("s3")
    first_bytes = read_object(s3, built["model_data_url"])
    upgraded = handler(hub_event(s3_bucket, model_id=TINY_MODEL_ID), None)
    assert upgraded["format_version"] != built["format_version"]
    assert upgraded["model_data_url"] != built["model_data_url"]
    assert upgraded["sha256"] != built["sha256"]
    assert read_object(s3, built["model_data_url"]) == first_bytes


def test_a_key_whose_manifest_records_other_bytes_is_never_rewritten(built, aws, s3_bucket):
    s3 = aws.client("s3")
    key = built["model_data_url"].split("/", 3)[3]
    manifest_key = key.rsplit("/", 1)[0] + "/manifest.json"
    manifest = json.loads(s3.get_object(Bucket=s3_bucket, Key=manifest_key)["Body"].read())
    s3.put_object(
        Bucket=s3_bucket, Key=manifest_key, Body=json.dumps(manifest | {"sha256": "0" * 64})
    )
    s3.put_object(Bucket=s3_bucket, Key=key, Body=b"replaced out of band")
    with pytest.raises(ChecksumMismatch, match="verify-immutable-key.*never rewritten"):
        handler(hub_event(s3_bucket, model_id=TINY_MODEL_ID), None)
    assert s3.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == b"replaced out of band"
