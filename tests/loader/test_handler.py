"""The loader handler end to end: real huggingface_hub → Hub fixture, real boto3 → moto S3."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest

import loader
import loader.hub
from facts.loader_contract import RESULT_FIELDS
from loader.artifacts import delete_artifact
from loader.handler import handler
from loader.version import container_code, format_version
from tests.fixtures.artifacts import PackagedArtifact
from tests.fixtures.hub import REFERENCE_COMMIT, REFERENCE_MODEL_ID, reference_model_dir
from tests.support.loader import (
    code_files,
    code_members,
    hub_event,
    large_repo,
    member_bytes,
    members,
    read_object,
    tiny_repo,
)

# The result is what the packager's provider reads (docs/contracts.md), key for key.
CONTRACT_KEYS = set(RESULT_FIELDS)
REFERENCE_MODEL_MEMBERS = [
    "1_Pooling",
    "1_Pooling/config.json",
    "config.json",
    "config_sentence_transformers.json",
    "model.safetensors",
    "modules.json",
    "sentence_bert_config.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
]
REFERENCE_MEMBERS = sorted([*REFERENCE_MODEL_MEMBERS, *code_members()])


@pytest.fixture
def packaged(reference_artifact: PackagedArtifact) -> PackagedArtifact:
    """The reference model, packaged once per run (tests/fixtures/artifacts.py)."""
    return reference_artifact


def test_result_has_exactly_the_contract_keys(packaged):
    assert set(packaged.result) == CONTRACT_KEYS


def test_revision_main_is_pinned_to_the_commit_sha(packaged):
    assert packaged.result["revision"] == REFERENCE_COMMIT


def test_object_lands_at_prefix_model_commit_format_key(packaged):
    folder = f"models/{REFERENCE_MODEL_ID}/{REFERENCE_COMMIT}/{format_version()}"
    assert packaged.result["model_data_url"] == f"s3://{packaged.bucket}/{folder}/model.tar.gz"


def test_sha256_and_size_describe_the_object_bytes(packaged):
    assert hashlib.sha256(packaged.archive).hexdigest() == packaged.result["sha256"]
    assert len(packaged.archive) == packaged.result["size_bytes"]


def test_archive_holds_the_selected_files_and_the_inference_code(packaged):
    assert [m.name for m in members(packaged.archive)] == REFERENCE_MEMBERS
    assert packaged.result["files"] == sorted(
        [*code_files(), *(name for name in REFERENCE_MODEL_MEMBERS if name != "1_Pooling")]
    )


def test_archive_ships_the_container_code_bytes(packaged):
    for name, data in container_code().items():
        assert member_bytes(packaged.archive, name) == data, name


def test_model_files_are_the_hub_bytes(packaged):
    for name in ("model.safetensors", "tokenizer.json", "1_Pooling/config.json"):
        assert member_bytes(packaged.archive, name) == (reference_model_dir() / name).read_bytes()


def test_weights_bytes_counts_the_safetensors_file(packaged):
    weights = (reference_model_dir() / "model.safetensors").stat().st_size
    assert packaged.result["weights_bytes"] == weights


def test_archive_entries_carry_normalised_metadata(packaged):
    for member in members(packaged.archive):
        assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (
            0,
            0,
            0,
            "",
            "",
        ), member.name
        assert member.mode == (0o755 if member.isdir() else 0o644), member.name


def test_gzip_header_has_no_timestamp_or_name(packaged):
    assert packaged.archive[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


def test_format_version_is_the_loaders(packaged):
    assert packaged.result["format_version"] == loader.version.format_version()


def test_manifest_beside_the_archive_records_the_result(packaged, moto_server):
    s3 = moto_server.client("s3")
    key = (
        packaged.result["model_data_url"].split("/", 3)[3].replace("model.tar.gz", "manifest.json")
    )
    manifest = json.loads(s3.get_object(Bucket=packaged.bucket, Key=key)["Body"].read())
    assert {k: manifest[k] for k in CONTRACT_KEYS} == packaged.result


def test_second_run_into_another_bucket_is_byte_identical(packaged, hub, aws, s3_bucket):
    result = handler(hub_event(s3_bucket), None)
    assert result["sha256"] == packaged.result["sha256"]
    assert read_object(aws.client("s3"), result["model_data_url"]) == packaged.archive


def test_archive_bytes_do_not_depend_on_how_the_download_is_chunked(
    hub, aws, s3_bucket, monkeypatch
):
    monkeypatch.setattr(loader.hub, "RETRY_BASE_SECONDS", 0.0)
    repo = hub.register(large_repo(weights_mib=9))
    s3 = aws.client("s3")
    digests = []
    for chunk_size, cut in ((1024 * 1024, False), (7_777, False), (3 * 1024 * 1024 + 1, True)):
        monkeypatch.setattr(loader.hub, "DOWNLOAD_CHUNK", chunk_size)
        hub.switches.cut_file, hub.switches.cut_times = (
            ("model.safetensors", 1) if cut else (None, 0)
        )
        result = handler(hub_event(s3_bucket, model_id=repo.repo_id), None)
        digests.append(hashlib.sha256(read_object(s3, result["model_data_url"])).hexdigest())
        assert digests[-1] == result["sha256"]
        assert delete_artifact(s3, result["model_data_url"])  # the next run builds it again
    assert len(set(digests)) == 1, digests
    weights_gets = [path for path in hub.downloads() if path.endswith("/model.safetensors")]
    assert len(weights_gets) == 4  # the last run was cut once and resumed with a Range request


def test_rerun_returns_the_recorded_artifact_without_downloading(packaged, hub, aws):
    result = handler(hub_event(packaged.bucket), None)
    assert result == packaged.result
    assert hub.downloads() == []


def test_pinned_sha_revision_gives_the_same_artifact(packaged, hub, aws):
    result = handler(hub_event(packaged.bucket, revision=REFERENCE_COMMIT), None)
    assert result == packaged.result


def test_matching_expected_sha256_is_accepted(packaged, hub, aws):
    event = hub_event(packaged.bucket, expected_sha256=packaged.result["sha256"])
    assert handler(event, None)["sha256"] == packaged.result["sha256"]


def test_extracted_archive_loads_in_sentence_transformers_like_the_original(packaged, tmp_path):
    from sentence_transformers import SentenceTransformer  # slow import: only this test needs it

    with tarfile.open(fileobj=io.BytesIO(packaged.archive), mode="r:gz") as tar:
        tar.extractall(tmp_path, filter="data")
    sentences = ["A packaged model must embed like the original."]
    packaged_vectors = SentenceTransformer(str(tmp_path), device="cpu").encode(sentences)
    original = SentenceTransformer(str(reference_model_dir()), device="cpu").encode(sentences)
    assert packaged_vectors.shape == (1, 384)
    assert abs(packaged_vectors - original).max() < 1e-6


def test_each_small_file_checked_before_the_upload_is_downloaded_once(hub, aws, s3_bucket):
    # config.json and modules.json are read before any upload, and those bytes are packaged.
    repo = hub.register(tiny_repo())
    result = handler(hub_event(s3_bucket, model_id=repo.repo_id), None)
    assert "config.json" in result["files"]
    config_gets = [path for path in hub.downloads() if path.endswith("/config.json")]
    assert config_gets == [f"/{repo.repo_id}/resolve/{repo.commit}/config.json"]
