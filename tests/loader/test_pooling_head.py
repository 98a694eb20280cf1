"""loader/pooling_head.py: the fused graph's mean-pooling head gives the container's pooling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from container.sentence_embedding import pooling
from container.sentence_embedding.pooling import mean_head_problem, pool, unit_length
from facts.onnx_runtime import MEAN_POOLED_OUTPUT, UNIT_MEAN_POOLED_OUTPUT
from loader.graph_fusion import check_batch, fuse_graph, head_problem
from loader.pooling_head import add_mean_head

HIDDEN = 8
VOCABULARY = 50


def lookup_graph(opset: int, *, mask: bool = True, elem_type: int = TensorProto.FLOAT) -> Any:
    """A graph whose token vectors are rows of a table: `last_hidden_state` = table[input_ids]."""
    table = np.random.default_rng(7).normal(size=(VOCABULARY, HIDDEN)).astype(np.float32) * 3
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "length"])]
    if mask:
        inputs.append(
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "length"])
        )
    nodes = [helper.make_node("Gather", ["table", "input_ids"], ["gathered"])]
    nodes.append(helper.make_node("Cast", ["gathered"], ["last_hidden_state"], to=elem_type))
    graph = helper.make_graph(
        nodes,
        "lookup",
        inputs,
        [helper.make_tensor_value_info("last_hidden_state", elem_type, ["batch", "len", HIDDEN])],
        [numpy_helper.from_array(table, "table")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def run(model: Any, batch: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    names = ["last_hidden_state", MEAN_POOLED_OUTPUT, UNIT_MEAN_POOLED_OUTPUT]
    feeds = {item.name: batch[item.name] for item in session.get_inputs()}
    return session.run(names, feeds)


def padded_batch(side: str) -> dict[str, np.ndarray]:
    lengths, width = (5, 2, 7), 7
    rows = [[1] * n + [0] * (width - n) for n in lengths]
    mask = np.array([row if side == "right" else row[::-1] for row in rows], dtype=np.int64)
    ids = (np.arange(mask.size).reshape(mask.shape) * 13 + 3) % VOCABULARY
    return {"input_ids": ids * mask, "attention_mask": mask}


@pytest.mark.parametrize("opset", [11, 17])  # axes as attributes, and as inputs (13 on)
@pytest.mark.parametrize("side", ["right", "left"])
def test_the_head_gives_the_containers_mean_and_unit_mean(opset, side):
    model = lookup_graph(opset)
    assert add_mean_head(model)
    batch = padded_batch(side)
    hidden, mean, unit = run(model, batch)
    expected = pool(("mean",), hidden, batch["attention_mask"])
    np.testing.assert_allclose(mean, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(unit, unit_length(expected), rtol=1e-5, atol=1e-6)
    assert mean_head_problem(hidden, batch["attention_mask"], mean, unit) is None


def test_a_row_without_real_tokens_gives_zeros_not_nan():
    model = lookup_graph(17)
    add_mean_head(model)
    batch = padded_batch("right")
    batch["attention_mask"][1] = 0
    _, mean, unit = run(model, batch)
    assert np.all(mean[1] == 0) and np.all(unit[1] == 0)


def test_no_head_without_a_mask_input_or_float_tokens():
    assert not add_mean_head(lookup_graph(17, mask=False))
    assert not add_mean_head(lookup_graph(17, elem_type=TensorProto.DOUBLE))


def test_a_graph_with_the_head_keeps_the_one_it_has():
    model = lookup_graph(17)
    assert add_mean_head(model)
    nodes = len(model.graph.node)
    assert not add_mean_head(model)
    assert len(model.graph.node) == nodes


def test_a_head_that_is_not_the_mean_is_named_as_wrong():
    model = lookup_graph(17)
    add_mean_head(model)
    batch = padded_batch("right")
    hidden, mean, unit = run(model, batch)
    problem = mean_head_problem(hidden, batch["attention_mask"], mean * 1.01, unit)
    assert problem is not None and problem.startswith("its mean is ")
    problem = mean_head_problem(hidden, batch["attention_mask"], mean, unit * np.nan)
    assert problem is not None and problem.startswith("its unit mean is nan")


def test_the_fused_export_carries_a_checked_head(reference_onnx_o2):
    outputs = [item.name for item in onnx.load(str(reference_onnx_o2)).graph.output]
    assert outputs == ["last_hidden_state", MEAN_POOLED_OUTPUT, UNIT_MEAN_POOLED_OUTPUT]
    assert head_problem(reference_onnx_o2, vocabulary=30522) is None


def test_the_fusion_report_says_the_head_was_added(reference_onnx_export, tmp_path: Path):
    report = fuse_graph(reference_onnx_export, tmp_path / "fused.onnx")
    assert report.pooling_head
    assert report.describe().endswith(", with a mean-pooling head")


def test_a_head_that_fails_its_check_ships_the_export_unfused(
    reference_onnx_export, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(pooling, "MAX_HEAD_ERROR", -1.0)  # no head can pass
    report = fuse_graph(reference_onnx_export, tmp_path / "fused.onnx")
    assert report.reason.startswith("its pooling head is wrong: its mean is ")
    assert not report.pooling_head
    assert not (tmp_path / "fused.onnx").exists()


def test_the_check_batch_is_padded():
    mask = check_batch(VOCABULARY)["attention_mask"]
    assert mask.min() == 0 and mask.max() == 1
