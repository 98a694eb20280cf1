"""`onnxFile`: the stack asks for another of the repo's graphs (optimum's O2), and gets only it.

The Hub fixture's repo holds the reference export at onnx/model.onnx and the same export fused as
optimum's O2 at onnx/model_O2.onnx (made at test time by ONNX Runtime's transformer optimizer).
Asked for the O2 graph, the loader packages it alone, in a folder of its own, and inference.py,
run from the unpacked archive, loads it and gives sentence-transformers' vectors.
"""

from __future__ import annotations

import pytest

from loader.errors import EventError, LoaderError
from loader.event import parse_event
from loader.handler import handler
from tests.fixtures.hub import make_repo
from tests.support.loader import (
    ONNX_MODEL_ID,
    TINY_FILES,
    hub_event,
    leftovers,
    onnx_repo,
    read_object,
    run_unpacked,
)
from tests.support.models import min_cosine_to_reference
from tests.support.onnx_graphs import tiny_graph

O2 = "onnx/model_O2.onnx"
SENTENCES = ["A man is eating food.", "The girl is carrying a baby.", "word " * 400, "x"]


def o2_event(bucket: str, python: str, **fields: object) -> dict:
    return hub_event(
        bucket,
        model_id=ONNX_MODEL_ID,
        engine="onnx",
        container_python=python,
        onnx_file=O2,
        **fields,
    )


def test_the_chosen_graph_alone_is_packaged_and_serves_sentence_transformers_vectors(
    hub, aws, s3_bucket, reference_onnx_export, reference_onnx_o2, this_python_runtime, tmp_path
):
    hub.register(onnx_repo(reference_onnx_export, files={O2: reference_onnx_o2}))
    result = handler(o2_event(s3_bucket, this_python_runtime.python), None)

    onnx_files = [name for name in result["files"] if name.startswith("onnx/")]
    assert onnx_files == [O2]
    assert result["weights_bytes"] == reference_onnx_o2.stat().st_size
    variant = f"onnx-model_O2-py{this_python_runtime.python.replace('.', '')}"
    assert f"/{variant}/{result['format_version']}/" in result["model_data_url"]

    report = run_unpacked(
        read_object(aws.client("s3"), result["model_data_url"]), tmp_path, SENTENCES
    )
    assert (report["engine"], report["graph"]) == ("onnx", O2)
    assert report["runtime"] == str(tmp_path / "code" / "onnxruntime" / "__init__.py")
    assert min_cosine_to_reference(report["response"]["embeddings"], SENTENCES) >= 0.9999


def test_graphs_of_one_commit_never_share_a_key(hub, aws, s3_bucket, this_python_runtime):
    files = {**TINY_FILES, "onnx/model.onnx": tiny_graph("export"), O2: tiny_graph("o2")}
    hub.register(make_repo(ONNX_MODEL_ID, files))
    python = this_python_runtime.python
    default = handler(
        hub_event(s3_bucket, model_id=ONNX_MODEL_ID, engine="onnx", container_python=python), None
    )
    chosen = handler(o2_event(s3_bucket, python), None)
    assert default["model_data_url"] != chosen["model_data_url"]
    assert [name for name in default["files"] if name.startswith("onnx/")] == ["onnx/model.onnx"]
    keys, _ = leftovers(aws.client("s3"), s3_bucket)
    assert len([key for key in keys if key.endswith("model.tar.gz")]) == 2


def test_the_chosen_graphs_external_data_comes_with_it(hub, s3_bucket, this_python_runtime):
    files = {
        **TINY_FILES,
        "onnx/model.onnx": b"graph",
        "onnx/model.onnx_data": b"\x01" * 1024,
        O2: b"fused graph",
        O2 + "_data": b"\x00" * 4096,
    }
    hub.register(make_repo(ONNX_MODEL_ID, files))
    result = handler(o2_event(s3_bucket, this_python_runtime.python), None)
    assert [name for name in result["files"] if name.startswith("onnx/")] == [O2, O2 + "_data"]
    assert result["weights_bytes"] == len(b"fused graph") + 4096


def test_a_chosen_graph_the_repo_lacks_is_named_with_the_graphs_it_has_and_nothing_is_written(
    hub, aws, s3_bucket, this_python_runtime
):
    hub.register(make_repo(ONNX_MODEL_ID, {**TINY_FILES, "onnx/model.onnx": b"graph"}))
    with pytest.raises(LoaderError) as failure:
        handler(o2_event(s3_bucket, this_python_runtime.python), None)
    message = str(failure.value)
    assert "onnx/model_O2.onnx is not in the repository" in message
    assert "['onnx/model.onnx']" in message
    assert "set onnxFile to one of the repository's graphs" in message
    assert failure.value.step == "select-files"
    assert leftovers(aws.client("s3"), s3_bucket) == ([], [])


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"onnx_file": "graphs/model.onnx"}, "onnx/ folder or at its root"),
        ({"onnx_file": "onnx/model_O4.onnx"}, "fp16, made for GPUs"),
        ({"onnx_file": "onnx/model_qint8_arm64.onnx"}, "ARM CPUs"),
        ({"onnx_file": O2, "engine": "torch", "container_python": None}, "only engine 'onnx'"),
    ],
)
def test_the_event_refuses_a_graph_the_engine_cannot_run(fields: dict, expected: str) -> None:
    event = {
        "model_id": "org/name",
        "bucket": "bucket-name",
        "engine": "onnx",
        "container_python": "3.10",
    } | fields
    with pytest.raises(EventError, match="onnx_file") as failure:
        parse_event(event)
    assert expected in str(failure.value)


def test_the_event_defaults_to_the_repos_model_onnx() -> None:
    request = parse_event({"model_id": "org/name", "bucket": "bucket-name"})
    assert request.onnx_file == "onnx/model.onnx"
    onnx = {"model_id": "org/name", "bucket": "bucket-name", "engine": "onnx"}
    onnx["container_python"] = "3.10"
    assert parse_event(onnx).artifact_variant == "onnx-py310"
    assert parse_event(onnx | {"onnx_file": O2}).artifact_variant == "onnx-model_O2-py310"


def test_a_graph_at_the_repository_root_is_packaged_there_and_served(
    hub, aws, s3_bucket, reference_onnx_export, this_python_runtime, tmp_path
):
    """As jina-embeddings-v2-base-en keeps it: `model.onnx` at the root, asked for by onnxFile."""
    repo = onnx_repo(reference_onnx_export, files={"model.onnx": reference_onnx_export})
    hub.register(repo)
    event = o2_event(s3_bucket, this_python_runtime.python) | {"onnx_file": "model.onnx"}
    result = handler(event, None)
    graphs = [name for name in result["files"] if name.endswith(".onnx")]
    assert graphs == ["model.onnx"]
    assert "model.safetensors" not in result["files"]
    variant = f"onnx-root-model-py{this_python_runtime.python.replace('.', '')}"
    assert f"/{variant}/{result['format_version']}/" in result["model_data_url"]
    report = run_unpacked(
        read_object(aws.client("s3"), result["model_data_url"]), tmp_path, SENTENCES
    )
    assert (report["engine"], report["graph"]) == ("onnx", "model.onnx")
    assert min_cosine_to_reference(report["response"]["embeddings"], SENTENCES) >= 0.9999
