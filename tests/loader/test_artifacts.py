"""Artifact records: manifest-backed idempotence and guarded deletion."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from loader.artifacts import delete_artifact
from loader.handler import handler
from tests.support.loader import TINY_MODEL_ID, hub_event, leftovers, tiny_repo


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
