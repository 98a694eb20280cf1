"""The identifier rules every trust boundary shares, and the artifact key layout."""

from __future__ import annotations

import pytest

from facts import identifiers
from facts.artifact_keys import artifact_location, model_id_from_key

SHA = "0123456789abcdef0123456789abcdef01234567"


def test_only_a_40_hex_revision_counts_as_pinned() -> None:
    assert identifiers.COMMIT_SHA.matches(SHA)
    assert not identifiers.COMMIT_SHA.matches("main")
    assert not identifiers.COMMIT_SHA.matches(SHA[:12])


def test_a_broken_rule_says_what_is_expected() -> None:
    assert identifiers.MODEL_ID.problem("no-slash") == "expected a Hub repo id 'org/name'"
    assert identifiers.MODEL_ID.problem("org/name") is None
    assert identifiers.MODEL_ID.problem(None) == "expected a Hub repo id 'org/name'"


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
    location = artifact_location("bucket", "models/", "sentence-transformers/all-MiniLM-L6-v2", SHA)
    assert model_id_from_key(location.url) == "sentence-transformers/all-MiniLM-L6-v2"
    assert model_id_from_key(location.key) == "sentence-transformers/all-MiniLM-L6-v2"
    assert model_id_from_key("./model.tar.gz") is None
