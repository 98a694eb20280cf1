"""The provider's pure decisions: diff, state outputs, result validation (no servers)."""

from __future__ import annotations

import pytest

from components.packager_provider import diff
from components.packager_state import REPLACING_INPUTS, state_outputs
from components.packaging_runs import (
    PackagingError,
    PackagingRequest,
    endpoint_environment,
    patched_environ,
    validate_result,
)
from tests.support.packager import resource_inputs

PINNED = "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"
OTHER_SHA = "0" * 40
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def inputs(**overrides: object) -> dict[str, object]:
    """The dynamic resource's inputs after `check` pinned the revision."""
    checked = {
        "model_id": "sentence-transformers/all-MiniLM-L6-v2",
        "pinned_revision": PINNED,
        "bucket": "artifacts",
        "format_version": "1-abc",
        "local_timeout_seconds": 600,
    }
    return resource_inputs(**(checked | overrides))


def result(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "model_data_url": f"s3://artifacts/models/sentence-transformers/all-MiniLM-L6-v2/{PINNED}"
        "/model.tar.gz",
        "revision": PINNED,
        "sha256": "a" * 64,
        "size_bytes": 100,
        "weights_bytes": 80,
        "files": ["config.json", "model.safetensors", "code/inference.py"],
        "format_version": "1-abc",
    }
    return base | overrides


def created_state(**overrides: object) -> dict[str, object]:
    """What a create leaves in the state (the olds of the next diff)."""
    return state_outputs(inputs(**overrides), result())


def test_unchanged_inputs_are_no_change() -> None:
    decision = diff("", created_state(), inputs())
    assert decision.changes is False
    assert decision.replaces == []


def test_token_change_alone_never_repackages() -> None:
    decision = diff("", created_state(), inputs(hf_token="hf_new_token"))
    assert decision.changes is False


def test_requested_revision_text_change_with_same_pin_does_not_replace() -> None:
    decision = diff("", created_state(), inputs(requested_revision=PINNED))
    assert decision.replaces == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("model_id", "BAAI/bge-small-en-v1.5"),
        ("pinned_revision", OTHER_SHA),
        ("bucket", "other-bucket"),
        ("key_prefix", "other/"),
        ("source_model_data_url", "s3://training/out/model.tar.gz"),
        ("format_version", "2-def"),
    ],
)
def test_identity_change_replaces_create_before_delete(name: str, value: str) -> None:
    decision = diff("", created_state(), inputs(**{name: value}))
    assert decision.changes is True
    assert decision.replaces == [name]
    assert decision.delete_before_replace is False


def test_retain_change_updates_state_without_replacing() -> None:
    decision = diff("", created_state(), inputs(retain_artifacts=True))
    assert (decision.changes, decision.replaces) == (True, [])


def test_unknown_bucket_during_preview_is_reported_as_replacement() -> None:
    decision = diff("", created_state(), inputs(bucket=UNKNOWN))
    assert "bucket" in decision.replaces


def test_a_state_from_before_the_engine_choice_is_a_torch_artifact() -> None:
    old = {name: value for name, value in created_state().items() if name != "engine"}
    assert diff("", old, inputs(engine="torch")).replaces == []
    assert diff("", old, inputs(engine="onnx")).replaces == ["engine"]


def test_every_identifying_input_is_kept_in_state() -> None:
    state = created_state()
    assert all(name in state for name in REPLACING_INPUTS)


def test_state_never_holds_the_token() -> None:
    state = state_outputs(inputs(hf_token="hf_secret"), result())
    assert "hf_token" not in state
    assert "hf_secret" not in repr(state)


def test_result_outside_the_requested_prefix_is_rejected() -> None:
    request = PackagingRequest.from_inputs(inputs())
    with pytest.raises(PackagingError, match="outside s3://artifacts/models/"):
        validate_result(request, result(model_data_url="s3://artifacts/elsewhere/model.tar.gz"))


def test_result_with_a_different_revision_than_the_pin_is_rejected() -> None:
    request = PackagingRequest.from_inputs(inputs())
    with pytest.raises(PackagingError, match="not the pinned"):
        validate_result(request, result(revision=OTHER_SHA))


def test_result_missing_a_field_names_it() -> None:
    request = PackagingRequest.from_inputs(inputs())
    incomplete = result()
    del incomplete["sha256"]
    with pytest.raises(PackagingError, match="lacks sha256"):
        validate_result(request, incomplete)


def test_result_with_unexpected_sha256_is_rejected() -> None:
    request = PackagingRequest.from_inputs(inputs(expected_sha256="b" * 64))
    with pytest.raises(PackagingError, match="not the expected"):
        validate_result(request, result())


def test_loader_event_uses_the_pinned_revision() -> None:
    event = PackagingRequest.from_inputs(inputs(hf_token="hf_x")).loader.to_event()
    assert event["revision"] == PINNED
    assert event["hf_token"] == "hf_x"


def test_the_request_never_shows_the_token_in_its_repr() -> None:
    request = PackagingRequest.from_inputs(inputs(hf_token="hf_secret_value"))
    assert "hf_secret_value" not in repr(request)


def test_endpoint_overrides_become_per_service_variables() -> None:
    environment = endpoint_environment(
        {"s3": "http://127.0.0.1:1", "secretsmanager": "http://127.0.0.1:2"}
    )
    assert environment == {
        "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:1",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:2",
    }


def test_patched_environ_restores_previous_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://before")
    monkeypatch.delenv("AWS_ENDPOINT_URL_STS", raising=False)
    import os

    with patched_environ({"AWS_ENDPOINT_URL_S3": "http://during", "AWS_ENDPOINT_URL_STS": "x"}):
        assert os.environ["AWS_ENDPOINT_URL_S3"] == "http://during"
    assert os.environ["AWS_ENDPOINT_URL_S3"] == "http://before"
    assert "AWS_ENDPOINT_URL_STS" not in os.environ


def test_source_archive_artifact_is_unchanged_on_the_next_diff() -> None:
    source = {"source_model_data_url": "s3://training/out/model.tar.gz", "pinned_revision": None}
    state = state_outputs(inputs(**source), result(revision="9" * 40))
    assert state["pinned_revision"] is None
    assert diff("", state, inputs(**source)).changes is False


def test_the_token_stays_out_of_the_packaging_requests_repr() -> None:
    request = PackagingRequest.from_inputs(inputs(hf_token="hf_secret_value"))
    assert request.loader.to_event()["hf_token"] == "hf_secret_value"
    assert "hf_secret_value" not in repr(request)


def test_a_state_from_before_later_inputs_diffs_as_no_change() -> None:
    later = ("container_python", "onnx_file", "onnx_fusion", "onnx_export", "model_code_checked")
    old = {name: value for name, value in created_state().items() if name not in later}
    assert diff("", old, inputs()).changes is False
