"""The dynamic provider with runner `local`: real boto3 against moto, real huggingface_hub against
the Hub fixture, the real loader in-process. Calls go through the pickled shell's methods."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator

import pytest

from components.packager_provider import PackagerProvider
from components.packaging_runs import PackagingError
from loader.version import format_version
from tests.fixtures.aws import AwsEndpoint
from tests.fixtures.hub import VALID_TOKEN, HubServer
from tests.support.packager import (
    NEWER_COMMIT,
    TINY_COMMIT,
    TINY_MODEL_ID,
    object_keys,
    register_tiny,
    resource_inputs,
)

# A closed port: any Hub request made while it is set fails loudly.
UNREACHABLE_HUB = "http://127.0.0.1:9"


@pytest.fixture
def provider() -> PackagerProvider:
    return PackagerProvider()


@pytest.fixture
def tiny(hub: HubServer) -> HubServer:
    register_tiny(hub)
    return hub


def deploy(provider: PackagerProvider, bucket: str, **overrides: object) -> tuple[str, dict]:
    """check then create, as `pulumi up` does for a new resource; returns (id, outputs)."""
    checked = provider.check({}, resource_inputs(bucket, **overrides))
    assert checked.failures == [], [f.reason for f in checked.failures]
    created = provider.create(checked.inputs)
    return created.id, created.outs


# --- check: pinning ------------------------------------------------------------------------------


def test_check_pins_a_branch_to_the_hubs_commit(provider, tiny, s3_bucket) -> None:
    checked = provider.check({}, resource_inputs(s3_bucket))
    assert checked.inputs["pinned_revision"] == TINY_COMMIT


def test_check_keeps_the_old_pin_after_upstream_moves_main(provider, tiny, s3_bucket) -> None:
    first = provider.check({}, resource_inputs(s3_bucket)).inputs
    register_tiny(tiny, NEWER_COMMIT)
    again = provider.check(first, resource_inputs(s3_bucket))
    assert again.inputs["pinned_revision"] == TINY_COMMIT


def test_check_repins_when_the_requested_revision_changes(provider, tiny, s3_bucket) -> None:
    first = provider.check({}, resource_inputs(s3_bucket)).inputs
    register_tiny(tiny, NEWER_COMMIT)
    changed = provider.check(first, resource_inputs(s3_bucket, requested_revision=NEWER_COMMIT))
    assert changed.inputs["pinned_revision"] == NEWER_COMMIT


def test_check_pins_a_sha_as_given_and_reads_only_that_commit(provider, hub, s3_bucket) -> None:
    # Nothing resolves the sha; the commit's config.json is read (is it the repo's own code?).
    register_tiny(hub)
    checked = provider.check({}, resource_inputs(s3_bucket, requested_revision=TINY_COMMIT))
    assert (checked.inputs["pinned_revision"], checked.failures) == (TINY_COMMIT, [])
    assert hub.switches.requests
    assert all(TINY_COMMIT in path for _, path in hub.switches.requests)


def test_check_reports_a_missing_repo_on_the_revision(provider, hub, s3_bucket) -> None:
    checked = provider.check({}, resource_inputs(s3_bucket, model_id="nobody/missing-model"))
    assert [f.property for f in checked.failures] == ["requested_revision"]
    assert "nobody/missing-model" in checked.failures[0].reason
    assert "not found" in checked.failures[0].reason


def test_check_reports_a_missing_revision(provider, tiny, s3_bucket) -> None:
    checked = provider.check({}, resource_inputs(s3_bucket, requested_revision="v9.9"))
    assert "revision 'v9.9' not found" in checked.failures[0].reason


def test_check_reports_a_gated_repo_without_token(provider, hub, s3_bucket) -> None:
    register_tiny(hub, gated=True)
    checked = provider.check({}, resource_inputs(s3_bucket))
    assert [f.property for f in checked.failures] == ["hf_token"]
    assert "gated" in checked.failures[0].reason


def test_check_resolves_a_gated_repo_with_a_token(provider, hub, s3_bucket) -> None:
    register_tiny(hub, gated=True)
    checked = provider.check({}, resource_inputs(s3_bucket, hf_token=VALID_TOKEN))
    assert (checked.inputs["pinned_revision"], checked.failures) == (TINY_COMMIT, [])


def test_check_rejects_an_unknown_runner(provider, s3_bucket) -> None:
    checked = provider.check(
        {}, resource_inputs(s3_bucket, runner="docker", requested_revision=TINY_COMMIT)
    )
    assert [f.property for f in checked.failures] == ["runner"]


# --- create ---------------------------------------------------------------------------------------


def test_create_writes_an_artifact_whose_sha256_matches_its_bytes(
    provider, tiny, aws: AwsEndpoint, s3_bucket
) -> None:
    resource_id, outs = deploy(provider, s3_bucket)
    key = f"models/{TINY_MODEL_ID}/{TINY_COMMIT}/{format_version()}/model.tar.gz"
    body = aws.client("s3").get_object(Bucket=s3_bucket, Key=key)["Body"].read()
    assert resource_id == outs["model_data_url"] == f"s3://{s3_bucket}/{key}"
    assert outs["sha256"] == hashlib.sha256(body).hexdigest()
    assert (outs["revision"], outs["pinned_revision"]) == (TINY_COMMIT, TINY_COMMIT)


def test_create_keeps_the_token_out_of_the_outputs(provider, hub, s3_bucket) -> None:
    register_tiny(hub, gated=True)
    _, outs = deploy(provider, s3_bucket, hf_token=VALID_TOKEN)
    assert "hf_token" not in outs
    assert VALID_TOKEN not in repr(outs)


def test_create_reaches_s3_through_the_stack_endpoints_and_restores_the_environment(
    provider, tiny, aws: AwsEndpoint, s3_bucket, monkeypatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    _, outs = deploy(provider, s3_bucket, aws_endpoints={"s3": aws.url})
    assert outs["model_data_url"].startswith(f"s3://{s3_bucket}/")
    assert "AWS_ENDPOINT_URL_S3" not in os.environ


def test_create_failure_carries_the_loaders_message_and_leaves_nothing(
    provider, hub, aws: AwsEndpoint, s3_bucket
) -> None:
    register_tiny(hub, gated=True)
    inputs = resource_inputs(s3_bucket, requested_revision=TINY_COMMIT)
    checked = provider.check({}, inputs).inputs
    with pytest.raises(PackagingError, match="gated") as failure:
        provider.create(checked)
    assert TINY_MODEL_ID in str(failure.value)
    s3 = aws.client("s3")
    assert object_keys(s3, s3_bucket) == []
    assert s3.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_second_up_with_unchanged_inputs_does_no_packaging_work(provider, tiny, s3_bucket) -> None:
    first_inputs = provider.check({}, resource_inputs(s3_bucket)).inputs
    outs = provider.create(first_inputs).outs
    requests_before = len(tiny.switches.requests)
    checked = provider.check(first_inputs, resource_inputs(s3_bucket)).inputs
    diff = provider.diff(outs["model_data_url"], outs, checked)
    assert diff.changes is False
    assert len(tiny.switches.requests) == requests_before


# --- update ---------------------------------------------------------------------------------------


def test_update_of_retention_only_changes_state_without_packaging(
    provider, tiny, s3_bucket
) -> None:
    resource_id, outs = deploy(provider, s3_bucket)
    downloads_before = len(tiny.downloads())
    news = provider.check(outs, resource_inputs(s3_bucket, retain_artifacts=True)).inputs
    updated = provider.update(resource_id, outs, news)
    assert updated.outs["retain_artifacts"] is True
    assert updated.outs["sha256"] == outs["sha256"]
    assert len(tiny.downloads()) == downloads_before


def test_update_to_a_different_expected_sha256_fails_clearly(provider, tiny, s3_bucket) -> None:
    resource_id, outs = deploy(provider, s3_bucket)
    news = provider.check(outs, resource_inputs(s3_bucket, expected_sha256="0" * 64)).inputs
    with pytest.raises(PackagingError, match="not the expected 0{64}"):
        provider.update(resource_id, outs, news)


# --- delete and read ------------------------------------------------------------------------------


def test_delete_removes_the_archive_and_its_manifest(
    provider, tiny, aws: AwsEndpoint, s3_bucket
) -> None:
    resource_id, outs = deploy(provider, s3_bucket)
    provider.delete(resource_id, outs)
    assert object_keys(aws.client("s3"), s3_bucket) == []


def test_delete_keeps_the_artifact_when_retained(
    provider, tiny, aws: AwsEndpoint, s3_bucket
) -> None:
    resource_id, outs = deploy(provider, s3_bucket, retain_artifacts=True)
    provider.delete(resource_id, outs)
    assert len(object_keys(aws.client("s3"), s3_bucket)) == 2


def test_delete_of_a_replaced_older_build_spares_the_rebuild_at_the_same_key(
    provider, tiny, aws: AwsEndpoint, s3_bucket
) -> None:
    # A format-version replacement: the new resource rebuilt the same key (new sha256), then
    # Pulumi deletes the old resource, whose state records the older build.
    resource_id, rebuilt = deploy(provider, s3_bucket)
    older_build = rebuilt | {"sha256": "f" * 64, "format_version": "0-older"}
    provider.delete(resource_id, older_build)
    assert len(object_keys(aws.client("s3"), s3_bucket)) == 2
    assert provider.read(resource_id, rebuilt).id == resource_id


def test_delete_of_an_already_removed_artifact_succeeds(
    provider, tiny, aws: AwsEndpoint, s3_bucket
) -> None:
    resource_id, outs = deploy(provider, s3_bucket)
    provider.delete(resource_id, outs)
    provider.delete(resource_id, outs)
    assert object_keys(aws.client("s3"), s3_bucket) == []


def test_read_keeps_an_intact_artifact(provider, tiny, s3_bucket) -> None:
    resource_id, outs = deploy(provider, s3_bucket)
    read = provider.read(resource_id, outs)
    assert (read.id, read.outs["sha256"]) == (resource_id, outs["sha256"])


def test_read_reports_an_artifact_deleted_out_of_band_as_gone(
    provider, tiny, aws: AwsEndpoint, s3_bucket
) -> None:
    resource_id, outs = deploy(provider, s3_bucket)
    key = outs["model_data_url"].removeprefix(f"s3://{s3_bucket}/")
    aws.client("s3").delete_object(Bucket=s3_bucket, Key=key)
    assert provider.read(resource_id, outs).id == ""


def test_refresh_then_up_repairs_an_artifact_deleted_out_of_band(
    provider, tiny, aws: AwsEndpoint, s3_bucket
) -> None:
    resource_id, outs = deploy(provider, s3_bucket)
    s3 = aws.client("s3")
    for key in object_keys(s3, s3_bucket):
        s3.delete_object(Bucket=s3_bucket, Key=key)
    assert provider.read(resource_id, outs).id == ""  # refresh drops it from the state
    repaired_id, repaired = deploy(provider, s3_bucket)  # up creates it again
    assert (repaired_id, repaired["sha256"]) == (resource_id, outs["sha256"])
    assert len(object_keys(s3, s3_bucket)) == 2


def test_refresh_after_upstream_moved_main_lets_the_next_up_repackage(
    provider, tiny, s3_bucket
) -> None:
    first_inputs = provider.check({}, resource_inputs(s3_bucket)).inputs
    outs = provider.create(first_inputs).outs
    register_tiny(tiny, NEWER_COMMIT)
    refreshed = provider.read(outs["model_data_url"], outs)
    assert refreshed.id == outs["model_data_url"]
    assert refreshed.inputs["pinned_revision"] is None
    checked = provider.check(refreshed.inputs, resource_inputs(s3_bucket)).inputs
    assert checked["pinned_revision"] == NEWER_COMMIT
    assert provider.diff(refreshed.id, refreshed.outs, checked).replaces == ["pinned_revision"]


def test_refresh_without_upstream_change_keeps_the_recorded_inputs(
    provider, tiny, s3_bucket
) -> None:
    resource_id, outs = deploy(provider, s3_bucket)
    assert provider.read(resource_id, outs).inputs is None


def test_refresh_with_the_hub_unreachable_keeps_the_pin(
    provider, tiny, s3_bucket, monkeypatch
) -> None:
    resource_id, outs = deploy(provider, s3_bucket)
    monkeypatch.setenv("HF_ENDPOINT", UNREACHABLE_HUB)
    read = provider.read(resource_id, outs)
    assert (read.id, read.inputs) == (resource_id, None)


def test_source_archive_is_repackaged_once_and_then_left_alone(
    provider, tiny, aws: AwsEndpoint, s3_bucket
) -> None:
    _, training_output = deploy(provider, s3_bucket, key_prefix="training/")
    source = {"source_model_data_url": training_output["model_data_url"], "key_prefix": "models/"}
    first_inputs = provider.check({}, resource_inputs(s3_bucket, **source)).inputs
    outs = provider.create(first_inputs).outs
    assert outs["model_data_url"].startswith(f"s3://{s3_bucket}/models/{TINY_MODEL_ID}/")
    assert "code/inference.py" in outs["files"]
    again = provider.check(first_inputs, resource_inputs(s3_bucket, **source)).inputs
    assert provider.diff(outs["model_data_url"], outs, again).changes is False


@pytest.fixture
def silent_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A Hub URL whose server accepts connections and never answers (a hung request)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    monkeypatch.setenv("HF_ENDPOINT", url)
    try:
        yield url
    finally:
        listener.close()  # resets the pending connections: the abandoned run fails and ends


def test_local_run_past_its_deadline_fails_with_the_deadline(
    provider, silent_hub, s3_bucket
) -> None:
    inputs = resource_inputs(s3_bucket, local_timeout_seconds=1) | {"pinned_revision": TINY_COMMIT}
    with pytest.raises(PackagingError, match="did not finish within 1 s"):
        provider.create(inputs)
