"""`defaultPromptName` is checked at preview, against the model's prompts at the pinned commit.

Real huggingface_hub against the Hub fixture: `check` lists the commit and downloads
`config_sentence_transformers.json`, as it would from huggingface.co.
"""

from __future__ import annotations

import json

import pytest

from components.packager import HfModelPackagerArgs
from components.packager_provider import PackagerProvider
from deploy_account.session import AwsSettings
from tests.fixtures.hub import VALID_TOKEN, HubServer, make_repo
from tests.support.packager import TINY_COMMIT, TINY_MODEL_ID, resource_inputs

UNREACHABLE_HUB = "http://127.0.0.1:9"
E5_STYLE = "test-org/tiny-e5"
E5_COMMIT = "5555555555555555555555555555555555555555"
MODEL_FILES = {
    "config.json": b'{"model_type": "bert", "hidden_size": 8}',
    "model.safetensors": bytes(range(256)) * 4,
}
PROMPTS = {"query": "query: ", "passage": "passage: "}


@pytest.fixture
def provider() -> PackagerProvider:
    return PackagerProvider()


@pytest.fixture
def repos(hub: HubServer) -> HubServer:
    """An E5-style repo with prompts and one (TINY_MODEL_ID) without a prompts file."""
    prompts = json.dumps({"prompts": PROMPTS, "default_prompt_name": None}).encode()
    files = {**MODEL_FILES, "config_sentence_transformers.json": prompts}
    hub.register(make_repo(E5_STYLE, files, commit=E5_COMMIT))
    hub.register(make_repo(TINY_MODEL_ID, MODEL_FILES, commit=TINY_COMMIT))
    return hub


def prompt_inputs(bucket: str, name: str | None, **overrides: object) -> dict:
    return resource_inputs(bucket, model_id=E5_STYLE, default_prompt_name=name, **overrides)


def downloads(hub: HubServer) -> list[str]:
    return [path for _, path in hub.switches.requests if "config_sentence_transformers" in path]


def test_a_prompt_the_model_has_passes(provider, repos, s3_bucket) -> None:
    checked = provider.check({}, prompt_inputs(s3_bucket, "query"))
    assert checked.failures == []
    assert checked.inputs["pinned_revision"] == E5_COMMIT
    assert downloads(repos), "the prompts file was never read"


def test_a_prompt_the_model_lacks_fails_at_preview_listing_its_prompts(
    provider, repos, s3_bucket
) -> None:
    checked = provider.check({}, prompt_inputs(s3_bucket, "question"))
    (failure,) = checked.failures
    assert failure.property == "default_prompt_name"
    assert "'question'" in failure.reason and E5_STYLE in failure.reason
    assert E5_COMMIT in failure.reason
    assert "passage, query" in failure.reason


def test_a_model_without_prompts_fails_any_default_prompt(provider, repos, s3_bucket) -> None:
    inputs = resource_inputs(s3_bucket, default_prompt_name="query")
    (failure,) = provider.check({}, inputs).failures
    assert failure.property == "default_prompt_name"
    assert "no config_sentence_transformers.json prompts" in failure.reason


def test_no_default_prompt_reads_no_prompts(provider, repos, s3_bucket) -> None:
    assert provider.check({}, prompt_inputs(s3_bucket, None)).failures == []
    assert downloads(repos) == []


def test_the_answer_is_kept_until_the_name_or_the_pin_changes(
    provider, repos, s3_bucket, monkeypatch
) -> None:
    first = provider.check({}, prompt_inputs(s3_bucket, "query", requested_revision=E5_COMMIT))
    assert first.failures == []
    monkeypatch.setenv("HF_ENDPOINT", UNREACHABLE_HUB)
    again = provider.check(
        first.inputs, prompt_inputs(s3_bucket, "query", requested_revision=E5_COMMIT)
    )
    assert again.failures == []
    renamed = provider.check(
        first.inputs, prompt_inputs(s3_bucket, "passage", requested_revision=E5_COMMIT)
    )
    (failure,) = renamed.failures  # the Hub is asked again, and now cannot be reached
    assert failure.property == "default_prompt_name"


def test_a_private_repo_is_read_with_the_stacks_token(provider, repos, s3_bucket) -> None:
    repos.set_private(E5_STYLE)
    without = provider.check({}, prompt_inputs(s3_bucket, "query", requested_revision=E5_COMMIT))
    assert [f.property for f in without.failures] == ["default_prompt_name"]
    with_token = provider.check(
        {}, prompt_inputs(s3_bucket, "query", requested_revision=E5_COMMIT, hf_token=VALID_TOKEN)
    )
    assert with_token.failures == []


def test_a_source_archive_is_left_to_the_container(provider, s3_bucket, monkeypatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", UNREACHABLE_HUB)
    inputs = prompt_inputs(
        s3_bucket, "question", source_model_data_url=f"s3://{s3_bucket}/trained/model.tar.gz"
    )
    assert provider.check({}, inputs).failures == []


def test_the_args_refuse_a_malformed_prompt_name() -> None:
    with pytest.raises(ValueError, match="HfModelPackagerArgs.default_prompt_name 'a b'"):
        HfModelPackagerArgs(
            bucket_name="b",
            bucket_arn="arn:aws:s3:::b",
            model_id=E5_STYLE,
            revision="main",
            runner="local",
            aws=AwsSettings(region="us-east-1"),
            default_prompt_name="a b",
        )


def test_one_check_lists_the_commit_once_for_all_its_questions(provider, repos, s3_bucket) -> None:
    # A sha pin: the engine, model-code and prompt checks all need the listing; one request.
    news = prompt_inputs(s3_bucket, "query", requested_revision=E5_COMMIT, inference_engine="auto")
    checked = provider.check({}, news | {"container_python": "3.11"})
    assert checked.failures == []
    listings = [path for _, path in repos.switches.requests if path.startswith("/api/models/")]
    assert len(listings) == 1, listings


def test_a_prompts_file_the_container_would_refuse_fails_at_preview_naming_it(
    provider, hub, s3_bucket
) -> None:
    prompts = json.dumps({"prompts": {"query": 3}}).encode()
    files = {**MODEL_FILES, "config_sentence_transformers.json": prompts}
    hub.register(make_repo("test-org/bad-prompts", files, commit=E5_COMMIT))
    inputs = resource_inputs(s3_bucket, model_id="test-org/bad-prompts", default_prompt_name="q")
    (failure,) = provider.check({}, inputs).failures
    assert failure.property == "default_prompt_name"
    assert "'prompts' must map names to prefix strings" in failure.reason
    assert "config_sentence_transformers.json" in failure.reason
