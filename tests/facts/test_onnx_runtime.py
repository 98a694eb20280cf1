"""facts/onnx_runtime.py: which graph names a stack may ask for, and the key folder each gets."""

from __future__ import annotations

import pytest

from facts.onnx_runtime import RUNTIME_WHEELS, onnx_file_problem

RUNTIME = RUNTIME_WHEELS["3.10"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("onnx\\model_O2.onnx", "(with forward slashes)"),
        ("./onnx/model_O2.onnx", "without a leading ./ or /"),
        ("/onnx/model_O2.onnx", "without a leading ./ or /"),
        ("onnx/model_O2.ONNX", "the extension is .onnx, in lower case"),
        ("onnx/sub/model.onnx", "directly in the repository's onnx/ folder or at its root"),
        ("onnx/model_O4.onnx", "O4 graph is fp16"),
        ("onnx/model_o4.onnx", "O4 graph is fp16"),
        ("onnx/model_fp16.onnx", "made for GPUs"),
        ("onnx/model_q4f16.onnx", "made for GPUs"),
        ("onnx/model_float16.onnx", "made for GPUs"),
        ("onnx/model_qint8_arm64.onnx", "quantized for ARM CPUs"),
        ("onnx/unfused.onnx", "would share its folder with another graph's archive"),
        ("onnx/model_O2-unfused.onnx", "would share its folder"),
        ("onnx/root-model.onnx", "would share its folder"),
    ],
)
def test_a_graph_the_engine_cannot_be_asked_for_is_refused_saying_why(path, expected):
    problem = onnx_file_problem(path)
    assert problem is not None and expected in problem, problem


@pytest.mark.parametrize(
    "path",
    [
        "onnx/model.onnx",
        "onnx/model_O2.onnx",
        "onnx/model_qint8_avx512_vnni.onnx",
        "onnx/model_quantized.onnx",
        "model.onnx",
        "model-w-mean.onnx",
    ],
)
def test_graphs_a_stack_may_name(path):
    assert onnx_file_problem(path) is None


def test_every_graph_and_fusion_setting_has_a_key_folder_of_its_own():
    graphs = [
        "onnx/model.onnx",
        "onnx/model_O2.onnx",
        "onnx/model_O2-x.onnx",
        "onnx/root.onnx",
        "onnx/model-root.onnx",
        "model.onnx",
        "model_O2.onnx",
        "root.onnx",
    ]
    allowed = [graph for graph in graphs if onnx_file_problem(graph) is None]
    folders = [RUNTIME.variant(graph, fused) for graph in allowed for fused in (True, False)]
    assert len(set(folders)) == len(folders), sorted(folders)
    assert RUNTIME.variant("onnx/model.onnx") == "onnx-py310"
    assert RUNTIME.variant("onnx/model.onnx", fused=False) == "onnx-unfused-py310"
    assert RUNTIME.variant("model.onnx") == "onnx-root-model-py310"


def test_an_int8_archive_has_a_folder_of_its_own_for_every_graph_and_fusion() -> None:
    wheel = RUNTIME_WHEELS["3.10"]
    folders = {
        wheel.variant(graph, fused, quantized)
        for graph in ("onnx/model.onnx", "onnx/model_O2.onnx", "model.onnx")
        for fused in (True, False)
        for quantized in (None, "int8")
    }
    assert len(folders) == 12
    assert wheel.variant(quantized="int8") == "onnx-int8-py310"


@pytest.mark.parametrize("graph", ["onnx/int8.onnx", "onnx/model-int8.onnx", "onnx/m-INT8.onnx"])
def test_a_graph_named_as_an_int8_folder_is_refused(graph: str) -> None:
    assert "'-int8'" in str(onnx_file_problem(graph))


def test_the_hubs_quantized_graph_names_are_not_refused() -> None:
    assert onnx_file_problem("onnx/model_int8.onnx") is None
    assert onnx_file_problem("onnx/model_qint8_avx512_vnni.onnx") is None
