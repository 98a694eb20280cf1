"""A model whose weights are pickles only is refused at preview, unless the stack trusts it.

Real huggingface_hub against the Hub fixture: `check` lists the pinned commit's files as it would
on huggingface.co, and decides from the files the loader would package.
"""

from __future__ import annotations

import pytest

from components.packager_provider import PackagerProvider, diff
from tests.fixtures.hub import HubServer, make_repo
from tests.support.packager import resource_inputs

PICKLED = "test-org/pickled-only"
PICKLED_COMMIT = "5555555555555555555555555555555555555555"
DENSE = "test-org/pickled-dense"
DENSE_COMMIT = "6666666666666666666666666666666666666666"
BOTH = "test-org/pickles-beside-safetensors"
CONFIG = {"config.json": b'{"model_type": "bert", "hidden_size": 8}'}


@pytest.fixture
def provider() -> PackagerProvider:
    return PackagerProvider()


@pytest.fixture
def repos(hub: HubServer) -> HubServer:
    pickle = {"pytorch_model.bin": b"a pickle"}
    safetensors = {"model.safetensors": bytes(range(256))}
    hub.register(make_repo(PICKLED, {**CONFIG, **pickle}, commit=PICKLED_COMMIT))
    dense = {**safetensors, "2_Dense/config.json": b"{}", "2_Dense/pytorch_model.bin": b"p"}
    hub.register(make_repo(DENSE, {**CONFIG, **dense}, commit=DENSE_COMMIT))
    hub.register(make_repo(BOTH, {**CONFIG, **pickle, **safetensors}))
    return hub


def check(provider: PackagerProvider, bucket: str, model_id: str, olds=None, **fields):
    inputs = resource_inputs(bucket, model_id=model_id, inference_engine="torch", **fields)
    return provider.check(olds or {}, inputs)


def test_pickle_only_repository_fails_at_preview_naming_the_file_and_the_key(
    provider, repos, s3_bucket
):
    (failure,) = check(provider, s3_bucket, PICKLED).failures
    assert failure.property == "model_id"
    assert f"model '{PICKLED}' at {PICKLED_COMMIT}" in failure.reason
    assert "pytorch_model.bin" in failure.reason
    assert "allowPickledWeights: true" in failure.reason


def test_pickled_dense_weights_fail_at_preview(provider, repos, s3_bucket):
    (failure,) = check(provider, s3_bucket, DENSE).failures
    assert "2_Dense/pytorch_model.bin" in failure.reason


def test_pickles_beside_safetensors_pass(provider, repos, s3_bucket):
    assert check(provider, s3_bucket, BOTH).failures == []


def test_weights_transformers_cannot_load_fail_at_preview_naming_them(provider, hub, s3_bucket):
    variant = {"model.fp16.safetensors": bytes(range(256))}
    hub.register(make_repo("test-org/fp16-only", {**CONFIG, **variant}))
    (failure,) = check(provider, s3_bucket, "test-org/fp16-only").failures
    assert failure.property == "model_id" and "model.fp16.safetensors" in failure.reason
    assert "need a `variant=`" in failure.reason


def test_the_stack_that_trusts_the_repository_passes(provider, repos, s3_bucket):
    checked = check(provider, s3_bucket, PICKLED, allow_pickled_weights=True)
    assert checked.failures == []


def test_withdrawing_the_trust_asks_the_hub_again_for_a_pinned_sha(provider, repos, s3_bucket):
    trusted = check(
        provider, s3_bucket, PICKLED, requested_revision=PICKLED_COMMIT, allow_pickled_weights=True
    )
    olds = {**trusted.inputs, "model_code_checked": PICKLED_COMMIT}
    again = check(provider, s3_bucket, PICKLED, olds, requested_revision=PICKLED_COMMIT)
    (failure,) = again.failures
    assert "pytorch_model.bin" in failure.reason


def test_a_state_from_before_the_key_is_no_change(s3_bucket):
    inputs = resource_inputs(s3_bucket, pinned_revision=PICKLED_COMMIT)
    olds = dict(inputs)
    assert diff("id", olds, inputs | {"allow_pickled_weights": False}).changes is False
