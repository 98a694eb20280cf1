"""Shared helpers for the loader tests (repos to register, archive inspection, leftovers)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from loader.version import container_code
from tests.fixtures.hub import REFERENCE_MODEL_ID, HubRepo, make_repo, reference_files


@contextmanager
def packaged_once(
    moto_server: Any, hub_server: Any, repo: HubRepo, event: Callable[[str], dict[str, Any]]
) -> Iterator[tuple[dict[str, Any], bytes, Any, str]]:
    """(result, archive, s3 client, bucket) of the loader run on `event(bucket)` for `repo`.

    For module-scoped fixtures: boto3 and the Hub client pointed at the servers, a fresh bucket,
    everything removed after.
    """
    import pytest

    from loader.handler import handler
    from tests.fixtures.aws import point_boto3_at

    with pytest.MonkeyPatch.context() as patch:
        point_boto3_at(moto_server, patch)
        patch.setenv("HF_ENDPOINT", hub_server.url)
        hub_server.reset()
        hub_server.register(repo)
        s3 = moto_server.client("s3")
        bucket = f"test-packaged-{uuid.uuid4().hex[:12]}"
        s3.create_bucket(Bucket=bucket)
        try:
            result = handler(event(bucket), None)
            yield result, read_object(s3, result["model_data_url"]), s3, bucket
        finally:
            remove_bucket(s3, bucket)
            hub_server.reset()


def remove_bucket(s3: Any, bucket: str) -> None:
    """Delete a test bucket and every object in it."""
    for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=item["Key"])
    s3.delete_bucket(Bucket=bucket)


TINY_MODEL_ID = "test-org/tiny-embedder"
TINY_FILES = {
    "config.json": b'{"model_type": "bert", "hidden_size": 8}',
    "tokenizer.json": b'{"version": "1.0"}',
    "modules.json": b'[{"path": "", "type": "sentence_transformers.models.Transformer"}]',
    "model.safetensors": b"\x08\x00\x00\x00\x00\x00\x00\x00{}      " + b"\x01" * 1000,
    "README.md": b"# tiny",
    "onnx/model.onnx": b"onnx bytes",
}


# A repo laid out as the Hub's popular embedding repos are: PyTorch weights, the ONNX export
# and the variants the ONNX engine must never package (these are placeholders, never fetched).
ONNX_MODEL_ID = "test-org/minilm-with-onnx"
ONNX_VARIANTS = {
    "onnx/model_O1.onnx": b"optimized graph, never packaged",
    "onnx/model_O4.onnx": b"optimized graph, never packaged",
    "onnx/model_qint8_avx512_vnni.onnx": b"quantized graph, never packaged",
    "onnx/model_quint8_avx2.onnx": b"quantized graph, never packaged",
    "openvino/openvino_model.xml": b"<net/>",
    "openvino/openvino_model.bin": b"openvino weights, never packaged",
}


# What an ONNX archive of the reference model holds besides code/: the sentence-transformers
# files and the one graph (no PyTorch weights, variants, OpenVINO or README).
ONNX_ARCHIVE_MODEL_FILES = (
    "1_Pooling/config.json",
    "config.json",
    "config_sentence_transformers.json",
    "modules.json",
    "onnx/model.onnx",
    "sentence_bert_config.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
)


def onnx_repo(
    export: Path, model_id: str = ONNX_MODEL_ID, files: dict[str, bytes | Path] | None = None
) -> HubRepo:
    """The reference model's files, its ONNX export at onnx/model.onnx, and the variants."""
    extra = {"onnx/model.onnx": export, **ONNX_VARIANTS, **(files or {})}
    return make_repo(model_id, {**reference_files(), **extra})


def hub_event(bucket: str, model_id: str = REFERENCE_MODEL_ID, **fields: Any) -> dict[str, Any]:
    return {"model_id": model_id, "revision": "main", "bucket": bucket, "key_prefix": "models/"} | (
        fields
    )


def tiny_repo(**kwargs: Any) -> HubRepo:
    return make_repo(TINY_MODEL_ID, TINY_FILES, **kwargs)


def large_repo(model_id: str = "test-org/large-weights", weights_mib: int = 20) -> HubRepo:
    """Weights spanning several 8 MiB parts, so failures happen with parts already uploaded."""
    files = dict(TINY_FILES)
    files["model.safetensors"] = os.urandom(weights_mib * 1024 * 1024)
    return make_repo(model_id, files)


def read_object(s3: Any, model_data_url: str) -> bytes:
    bucket, key = model_data_url.removeprefix("s3://").split("/", 1)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def members(archive: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return tar.getmembers()


def member_bytes(archive: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return handle.read()


def leftovers(s3: Any, bucket: str) -> tuple[list[str], list[str]]:
    """(object keys, keys with open multipart uploads) — both must be empty after a failure."""
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    uploads = [item["Key"] for item in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    return keys, uploads


def code_members() -> list[str]:
    """The archive members under `code/`, folders included, sorted as archives list them."""
    files = list(container_code())
    folders = {
        "/".join(parts[:depth])
        for parts in (name.split("/") for name in files)
        for depth in range(1, len(parts))
    }
    return sorted(folders.union(files), key=lambda name: name.encode("utf-8"))


def code_files() -> list[str]:
    """The files under `code/` (what a loader result's `files` lists)."""
    return sorted(container_code())


# The DLC's way: `code/` first on sys.path, `inference` imported from it, the hooks called.
_UNPACKED_CHILD = """
import importlib.util, json, os, sys
code = os.path.join(sys.argv[1], "code")
sys.path.insert(0, code)
spec = importlib.util.spec_from_file_location("inference", os.path.join(code, "inference.py"))
inference = importlib.util.module_from_spec(spec)
sys.modules["inference"] = inference
spec.loader.exec_module(inference)
model = inference.model_fn(sys.argv[1])
request = inference.input_fn(json.dumps({"inputs": json.loads(sys.argv[2])}), "application/json")
body = inference.output_fn(inference.predict_fn(request, model), "application/json")
runtime = sys.modules.get("onnxruntime")
print(json.dumps({"runtime": runtime.__file__ if runtime else None,
                  "version": runtime.__version__ if runtime else None,
                  "engine": model.engine.name, "graph": getattr(model.engine, "graph", None),
                  "response": json.loads(body)}))
"""


def run_unpacked(archive: bytes, destination: Path, texts: list[str]) -> dict[str, Any]:
    """Unpack `archive` into `destination` and embed `texts` with its code in a fresh process.

    The report names the engine and the onnxruntime that was imported (its file), and holds the
    response; this interpreter is the test venv's, so only `code/` first on sys.path puts the
    archive's own runtime ahead of the venv's.
    """
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(destination, filter="data")
    completed = subprocess.run(
        [sys.executable, "-c", _UNPACKED_CHILD, str(destination), json.dumps(texts)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])
