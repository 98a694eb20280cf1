"""Engine onnx end to end: the Hub fixture's ONNX repo → real loader → moto S3 → unpacked archive.

The archive must carry exactly the ONNX export (no PyTorch weights, no variants) and ONNX Runtime
in `code/`, and inference.py run from the unpacked archive must import that runtime (not the test
venv's) and give sentence-transformers' vectors.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from facts.onnx_runtime import RuntimeWheel
from loader import graph_fusion, package
from loader.errors import LoaderError
from loader.handler import handler
from loader.vendored_runtime import WHEEL_CACHE_VARIABLE, wheel_cache
from loader.version import format_version
from tests.fixtures.aws import AwsEndpoint
from tests.fixtures.hub import REFERENCE_MODEL_ID, HubServer, make_repo
from tests.support.loader import (
    ONNX_ARCHIVE_MODEL_FILES,
    ONNX_MODEL_ID,
    ONNX_VARIANTS,
    TINY_FILES,
    hub_event,
    leftovers,
    member_bytes,
    members,
    onnx_repo,
    packaged_once,
    read_object,
    run_unpacked,
)
from tests.support.models import min_cosine_to_reference
from tests.support.onnx_graphs import graph_reading, tiny_graph

SENTENCES = ["A man is eating food.", "The girl is carrying a baby.", "word " * 400, "x"]


@dataclass(frozen=True)
class OnnxArtifact:
    result: dict
    archive: bytes
    bucket: str
    downloads: list[str]
    runtime: RuntimeWheel


def onnx_event(bucket: str, runtime: RuntimeWheel, **fields: object) -> dict:
    return hub_event(
        bucket, model_id=ONNX_MODEL_ID, engine="onnx", container_python=runtime.python, **fields
    )


@pytest.fixture(scope="module")
def packaged(
    moto_server: AwsEndpoint,
    hub_server: HubServer,
    reference_onnx_export: Path,
    this_python_runtime: RuntimeWheel,
) -> Iterator[OnnxArtifact]:
    """The ONNX repo packaged once for this module with engine onnx (bucket removed after)."""
    repo = onnx_repo(reference_onnx_export)
    event = partial(onnx_event, runtime=this_python_runtime)
    with packaged_once(moto_server, hub_server, repo, event) as (result, archive, _, bucket):
        yield OnnxArtifact(result, archive, bucket, hub_server.downloads(), this_python_runtime)


def member_names(archive: bytes) -> list[str]:
    return [member.name for member in members(archive)]


def test_onnx_archive_carries_the_export_and_no_pytorch_weights_nor_variants(packaged):
    names = member_names(packaged.archive)
    assert "onnx/model.onnx" in names
    assert "model.safetensors" not in names
    assert not set(ONNX_VARIANTS) & set(names)
    assert not [name for name in names if name.startswith("openvino")]
    model_files = [n for n in packaged.result["files"] if not n.startswith("code/")]
    assert model_files == list(ONNX_ARCHIVE_MODEL_FILES)


def test_only_the_needed_files_are_downloaded(packaged):
    # Download paths are /{repo}/resolve/{commit}/{file}.
    fetched = {path.split("/resolve/", 1)[1].split("/", 1)[1] for path in packaged.downloads}
    assert "onnx/model.onnx" in fetched
    assert not fetched & {"model.safetensors", *ONNX_VARIANTS}


def test_onnx_archive_vendors_the_runtime_for_the_containers_python(packaged):
    names = member_names(packaged.archive)
    tag = packaged.runtime.python.replace(".", "")
    assert "code/onnxruntime/__init__.py" in names
    binding = f"onnxruntime_pybind11_state.cpython-{tag}-x86_64-linux-gnu.so"
    assert f"code/onnxruntime/capi/{binding}" in names
    assert "code/onnxruntime/LICENSE" in names
    runtime = [name for name in names if name.startswith("code/onnxruntime")]
    assert not [name for name in runtime if "/tools/" in name or "libonnxruntime.so" in name]


def test_onnx_archive_lives_in_the_engine_folder_and_names_the_runtime(packaged):
    variant = f"onnx-py{packaged.runtime.python.replace('.', '')}"
    assert packaged.result["model_data_url"].split("/")[-3] == variant
    assert packaged.result["format_version"] == format_version(packaged.runtime, fusion=True)
    assert packaged.result["format_version"] != format_version(packaged.runtime)
    assert packaged.result["format_version"] != format_version()


def test_the_archive_carries_the_export_fused_as_the_hubs_o2(packaged, reference_onnx_o2: Path):
    """Fused when packaged: the bytes scripts/export_onnx.py --fuse makes (6 Attention, ...)."""
    (graph,) = [m for m in members(packaged.archive) if m.name == "onnx/model.onnx"]
    fused = reference_onnx_o2.read_bytes()
    assert member_bytes(packaged.archive, "onnx/model.onnx") == fused
    assert packaged.result["weights_bytes"] == graph.size == len(fused)


def test_inference_from_the_unpacked_archive_imports_the_vendored_runtime(packaged, tmp_path: Path):
    report = run_unpacked(packaged.archive, tmp_path, SENTENCES)
    assert report["engine"] == "onnx"
    assert report["runtime"] == str(tmp_path / "code" / "onnxruntime" / "__init__.py")
    assert report["version"] == packaged.runtime.version
    assert min_cosine_to_reference(report["response"]["embeddings"], SENTENCES) >= 0.9999


def test_same_inputs_give_the_same_archive_bytes(packaged, hub, reference_onnx_export, aws):
    hub.register(onnx_repo(reference_onnx_export))
    s3 = aws.client("s3")
    bucket = f"test-onnx-again-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    try:
        again = handler(onnx_event(bucket, packaged.runtime), None)
        assert again["sha256"] == packaged.result["sha256"]
        assert (
            hashlib.sha256(read_object(s3, again["model_data_url"])).hexdigest()
            == (packaged.result["sha256"])
        )
    finally:
        for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=item["Key"])
        s3.delete_bucket(Bucket=bucket)


def test_onnx_fusion_false_ships_the_export_as_the_repository_has_it_in_a_folder_of_its_own(
    packaged, hub, s3_bucket, aws, reference_onnx_export: Path
):
    hub.register(onnx_repo(reference_onnx_export))
    result = handler(onnx_event(s3_bucket, packaged.runtime, onnx_fusion=False), None)
    archive = read_object(aws.client("s3"), result["model_data_url"])
    assert member_bytes(archive, "onnx/model.onnx") == reference_onnx_export.read_bytes()
    variant = f"onnx-unfused-py{packaged.runtime.python.replace('.', '')}"
    assert result["model_data_url"].split("/")[-3] == variant
    assert result["format_version"] == format_version(packaged.runtime)


def test_a_graph_over_the_fusion_bound_streams_into_the_archive_unfused(
    hub, s3_bucket, aws, reference_onnx_export: Path, this_python_runtime, monkeypatch, caplog
):
    monkeypatch.setattr(package, "MAX_FUSED_GRAPH_BYTES", 1024 * 1024)
    monkeypatch.setattr(package, "fuse_graph", None)  # never reached: nothing is downloaded
    hub.register(onnx_repo(reference_onnx_export))
    with caplog.at_level("INFO", logger="loader.package"):
        result = handler(onnx_event(s3_bucket, this_python_runtime), None)
    archive = read_object(aws.client("s3"), result["model_data_url"])
    assert member_bytes(archive, "onnx/model.onnx") == reference_onnx_export.read_bytes()
    assert "onnx/model.onnx packaged unfused: it is 9" in caplog.text


def test_a_loader_without_the_pinned_optimizer_fails_and_writes_nothing(
    hub, s3_bucket, aws, reference_onnx_export: Path, this_python_runtime, monkeypatch
):
    """Runner local in a Python without onnx 0.0.1: an archive made unfused would differ."""
    monkeypatch.setattr(graph_fusion, "FUSION_PACKAGES", (("onnx", "0.0.1"),))
    hub.register(onnx_repo(reference_onnx_export))
    with pytest.raises(
        LoaderError, match=r"needs onnx==0\.0\.1; this Python has onnx 1"
    ) as failure:
        handler(onnx_event(s3_bucket, this_python_runtime), None)
    assert failure.value.step == "fuse-graph"
    assert leftovers(aws.client("s3"), s3_bucket) == ([], [])


def test_torch_and_onnx_archives_of_one_revision_never_share_a_key(
    hub, s3_bucket, aws, this_python_runtime
):
    files = {**TINY_FILES, "onnx/model.onnx": tiny_graph()}
    hub.register(make_repo(ONNX_MODEL_ID, files))
    onnx = handler(onnx_event(s3_bucket, this_python_runtime), None)
    torch = handler(hub_event(s3_bucket, model_id=ONNX_MODEL_ID), None)
    assert onnx["model_data_url"] != torch["model_data_url"]
    assert onnx["revision"] == torch["revision"]
    keys, _ = leftovers(aws.client("s3"), s3_bucket)
    assert len([key for key in keys if key.endswith("model.tar.gz")]) == 2
    assert "onnx/model.onnx" not in torch["files"]
    assert "model.safetensors" not in onnx["files"]


def test_external_data_of_a_large_graph_is_packaged_beside_it(hub, s3_bucket, this_python_runtime):
    files = {
        **TINY_FILES,
        "onnx/model.onnx": b"graph",
        "onnx/model.onnx_data": b"\x00" * 4096,
        "onnx/model_O2.onnx": b"variant",
    }
    hub.register(make_repo(ONNX_MODEL_ID, files))
    result = handler(onnx_event(s3_bucket, this_python_runtime), None)
    onnx_files = [name for name in result["files"] if name.startswith("onnx/")]
    assert onnx_files == ["onnx/model.onnx", "onnx/model.onnx_data"]
    assert result["weights_bytes"] == len(b"graph") + 4096


def test_a_graph_reading_a_file_of_the_container_is_refused_before_any_upload(
    hub, aws, s3_bucket, this_python_runtime
):
    """ONNX Runtime reads an external tensor from any path it names, /etc/passwd included."""
    hub.register(
        make_repo(ONNX_MODEL_ID, {**TINY_FILES, "onnx/model.onnx": graph_reading("/etc/passwd")})
    )
    with pytest.raises(LoaderError, match=r"step 'check-graph'.*reads tensors from \['/etc/passwd"):
        handler(onnx_event(s3_bucket, this_python_runtime), None)
    assert leftovers(aws.client("s3"), s3_bucket) == ([], [])


def test_engine_onnx_without_the_export_names_the_file_and_writes_nothing(
    hub, aws, s3_bucket, this_python_runtime
):
    with pytest.raises(
        LoaderError,
        match=r"no ONNX export the engine can run: onnx/model.onnx is not in the repository",
    ) as failure:
        handler(
            hub_event(
                s3_bucket,
                model_id=REFERENCE_MODEL_ID,
                engine="onnx",
                container_python=this_python_runtime.python,
            ),
            None,
        )
    assert failure.value.step == "select-files"
    assert leftovers(aws.client("s3"), s3_bucket) == ([], [])


def test_a_missing_runtime_wheel_fails_before_any_request(
    hub, aws, s3_bucket, this_python_runtime, tmp_path, monkeypatch
):
    monkeypatch.setenv(WHEEL_CACHE_VARIABLE, str(tmp_path / "empty"))
    with pytest.raises(LoaderError, match=this_python_runtime.filename) as failure:
        handler(onnx_event(s3_bucket, this_python_runtime), None)
    assert failure.value.step == "vendor-runtime"
    assert hub.switches.requests == []
    assert leftovers(aws.client("s3"), s3_bucket) == ([], [])


def test_a_wheel_that_is_not_the_pinned_file_is_refused(
    hub, aws, s3_bucket, this_python_runtime, tmp_path, monkeypatch
):
    altered = tmp_path / this_python_runtime.filename
    shutil.copyfile(wheel_cache() / this_python_runtime.filename, altered)
    with altered.open("r+b") as handle:
        handle.seek(100)
        handle.write(b"\xff")
    monkeypatch.setenv(WHEEL_CACHE_VARIABLE, str(tmp_path))
    with pytest.raises(LoaderError, match=f"not the {this_python_runtime.sha256}"):
        handler(onnx_event(s3_bucket, this_python_runtime), None)
    assert leftovers(aws.client("s3"), s3_bucket) == ([], [])
