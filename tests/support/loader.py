"""Shared helpers for the loader tests (repos to register, archive inspection, leftovers)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Any

from loader.version import container_code
from tests.fixtures.hub import REFERENCE_MODEL_ID, HubRepo, make_repo, reference_files

TINY_MODEL_ID = "test-org/tiny-embedder"
TINY_FILES = {
    "config.json": b'{"model_type": "bert", "hidden_size": 8}',
    "tokenizer.json": b'{"version": "1.0"}',
    "modules.json": b"[]",
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
