"""Every failure class aborts cleanly: a clear error, no object at the key, no open upload."""

from __future__ import annotations

import json
import threading
import time

import pytest

import loader.hub
import loader.version
from loader.errors import (
    ChecksumMismatch,
    DownloadError,
    EventError,
    GatedRepoAccessDenied,
    LoaderError,
    RepositoryNotFound,
    RevisionNotFound,
    UploadError,
)
from loader.handler import handler
from loader.modules import UnsupportedModules
from tests.fixtures.hub import VALID_TOKEN, make_repo
from tests.support.loader import (
    TINY_FILES,
    TINY_MODEL_ID,
    code_files,
    hub_event,
    large_repo,
    leftovers,
    tiny_repo,
)


@pytest.fixture
def s3(aws):
    return aws.client("s3")


def test_missing_repository_names_the_model_and_leaves_nothing(hub, s3, s3_bucket):
    with pytest.raises(RepositoryNotFound) as caught:
        handler(hub_event(s3_bucket, model_id="nobody/no-such-model"), None)
    assert "'nobody/no-such-model' not found" in str(caught.value)
    assert "step 'list-files'" in str(caught.value)
    assert leftovers(s3, s3_bucket) == ([], [])


def test_missing_revision_names_the_revision_and_leaves_nothing(hub, s3, s3_bucket):
    hub.register(tiny_repo())
    with pytest.raises(RevisionNotFound) as caught:
        handler(hub_event(s3_bucket, model_id=TINY_MODEL_ID, revision="v9.9"), None)
    assert f"revision 'v9.9' not found in '{TINY_MODEL_ID}'" in str(caught.value)
    assert leftovers(s3, s3_bucket) == ([], [])


def test_gated_repo_without_token_is_refused_before_any_upload(hub, s3, s3_bucket):
    hub.register(tiny_repo(gated=True))
    with pytest.raises(GatedRepoAccessDenied) as caught:
        handler(hub_event(s3_bucket, model_id=TINY_MODEL_ID), None)
    assert "gated" in str(caught.value) and "hfToken" in str(caught.value)
    assert leftovers(s3, s3_bucket) == ([], [])
    assert hub.downloads() == []


def test_gated_repo_with_an_unauthorised_token_aborts_the_upload(hub, s3, s3_bucket):
    hub.register(tiny_repo(gated=True))
    with pytest.raises(GatedRepoAccessDenied) as caught:
        handler(hub_event(s3_bucket, model_id=TINY_MODEL_ID, hf_token="hf_not_granted"), None)
    assert "step 'download'" in str(caught.value)
    assert leftovers(s3, s3_bucket) == ([], [])


def test_token_is_not_part_of_any_error_message(hub, s3_bucket):
    hub.register(tiny_repo(gated=True))
    with pytest.raises(LoaderError) as caught:
        handler(hub_event(s3_bucket, model_id=TINY_MODEL_ID, hf_token="hf_not_granted"), None)
    assert "hf_not_granted" not in str(caught.value)


def test_connection_cut_on_every_attempt_names_the_file_and_leaves_nothing(
    hub, s3, s3_bucket, monkeypatch
):
    monkeypatch.setattr(loader.hub, "RETRY_BASE_SECONDS", 0.0)
    hub.register(large_repo())
    hub.switches.cut_file = "model.safetensors"
    with pytest.raises(DownloadError) as caught:
        handler(hub_event(s3_bucket, model_id="test-org/large-weights"), None)
    assert "file 'model.safetensors'" in str(caught.value)
    assert "test-org/large-weights" in str(caught.value)
    assert leftovers(s3, s3_bucket) == ([], [])


def test_missing_bucket_fails_at_the_upload_step(hub, aws):
    with pytest.raises(UploadError, match="step 'create-multipart-upload'"):
        hub.register(tiny_repo())
        handler(hub_event("bucket-that-does-not-exist-0", model_id=TINY_MODEL_ID), None)


def test_s3_failure_mid_stream_aborts_and_leaves_nothing(hub, s3, s3_bucket, monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # moto answers 500 here; do not retry it
    hub.register(large_repo())

    def abort_uploads_out_of_band(path: str) -> None:
        # S3 loses the upload while parts are flowing: every later UploadPart is refused. The
        # transfer manager creates the upload in a thread of its own, which may not have done so
        # yet when the weights' download starts: wait for it, so the fault always lands.
        if path != "model.safetensors":
            return
        deadline = time.monotonic() + 10
        uploads = []
        while not uploads and time.monotonic() < deadline:
            uploads = s3.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])
            time.sleep(0 if uploads else 0.05)
        for upload in uploads:
            s3.abort_multipart_upload(
                Bucket=s3_bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )

    hub.switches.on_download = abort_uploads_out_of_band
    with pytest.raises(UploadError) as caught:
        handler(hub_event(s3_bucket, model_id="test-org/large-weights"), None)
    assert "step 'upload-part" in str(caught.value)
    assert leftovers(s3, s3_bucket) == ([], [])


def test_expected_sha256_mismatch_aborts_before_completing(hub, s3, s3_bucket):
    hub.register(tiny_repo())
    with pytest.raises(ChecksumMismatch, match="expected 0000"):
        handler(hub_event(s3_bucket, model_id=TINY_MODEL_ID, expected_sha256="0" * 64), None)
    assert leftovers(s3, s3_bucket) == ([], [])


def test_expected_sha256_mismatch_on_an_existing_artifact_keeps_it(hub, s3, s3_bucket):
    hub.register(tiny_repo())
    built = handler(hub_event(s3_bucket, model_id=TINY_MODEL_ID), None)
    with pytest.raises(ChecksumMismatch, match=built["sha256"]):
        handler(hub_event(s3_bucket, model_id=TINY_MODEL_ID, expected_sha256="0" * 64), None)
    keys, _ = leftovers(s3, s3_bucket)
    assert built["model_data_url"].split("/", 3)[3] in keys


def _without(*names: str, **extra: bytes) -> dict[str, bytes]:
    return {name: data for name, data in TINY_FILES.items() if name not in names} | extra


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (_without("model.safetensors"), "no PyTorch weights"),
        (_without("tokenizer.json"), "has no tokenizer files"),
        (
            _without("model.safetensors", **{"model.fp16.safetensors": b"weights"}),
            r"model\.fp16\.safetensors",
        ),
    ],
    ids=["onnx-only", "no-tokenizer", "fp16-only"],
)
def test_a_repo_the_endpoint_could_not_load_is_refused_before_any_upload(
    hub, s3, s3_bucket, files, message
):
    hub.register(make_repo("test-org/unloadable", files))
    with pytest.raises(LoaderError, match=f"step 'select-files'.*{message}"):
        handler(hub_event(s3_bucket, model_id="test-org/unloadable"), None)
    assert leftovers(s3, s3_bucket) == ([], [])


@pytest.mark.parametrize("engine", ["torch", "onnx"])
def test_a_tokenizer_of_repository_code_is_refused_before_any_upload(hub, s3, s3_bucket, engine):
    tokenizer_config = {
        "tokenizer_class": "MyTokenizer",
        "auto_map": {"AutoTokenizer": ["tokenization_my.MyTokenizer", None]},
    }
    files = {**TINY_FILES, "tokenizer_config.json": json.dumps(tokenizer_config).encode()}
    hub.register(make_repo("test-org/custom-tokenizer", files))
    python = {"container_python": "3.10"} if engine == "onnx" else {}
    event = hub_event(s3_bucket, model_id="test-org/custom-tokenizer", engine=engine, **python)
    with pytest.raises(LoaderError, match="step 'check-model-code'.*tokenizer_class 'MyTokenizer'"):
        handler(event, None)
    assert leftovers(s3, s3_bucket) == ([], [])


def _sharded(weight_map: dict[str, str], **extra: bytes) -> dict[str, bytes]:
    """TINY_FILES with its weights as one shard and `weight_map` as the index."""
    files = {name: data for name, data in TINY_FILES.items() if name != "model.safetensors"}
    files["model-00001-of-00001.safetensors"] = TINY_FILES["model.safetensors"]
    index = {"metadata": {}, "weight_map": weight_map}
    return files | {"model.safetensors.index.json": json.dumps(index).encode()} | extra


@pytest.mark.parametrize(
    ("weight_map", "extra"),
    [
        # A TorchScript or pickle under a name the pickle check never looks at.
        ({"a": "model-00001-of-00001.safetensors", "b": "notes.txt"}, {"notes.txt": b"PK"}),
        ({"a": "../model-00001-of-00001.safetensors"}, {}),
        ({"a": "model-00001-of-00002.safetensors"}, {}),  # a shard the repo lacks
    ],
    ids=["foreign-file", "escaping-path", "missing-shard"],
)
def test_an_index_naming_other_files_than_its_shards_is_refused_before_any_upload(
    hub, s3, s3_bucket, weight_map, extra
):
    hub.register(make_repo("test-org/odd-index", _sharded(weight_map, **extra)))
    with pytest.raises(LoaderError, match="step 'check-weight-index'.*model.safetensors.index"):
        handler(hub_event(s3_bucket, model_id="test-org/odd-index"), None)
    assert leftovers(s3, s3_bucket) == ([], [])


def test_a_sharded_checkpoint_is_packaged_with_its_index(hub, s3, s3_bucket):
    files = _sharded({"a": "model-00001-of-00001.safetensors"})
    hub.register(make_repo("test-org/sharded", files))
    built = handler(hub_event(s3_bucket, model_id="test-org/sharded"), None)
    assert "model.safetensors.index.json" in built["files"]
    assert "model-00001-of-00001.safetensors" in built["files"]


@pytest.mark.parametrize(
    "prompts",
    [b"[]", b'{"prompts": {"query": "q: "}, "default_prompt_name": "passage"}'],
    ids=["not-an-object", "default-not-a-prompt"],
)
def test_prompts_the_container_would_refuse_are_refused_before_any_upload(
    hub, s3, s3_bucket, prompts
):
    files = {**TINY_FILES, "config_sentence_transformers.json": prompts}
    hub.register(make_repo("test-org/odd-prompts", files))
    with pytest.raises(LoaderError, match="step 'read-config_sentence_transformers.json'"):
        handler(hub_event(s3_bucket, model_id="test-org/odd-prompts"), None)
    assert leftovers(s3, s3_bucket) == ([], [])


@pytest.mark.parametrize(
    "tokenizer_config",
    [{"tokenizer_class": "TransfoXLTokenizer"}, {"pretrained_vocab_file": "notes.txt"}],
    ids=["transfo-xl", "vocab-file-key"],
)
def test_a_tokenizer_that_unpickles_its_vocabulary_is_refused_before_any_upload(
    hub, s3, s3_bucket, tokenizer_config
):
    """transformers 4.26 (the py39 image) pickle.loads TransfoXL's vocabulary (CVE-2023-7018)."""
    files = {**TINY_FILES, "tokenizer_config.json": json.dumps(tokenizer_config).encode()}
    hub.register(make_repo("test-org/pickled-vocab", files))
    with pytest.raises(LoaderError, match="step 'check-model-code'.*with pickle"):
        handler(hub_event(s3_bucket, model_id="test-org/pickled-vocab"), None)
    assert leftovers(s3, s3_bucket) == ([], [])


def test_a_tokenizer_config_over_a_mebibyte_is_read_and_packaged(hub, s3, s3_bucket):
    """Gemma 3's lists thousands of added tokens: over the 1 MiB other configs are held to."""
    added = {str(i): {"content": f"<unused{i}>", "special": False} for i in range(40_000)}
    document = {"tokenizer_class": "GemmaTokenizer", "added_tokens_decoder": added}
    data = json.dumps(document).encode()
    assert len(data) > 1024 * 1024
    hub.register(make_repo("test-org/many-tokens", {**TINY_FILES, "tokenizer_config.json": data}))
    built = handler(hub_event(s3_bucket, model_id="test-org/many-tokens"), None)
    assert built["model_data_url"].endswith("model.tar.gz")


def test_a_model_of_custom_code_is_refused_for_pytorch_before_any_upload(hub, s3, s3_bucket):
    # Preview leaves this to the loader for a sha pin it could not check (no Hub or token there).
    config = {"model_type": "bert", "auto_map": {"AutoModel": "org/code--modeling.Model"}}
    files = {**TINY_FILES, "config.json": json.dumps(config).encode()}
    hub.register(make_repo("test-org/custom-code", files))
    with pytest.raises(LoaderError, match="step 'check-model-code'.*maps AutoModel to 'org/code"):
        handler(hub_event(s3_bucket, model_id="test-org/custom-code"), None)
    assert leftovers(s3, s3_bucket) == ([], [])


def test_missing_inference_script_fails_clearly_before_any_io(hub, s3, s3_bucket, monkeypatch):
    monkeypatch.setattr(loader.version, "ENTRY_SCRIPT", "gone.py")
    loader.version.format_version.cache_clear()
    try:
        with pytest.raises(LoaderError, match="step 'format-version'.*gone.py is missing"):
            handler(hub_event(s3_bucket), None)
    finally:
        loader.version.format_version.cache_clear()
    assert hub.switches.requests == []
    assert leftovers(s3, s3_bucket) == ([], [])


def test_invalid_event_is_rejected_before_any_io(hub, s3_bucket):
    with pytest.raises(EventError, match="'revision'"):
        handler(hub_event(s3_bucket, revision="bad revision!"), None)
    assert hub.switches.requests == []


def test_gated_repo_with_token_from_secrets_manager_is_packaged(hub, aws, s3_bucket):
    hub.register(tiny_repo(gated=True))
    secrets = aws.client("secretsmanager")
    arn = secrets.create_secret(Name=f"hf-token-{s3_bucket}", SecretString=VALID_TOKEN)["ARN"]
    try:
        event = hub_event(s3_bucket, model_id=TINY_MODEL_ID, hf_token_secret_arn=arn)
        result = handler(event, None)
    finally:
        secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    assert "model.safetensors" in result["files"]


def test_a_token_secret_encrypted_with_a_customer_managed_key_is_read(hub, aws, s3_bucket):
    """The loader role's kms:Decrypt via Secrets Manager (components/iam.py) is for this path."""
    hub.register(tiny_repo(gated=True))
    key_id = aws.client("kms").create_key(Description="hub token key")["KeyMetadata"]["KeyId"]
    secrets = aws.client("secretsmanager")
    arn = secrets.create_secret(
        Name=f"hf-token-cmk-{s3_bucket}", SecretString=VALID_TOKEN, KmsKeyId=key_id
    )["ARN"]
    try:
        assert secrets.describe_secret(SecretId=arn)["KmsKeyId"] == key_id
        result = handler(
            hub_event(s3_bucket, model_id=TINY_MODEL_ID, hf_token_secret_arn=arn), None
        )
    finally:
        secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    assert "model.safetensors" in result["files"]


def test_gated_repo_with_token_in_the_event_is_packaged(hub, s3_bucket, aws):
    hub.register(tiny_repo(gated=True))
    result = handler(hub_event(s3_bucket, model_id=TINY_MODEL_ID, hf_token=VALID_TOKEN), None)
    assert result["files"] == sorted(
        [*code_files(), "config.json", "model.safetensors", "modules.json", "tokenizer.json"]
    )


def test_unreadable_token_secret_names_the_secret(hub, aws, s3_bucket):
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:absent-AbCdEf"
    with pytest.raises(LoaderError, match="step 'read-token-secret'.*absent-AbCdEf"):
        handler(hub_event(s3_bucket, hf_token_secret_arn=arn), None)


def test_failed_run_leaves_no_thread_running(hub, s3_bucket, monkeypatch):
    monkeypatch.setattr(loader.hub, "RETRY_BASE_SECONDS", 0.0)
    hub.register(large_repo())
    hub.switches.cut_file = "model.safetensors"
    before = set(threading.enumerate())
    with pytest.raises(DownloadError):
        handler(hub_event(s3_bucket, model_id="test-org/large-weights"), None)
    # The Hub fixture's request threads may still be finishing; none of the loader's may remain.
    left = [t.name for t in set(threading.enumerate()) - before if not t.name.startswith("Thread-")]
    assert left == []


def _repo_with_modules(model_id: str, modules: list[dict], extra: dict | None = None):
    files = dict(TINY_FILES)
    files["modules.json"] = json.dumps(modules).encode()
    files.update(extra or {})
    return make_repo(model_id, files)


_TRANSFORMER = {
    "idx": 0,
    "name": "0",
    "path": "",
    "type": "sentence_transformers.models.Transformer",
}


@pytest.mark.parametrize(
    "module_type",
    ["sentence_transformers.models.LayerNorm", "my_org.custom_st.Transformer"],
    ids=["unsupported-kind", "custom-code"],
)
def test_unsupported_module_is_refused_before_any_upload_naming_it(hub, s3, s3_bucket, module_type):
    module = {"idx": 1, "name": "1", "path": "1_Custom", "type": module_type}
    repo = hub.register(_repo_with_modules("test-org/custom-modules", [_TRANSFORMER, module]))
    with pytest.raises(UnsupportedModules) as caught:
        handler(hub_event(s3_bucket, model_id="test-org/custom-modules"), None)
    message = str(caught.value)
    assert "step 'check-modules'" in message and "file 'modules.json'" in message
    assert f"{module_type} (1_Custom)" in message
    assert "['Transformer', 'Pooling', 'Dense', 'Normalize']" in message
    assert leftovers(s3, s3_bucket) == ([], [])
    # Only the two small files checked before any upload: config.json, then modules.json.
    assert hub.downloads() == [
        f"/{repo.repo_id}/resolve/{repo.commit}/{name}" for name in ("config.json", "modules.json")
    ]


def test_dense_module_without_weights_is_refused_before_any_upload(hub, s3, s3_bucket):
    pooling = {"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}
    dense = {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}
    extra = {
        "1_Pooling/config.json": b'{"pooling_mode": "mean"}',
        "2_Dense/config.json": b'{"in_features": 8, "out_features": 4}',
    }
    modules = [_TRANSFORMER, pooling, dense]
    hub.register(_repo_with_modules("test-org/dense-no-weights", modules, extra))
    with pytest.raises(UnsupportedModules, match=r"'2_Dense' lacks.*2_Dense/model\.safetensors"):
        handler(hub_event(s3_bucket, model_id="test-org/dense-no-weights"), None)
    assert leftovers(s3, s3_bucket) == ([], [])


def test_dense_before_pooling_is_refused_before_any_upload_as_the_container_would(
    hub, s3, s3_bucket
):
    dense = {"idx": 1, "name": "1", "path": "1_Dense", "type": "sentence_transformers.models.Dense"}
    pooling = {"idx": 2, "path": "2_Pooling", "type": "sentence_transformers.models.Pooling"}
    extra = {
        "1_Dense/config.json": b'{"in_features": 8, "out_features": 4}',
        "1_Dense/model.safetensors": b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ",
        "2_Pooling/config.json": b'{"pooling_mode": "mean"}',
    }
    hub.register(_repo_with_modules("test-org/dense-first", [_TRANSFORMER, dense, pooling], extra))
    with pytest.raises(UnsupportedModules) as caught:
        handler(hub_event(s3_bucket, model_id="test-org/dense-first"), None)
    message = str(caught.value)
    assert "step 'check-modules'" in message and "file 'modules.json'" in message
    assert "Dense modules must come after Pooling and before Normalize" in message
    assert leftovers(s3, s3_bucket) == ([], [])


def test_malformed_modules_json_is_refused_before_any_upload(hub, s3, s3_bucket):
    hub.register(make_repo("test-org/bad-modules", {**TINY_FILES, "modules.json": b"{not json"}))
    with pytest.raises(UnsupportedModules, match="step 'check-modules'.*not valid JSON"):
        handler(hub_event(s3_bucket, model_id="test-org/bad-modules"), None)
    assert leftovers(s3, s3_bucket) == ([], [])
