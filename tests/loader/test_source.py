"""Second source: a training job's model.tar.gz in S3 repackaged with our inference code."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from facts.artifact_keys import source_revision
from loader.errors import SourceArchiveError
from loader.handler import handler
from loader.modules import UnsupportedModules
from loader.version import container_code, format_version
from tests.support.loader import code_members, leftovers, member_bytes, members, read_object

MODEL_ID = "my-org/finetuned-minilm"
SOURCE_KEY = "training/job-1/output/model.tar.gz"


def training_output(
    extra: list[tarfile.TarInfo] | None = None,
    mtime: int = 1_700_000_000,
    config: bytes = b'{"model_type": "bert"}',
    files: dict[str, bytes] | None = None,
    with_weights: bool = True,
) -> bytes:
    """An archive shaped like SageMaker training output: './' names, real mtimes and owners."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        folder = tarfile.TarInfo("./1_Pooling")
        folder.type, folder.mode, folder.mtime = tarfile.DIRTYPE, 0o775, mtime
        tar.addfile(folder)
        for name, data in [
            ("./config.json", config),
            *([("./model.safetensors", b"\x02" * 4096)] if with_weights else []),
            ("./1_Pooling/config.json", b'{"pooling_mode_mean_tokens": true}'),
            ("./code/inference.py", b"# stale script from training\n"),
            *(files or {}).items(),
        ]:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.uid, info.uname, info.mode = (
                len(data),
                mtime,
                1000,
                "sm",
                0o600,
            )
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(info)
    return out.getvalue()


def source_event(bucket: str, source_url: str, **fields) -> dict:
    return {"model_id": MODEL_ID, "bucket": bucket, "source_model_data_url": source_url} | fields


@pytest.fixture
def source(aws, s3_bucket):
    s3 = aws.client("s3")
    s3.put_object(Bucket=s3_bucket, Key=SOURCE_KEY, Body=training_output())
    return s3, f"s3://{s3_bucket}/{SOURCE_KEY}"


def test_repackaged_archive_keeps_source_order_and_appends_code(source, s3_bucket):
    s3, url = source
    result = handler(source_event(s3_bucket, url), None)
    archive = read_object(s3, result["model_data_url"])
    assert [m.name for m in members(archive)] == [
        "config.json",
        "model.safetensors",
        "1_Pooling",
        "1_Pooling/config.json",
        *code_members(),
    ]
    for name, data in container_code().items():
        assert member_bytes(archive, name) == data, name
    assert member_bytes(archive, "model.safetensors") == b"\x02" * 4096


def test_repackaged_entries_have_normalised_metadata(source, s3_bucket):
    s3, url = source
    archive = read_object(s3, handler(source_event(s3_bucket, url), None)["model_data_url"])
    for member in members(archive):
        assert (member.mtime, member.uid, member.uname) == (0, 0, ""), member.name
        assert member.mode == (0o755 if member.isdir() else 0o644), member.name


def test_artifact_is_keyed_by_the_source_objects_identity(source, s3_bucket):
    s3, url = source
    etag = s3.head_object(Bucket=s3_bucket, Key=SOURCE_KEY)["ETag"]
    revision = source_revision(url, etag, None)
    result = handler(source_event(s3_bucket, url), None)
    assert result["revision"] == revision
    assert result["model_data_url"] == (
        f"s3://{s3_bucket}/models/{MODEL_ID}/{revision}/{format_version()}/model.tar.gz"
    )
    assert result["weights_bytes"] == 4096


def test_same_source_content_gives_identical_bytes_whatever_its_timestamps(aws, s3_bucket):
    s3 = aws.client("s3")
    s3.put_object(Bucket=s3_bucket, Key="a/model.tar.gz", Body=training_output(mtime=1))
    s3.put_object(Bucket=s3_bucket, Key="b/model.tar.gz", Body=training_output(mtime=2))
    first = handler(source_event(s3_bucket, f"s3://{s3_bucket}/a/model.tar.gz"), None)
    second = handler(source_event(s3_bucket, f"s3://{s3_bucket}/b/model.tar.gz"), None)
    assert first["sha256"] == second["sha256"]
    assert first["model_data_url"] != second["model_data_url"]


def test_rerun_on_the_same_source_returns_the_recorded_artifact(source, s3_bucket):
    _, url = source
    first = handler(source_event(s3_bucket, url), None)
    assert handler(source_event(s3_bucket, url), None) == first


def test_missing_source_names_the_url_and_creates_nothing(aws, s3_bucket):
    url = f"s3://{s3_bucket}/nowhere/model.tar.gz"
    with pytest.raises(SourceArchiveError, match="step 'read-source'.*nowhere/model.tar.gz"):
        handler(source_event(s3_bucket, url), None)
    assert leftovers(aws.client("s3"), s3_bucket) == ([], [])


def test_source_with_a_symlink_is_refused_and_the_upload_aborted(aws, s3_bucket):
    link = tarfile.TarInfo("./weights-link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    s3 = aws.client("s3")
    s3.put_object(Bucket=s3_bucket, Key=SOURCE_KEY, Body=training_output(extra=[link]))
    with pytest.raises(SourceArchiveError, match="'./weights-link' is a link"):
        handler(source_event(s3_bucket, f"s3://{s3_bucket}/{SOURCE_KEY}"), None)
    assert leftovers(s3, s3_bucket) == ([SOURCE_KEY], [])


def test_source_of_a_model_that_is_its_repositorys_code_is_refused_and_aborted(aws, s3_bucket):
    # PyTorch would build transformers' own "bert" in its place: wrong vectors, no error.
    config = b'{"model_type": "bert", "auto_map": {"AutoModel": "org/code--modeling.Model"}}'
    s3 = aws.client("s3")
    s3.put_object(Bucket=s3_bucket, Key=SOURCE_KEY, Body=training_output(config=config))
    with pytest.raises(SourceArchiveError, match="file 'config.json': its config.json maps "):
        handler(source_event(s3_bucket, f"s3://{s3_bucket}/{SOURCE_KEY}"), None)
    assert leftovers(s3, s3_bucket) == ([SOURCE_KEY], [])


def test_source_escaping_the_root_is_refused(aws, s3_bucket):
    escape = tarfile.TarInfo("../outside.json")
    s3 = aws.client("s3")
    s3.put_object(Bucket=s3_bucket, Key=SOURCE_KEY, Body=training_output(extra=[escape]))
    with pytest.raises(SourceArchiveError, match="escapes the archive root"):
        handler(source_event(s3_bucket, f"s3://{s3_bucket}/{SOURCE_KEY}"), None)
    assert leftovers(s3, s3_bucket) == ([SOURCE_KEY], [])


def test_source_that_is_not_gzip_is_refused_and_the_upload_aborted(aws, s3_bucket):
    s3 = aws.client("s3")
    s3.put_object(Bucket=s3_bucket, Key=SOURCE_KEY, Body=b"not a tarball at all")
    with pytest.raises(SourceArchiveError, match="cannot stream .* as a gzip'd tar"):
        handler(source_event(s3_bucket, f"s3://{s3_bucket}/{SOURCE_KEY}"), None)
    assert leftovers(s3, s3_bucket) == ([SOURCE_KEY], [])


def test_source_cut_inside_a_file_is_refused_and_the_upload_aborted(aws, s3_bucket):
    weights = tarfile.TarInfo("./model.safetensors")
    data = os.urandom(3 * 1024 * 1024)  # incompressible: the cut lands inside its data
    weights.size = len(data)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        tar.addfile(weights, io.BytesIO(data))
    s3 = aws.client("s3")
    s3.put_object(Bucket=s3_bucket, Key=SOURCE_KEY, Body=out.getvalue()[: 2 * 1024 * 1024])
    with pytest.raises(SourceArchiveError, match="step 'read-source'.*cannot stream"):
        handler(source_event(s3_bucket, f"s3://{s3_bucket}/{SOURCE_KEY}"), None)
    assert leftovers(s3, s3_bucket) == ([SOURCE_KEY], [])


def test_python_files_and_leftovers_of_a_source_are_left_out(aws, s3_bucket):
    """The worker has the model folder on its import path: a sitecustomize.py there would run."""
    files = {
        "./sitecustomize.py": b"import os; os.system('id')\n",
        "./accelerate/__init__.py": b"",
        "./checkpoint-500/model.safetensors": b"\x02" * 64,
        "./training_args.bin": b"PK pickle",
        "./1_Pooling/helper.so": b"\x7fELF",
    }
    s3 = aws.client("s3")
    s3.put_object(Bucket=s3_bucket, Key=SOURCE_KEY, Body=training_output(files=files))
    result = handler(source_event(s3_bucket, f"s3://{s3_bucket}/{SOURCE_KEY}"), None)
    names = [m.name for m in members(read_object(s3, result["model_data_url"]))]
    assert [name for name in names if not name.startswith("code")] == [
        "config.json",
        "model.safetensors",
        "1_Pooling",
        "1_Pooling/config.json",
    ]


def test_a_source_whose_modules_live_outside_module_folders_is_refused(aws, s3_bucket):
    modules = (
        b'[{"path": "transformer", "type": "sentence_transformers.models.Transformer"},'
        b' {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]'
    )
    files = {"./modules.json": modules, "./transformer/pytorch_model.bin": b"PK pickle"}
    s3 = aws.client("s3")
    s3.put_object(Bucket=s3_bucket, Key=SOURCE_KEY, Body=training_output(files=files))
    with pytest.raises(UnsupportedModules, match="Transformer module in 'transformer' is not at"):
        handler(source_event(s3_bucket, f"s3://{s3_bucket}/{SOURCE_KEY}"), None)
    assert leftovers(s3, s3_bucket) == ([SOURCE_KEY], [])


def test_a_source_index_naming_another_file_than_its_shards_is_refused(aws, s3_bucket):
    index = b'{"weight_map": {"a": "model-00001-of-00001.safetensors", "b": "notes.txt"}}'
    files = {
        "./model-00001-of-00001.safetensors": b"\x02" * 64,
        "./model.safetensors.index.json": index,
        "./notes.txt": b"PK a TorchScript archive",
    }
    s3 = aws.client("s3")
    s3.put_object(
        Bucket=s3_bucket, Key=SOURCE_KEY, Body=training_output(files=files, with_weights=False)
    )
    with pytest.raises(SourceArchiveError, match=r"sends tensors to \['notes.txt'\]"):
        handler(source_event(s3_bucket, f"s3://{s3_bucket}/{SOURCE_KEY}"), None)
    assert leftovers(s3, s3_bucket) == ([SOURCE_KEY], [])


def test_a_source_index_past_its_bound_is_refused_rather_than_passed_on_unread(aws, s3_bucket):
    files = {"./model.safetensors.index.json": b" " * (16 * 1024 * 1024 + 1)}
    s3 = aws.client("s3")
    s3.put_object(Bucket=s3_bucket, Key=SOURCE_KEY, Body=training_output(files=files))
    with pytest.raises(SourceArchiveError, match="over the 16777216 bytes such a file takes"):
        handler(source_event(s3_bucket, f"s3://{s3_bucket}/{SOURCE_KEY}"), None)
    assert leftovers(s3, s3_bucket) == ([SOURCE_KEY], [])


def test_a_source_pickle_beside_a_stray_shard_is_refused(aws, s3_bucket):
    """Without model.safetensors or its index, transformers loads the .bin, not the shard."""
    files = {
        "./model-00001-of-00002.safetensors": b"\x02" * 64,
        "./pytorch_model.bin": b"PK a TorchScript archive",
    }
    s3 = aws.client("s3")
    body = training_output(files=files, with_weights=False)
    s3.put_object(Bucket=s3_bucket, Key=SOURCE_KEY, Body=body)
    with pytest.raises(SourceArchiveError, match=r"weights only as pickles \(pytorch_model.bin\)"):
        handler(source_event(s3_bucket, f"s3://{s3_bucket}/{SOURCE_KEY}"), None)
    assert leftovers(s3, s3_bucket) == ([SOURCE_KEY], [])


def test_a_source_whose_prompts_the_container_would_refuse_is_refused(aws, s3_bucket):
    files = {"./config_sentence_transformers.json": b'{"default_prompt_name": "query"}'}
    s3 = aws.client("s3")
    s3.put_object(Bucket=s3_bucket, Key=SOURCE_KEY, Body=training_output(files=files))
    with pytest.raises(SourceArchiveError, match="default_prompt_name 'query' is not one of"):
        handler(source_event(s3_bucket, f"s3://{s3_bucket}/{SOURCE_KEY}"), None)
    assert leftovers(s3, s3_bucket) == ([SOURCE_KEY], [])


def test_a_leftover_index_beside_the_single_file_does_not_refuse_a_source(aws, s3_bucket):
    """save_pretrained leaves the old index behind when it saves unsharded over a sharded save."""
    stale = b'{"weight_map": {"a": "model-00001-of-00002.safetensors"}}'
    files = {"./model.safetensors.index.json": stale}
    s3 = aws.client("s3")
    s3.put_object(Bucket=s3_bucket, Key=SOURCE_KEY, Body=training_output(files=files))
    result = handler(source_event(s3_bucket, f"s3://{s3_bucket}/{SOURCE_KEY}"), None)
    assert "model.safetensors" in result["files"]
