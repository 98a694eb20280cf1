"""ModelArtifactBucket under mocks: private, encrypted, versioned, TLS-only, retained or not."""

from __future__ import annotations

import json
from collections.abc import Callable

import pulumi
import pytest

from components.artifact_bucket import ModelArtifactBucket, ModelArtifactBucketArgs
from tests.fixtures.pulumi_mocks import ProgramRun

BUCKET = "aws:s3/bucket:Bucket"


def _bucket_program(retain: bool) -> Callable[[], None]:
    def program() -> None:
        bucket = ModelArtifactBucket(
            "artifacts", ModelArtifactBucketArgs(retain=retain, tags=(("stack", "dev"),))
        )
        pulumi.export("bucketName", bucket.bucket_name)
        pulumi.export("bucketArn", bucket.bucket_arn)

    return program


@pytest.fixture
def destroyable(pulumi_program: Callable[..., ProgramRun]) -> ProgramRun:
    return pulumi_program({"aws:region": "us-east-1"}, program=_bucket_program(retain=False))


@pytest.fixture
def retained(pulumi_program: Callable[..., ProgramRun]) -> ProgramRun:
    return pulumi_program({"aws:region": "us-east-1"}, program=_bucket_program(retain=True))


def _attached(run: ProgramRun, typ: str) -> dict:
    """The inputs of the one `typ` resource, after checking it targets the bucket."""
    resource = run.one(typ)
    assert resource.inputs["bucket"] == run.outputs["bucketName"], f"{typ} is not on the bucket"
    return resource.inputs


def test_public_access_is_fully_blocked(destroyable: ProgramRun) -> None:
    block = _attached(destroyable, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert block["blockPublicAcls"] is True
    assert block["blockPublicPolicy"] is True
    assert block["ignorePublicAcls"] is True
    assert block["restrictPublicBuckets"] is True


def test_objects_are_encrypted_at_rest(destroyable: ProgramRun) -> None:
    encryption = _attached(
        destroyable,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    )
    (rule,) = encryption["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"


def test_versioning_is_enabled(destroyable: ProgramRun) -> None:
    versioning = _attached(destroyable, "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning["versioningConfiguration"] == {"status": "Enabled"}


def test_bucket_policy_denies_requests_without_tls(destroyable: ProgramRun) -> None:
    policy = json.loads(_attached(destroyable, "aws:s3/bucketPolicy:BucketPolicy")["policy"])
    (statement,) = policy["Statement"]
    arn = destroyable.outputs["bucketArn"]
    assert statement["Effect"] == "Deny"
    assert statement["Resource"] == [arn, f"{arn}/*"]
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_abandoned_multipart_uploads_are_cleaned_up(destroyable: ProgramRun) -> None:
    lifecycle = _attached(
        destroyable, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
    )
    (rule,) = lifecycle["rules"]
    assert rule["status"] == "Enabled"
    assert rule["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 1}


def test_bucket_name_is_auto_named_so_stacks_never_collide(destroyable: ProgramRun) -> None:
    bucket = destroyable.one(BUCKET)
    assert "bucket" not in bucket.inputs
    assert "bucketPrefix" not in bucket.inputs


def test_destroyable_bucket_is_force_destroyed_and_unprotected(destroyable: ProgramRun) -> None:
    bucket = destroyable.one(BUCKET)
    assert bucket.inputs["forceDestroy"] is True
    assert not bucket.protect
    assert not bucket.retain_on_delete


def test_retained_bucket_is_protected_kept_on_delete_and_never_force_emptied(
    retained: ProgramRun,
) -> None:
    bucket = retained.one(BUCKET)
    assert bucket.inputs["forceDestroy"] is False
    assert bucket.protect
    assert bucket.retain_on_delete


def test_retained_bucket_keeps_its_settings_on_delete(retained: ProgramRun) -> None:
    for resource in retained.resources:
        if resource.custom:
            assert resource.protect, f"{resource.name} is not protected"
            assert resource.retain_on_delete, f"{resource.name} would be deleted"


def test_destroyable_bucket_settings_are_deleted_with_it(destroyable: ProgramRun) -> None:
    for resource in destroyable.resources:
        assert not resource.protect and not resource.retain_on_delete, resource.name


def test_tls_policy_waits_for_the_public_access_block(destroyable: ProgramRun) -> None:
    policy = destroyable.one("aws:s3/bucketPolicy:BucketPolicy")
    block = destroyable.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert block.urn in policy.dependencies


def test_every_child_is_parented_to_the_component(destroyable: ProgramRun) -> None:
    (component,) = [r for r in destroyable.resources if not r.custom]
    for resource in destroyable.resources:
        if resource.custom:
            assert resource.parent == component.urn, f"{resource.name} is not under the component"
