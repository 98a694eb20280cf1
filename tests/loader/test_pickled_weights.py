"""Weights that are pickles only (loading one can run code) are refused unless trusted.

Pickles beside safetensors are never loaded, so they neither refuse a model nor ship; nor does
repository or source-archive code that the container would find on its path.
"""

from __future__ import annotations

import io
import tarfile

import pytest

from loader.errors import EventError, PickledWeights, SourceArchiveError
from loader.event import parse_event
from loader.handler import handler
from loader.selection import pickled_weights, pickled_weights_problem, select_files
from tests.fixtures.hub import make_repo
from tests.loader.test_selection import listing
from tests.support.loader import TINY_FILES, hub_event, leftovers

PICKLED_FILES = {
    **{name: data for name, data in TINY_FILES.items() if name != "model.safetensors"},
    "pytorch_model.bin": b"PK\x03\x04 a torch.save zip holding a pickle",
}


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (["config.json", "pytorch_model.bin"], ["pytorch_model.bin"]),
        (["model.safetensors", "pytorch_model.bin", "training_args.bin"], []),
        (["model.safetensors", "2_Dense/pytorch_model.bin"], ["2_Dense/pytorch_model.bin"]),
        (["model.safetensors", "2_Dense/model.safetensors", "2_Dense/pytorch_model.bin"], []),
        (
            [
                "pytorch_model.bin.index.json",
                "pytorch_model-00001-of-00002.bin",
                "pytorch_model-00002-of-00002.bin",
            ],
            2,
        ),
        # A shard without its index is never read: the .bin beside it is what transformers loads.
        (["model-00001-of-00002.safetensors", "pytorch_model.bin"], ["pytorch_model.bin"]),
        (
            [
                "model.safetensors",
                "2_Dense/model-00001-of-00001.safetensors",
                "2_Dense/pytorch_model.bin",
            ],
            ["2_Dense/pytorch_model.bin"],
        ),
        (["adapter_model.safetensors", "pytorch_model.bin"], ["pytorch_model.bin"]),
        (["model.safetensors", "checkpoint-500/pytorch_model.bin", "optimizer.pt"], []),
    ],
)
def test_pickles_are_the_weights_the_container_would_load(paths, expected):
    found = pickled_weights(paths)
    assert (len(found) if isinstance(expected, int) else found) == expected


def test_the_problem_names_the_file_and_the_way_out():
    problem = pickled_weights_problem("org/m at abc", ["config.json", "pytorch_model.bin"])
    assert problem is not None
    assert "pytorch_model.bin" in problem
    assert "allowPickledWeights: true" in problem
    assert "safetensors" in problem


def test_repository_python_files_are_never_packaged():
    paths = [
        item.path
        for item in select_files(
            "org/m",
            listing(
                "config.json",
                "model.safetensors",
                "flash_attn.py",
                "modeling_custom.py",
                "1_Pooling/config.json",
                "1_Pooling/sitecustomize.py",
            ),
        )
    ]
    assert paths == ["1_Pooling/config.json", "config.json", "model.safetensors"]


def test_event_field_must_be_a_bool():
    with pytest.raises(EventError, match="allow_pickled_weights"):
        parse_event({"model_id": "org/m", "bucket": "bkt", "allow_pickled_weights": "yes"})
    assert parse_event({"model_id": "org/m", "bucket": "bkt"}).allow_pickled_weights is False


def test_hub_repository_with_only_a_pickle_is_refused_before_any_upload(hub, aws, s3_bucket):
    hub.register(make_repo("test-org/pickled", PICKLED_FILES))
    with pytest.raises(PickledWeights, match=r"pytorch_model\.bin.*allowPickledWeights"):
        handler(hub_event(s3_bucket, model_id="test-org/pickled"), None)
    assert leftovers(aws.client("s3"), s3_bucket) == ([], [])


def test_hub_repository_with_only_a_pickle_is_packaged_when_trusted(hub, s3_bucket):
    hub.register(make_repo("test-org/pickled", PICKLED_FILES))
    event = hub_event(s3_bucket, model_id="test-org/pickled", allow_pickled_weights=True)
    result = handler(event, None)
    assert "pytorch_model.bin" in result["files"]


SOURCE_KEY = "training/job-1/output/model.tar.gz"


def source_archive(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def run_source(aws, bucket: str, files: dict[str, bytes], **fields) -> dict:
    aws.client("s3").put_object(Bucket=bucket, Key=SOURCE_KEY, Body=source_archive(files))
    event = {
        "model_id": "my-org/finetuned",
        "bucket": bucket,
        "source_model_data_url": f"s3://{bucket}/{SOURCE_KEY}",
    }
    return handler(event | fields, None)


def test_source_archive_with_only_a_pickle_is_refused_and_aborted(aws, s3_bucket):
    files = {"./pytorch_model.bin": b"pickle", "./config.json": b'{"model_type": "bert"}'}
    with pytest.raises(SourceArchiveError, match=r"pytorch_model\.bin.*allowPickledWeights"):
        run_source(aws, s3_bucket, files)
    assert leftovers(aws.client("s3"), s3_bucket) == ([SOURCE_KEY], [])


def test_source_archive_with_safetensors_after_its_pickles_is_repackaged(aws, s3_bucket):
    files = {
        "./pytorch_model.bin": b"pickle",
        "./training_args.bin": b"pickle",
        "./config.json": b'{"model_type": "bert"}',
        "./model.safetensors": b"\x02" * 64,
    }
    assert "model.safetensors" in run_source(aws, s3_bucket, files)["files"]


def test_source_archive_with_only_a_pickle_is_repackaged_when_trusted(aws, s3_bucket):
    files = {"./pytorch_model.bin": b"pickle", "./config.json": b'{"model_type": "bert"}'}
    result = run_source(aws, s3_bucket, files, allow_pickled_weights=True)
    assert "pytorch_model.bin" in result["files"]


def test_source_archive_code_folder_is_never_kept(aws, s3_bucket):
    files = {
        "./config.json": b'{"model_type": "bert"}',
        "./model.safetensors": b"\x02" * 64,
        "./code/requirements.txt": b"some-package\n",
        "./code/sitecustomize.py": b"import os\n",
    }
    shipped = run_source(aws, s3_bucket, files)["files"]
    assert "code/requirements.txt" not in shipped
    assert "code/sitecustomize.py" not in shipped
    assert "code/inference.py" in shipped
