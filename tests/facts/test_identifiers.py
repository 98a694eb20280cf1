"""The identifier rules every trust boundary shares, and the artifact key layout."""

from __future__ import annotations

import pytest

from facts import identifiers
from facts.artifact_keys import artifact_location, model_id_from_key

SHA = "0123456789abcdef0123456789abcdef01234567"
FORMAT = "3-0123456789abcdef"


def test_only_a_40_hex_revision_counts_as_pinned() -> None:
    assert identifiers.COMMIT_SHA.matches(SHA)
    assert not identifiers.COMMIT_SHA.matches("main")
    assert not identifiers.COMMIT_SHA.matches(SHA[:12])


def test_a_broken_rule_says_what_is_expected() -> None:
    expected = f"expected {identifiers.MODEL_ID.expected}"
    assert expected.startswith("expected a Hub repo id 'org/name' (")
    assert identifiers.MODEL_ID.problem("no-slash") == expected
    assert identifiers.MODEL_ID.problem("org/name") is None
    assert identifiers.MODEL_ID.problem(None) == expected


@pytest.mark.parametrize(
    "repo_id",
    [
        "sentence-transformers/all-MiniLM-L6-v2",
        "BAAI/bge-base-en-v1.5",
        "intfloat/e5_small",
        "_org/_name_",
        "o/n",
        "org/" + "n" * 96,
        "org/" + "n" * 97,
        "org/a..b",
        "org/a--b",
        "org/name-",
        "org/name.",
        "org/-name",
        "org/.name",
        "org/name.git",
        "org/name\n",
        "org/näme",
        "org/name/extra",
        "org/na me",
    ],
)
def test_the_model_id_rule_is_the_hub_clients(repo_id: str) -> None:
    """huggingface_hub refuses every id the rule refuses, and takes every id it takes."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
        hub_takes = repo_id.isascii()  # the client's \w is Unicode; the Hub's names are ASCII
    except HFValidationError:
        hub_takes = False
    assert identifiers.MODEL_ID.matches(repo_id) is hub_takes


@pytest.mark.parametrize("rule", ["REVISION", "SHA256", "MODEL_ID", "BUCKET", "S3_TARBALL_URL"])
def test_a_trailing_newline_is_not_part_of_a_good_value(rule: str) -> None:
    good = {
        "REVISION": "main",
        "SHA256": "a" * 64,
        "MODEL_ID": "org/name",
        "BUCKET": "my-bucket",
        "S3_TARBALL_URL": "s3://bucket/model.tar.gz",
    }[rule]
    assert getattr(identifiers, rule).matches(good)
    assert not getattr(identifiers, rule).matches(good + "\n")


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:hf-token-AbCdEf",
        "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:hf-token-AbCdEf",
        "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:hf",
    ],
)
def test_secret_arns_of_every_partition_are_accepted(arn: str) -> None:
    assert identifiers.SECRET_ARN.matches(arn)


def test_only_tarballs_are_source_archives() -> None:
    assert identifiers.S3_TARBALL_URL.matches("s3://bucket/output/model.tar.gz")
    assert not identifiers.S3_TARBALL_URL.matches("s3://bucket/output/model.zip")
    assert identifiers.S3_URL.matches("s3://bucket/output/model.zip")


def test_s3_urls_split_into_bucket_and_key() -> None:
    assert identifiers.parse_s3_url("s3://my-bucket/a/b.tar.gz") == ("my-bucket", "a/b.tar.gz")
    with pytest.raises(ValueError, match="s3://bucket/key"):
        identifiers.parse_s3_url("https://my-bucket/a")


def test_model_id_is_read_back_from_the_key_layout() -> None:
    model = "sentence-transformers/all-MiniLM-L6-v2"
    location = artifact_location("bucket", "models/", model, SHA, FORMAT)
    assert model_id_from_key(location.url) == model
    assert model_id_from_key(location.key) == model
    # Archives packaged before the format version was a folder of the key.
    assert model_id_from_key(f"s3://bucket/models/{model}/{SHA}/model.tar.gz") == model
    assert model_id_from_key("./model.tar.gz") is None


def test_every_format_version_has_a_key_of_its_own() -> None:
    """A build with other code never rewrites the archive a live Model names."""
    old = artifact_location("bucket", "models/", "org/name", SHA, "3-" + "a" * 16, "onnx-py310")
    new = artifact_location("bucket", "models/", "org/name", SHA, "3-" + "b" * 16, "onnx-py310")
    assert old.key == f"models/org/name/{SHA}/onnx-py310/3-{'a' * 16}/model.tar.gz"
    assert old.key != new.key
    assert old.manifest_key == f"models/org/name/{SHA}/onnx-py310/3-{'a' * 16}/manifest.json"
