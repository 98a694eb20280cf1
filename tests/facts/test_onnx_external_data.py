"""Every external-data location of a graph is found, however deep the tensor, and only its own
data file passes; the container refuses the rest before ONNX Runtime reads them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from facts.onnx_external_data import external_data_problem, external_locations
from facts.sentence_modules import ModelFilesError
from tests.support.models import container_module
from tests.support.onnx_graphs import function_default_reading, graph_reading


def test_an_initializers_and_a_subgraph_constants_locations_are_found():
    assert external_locations(graph_reading("model.onnx_data", "/etc/passwd")) == {
        "model.onnx_data",
        "/etc/passwd",
    }


def test_a_function_attributes_default_tensor_is_found():
    """ONNX Runtime inlines the function and reads the default's bytes from that path."""
    assert external_locations(function_default_reading("/etc/passwd")) == {"/etc/passwd"}


def test_a_graph_saved_by_onnx_with_its_data_beside_it_passes(tmp_path: Path):
    weights = numpy_helper.from_array(np.ones((64, 64), np.float32), "w")
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "g", inputs, outputs, [weights]
    )
    path = tmp_path / "model.onnx"
    onnx.save_model(
        helper.make_model(graph),
        path,
        save_as_external_data=True,
        location="model.onnx_data",
        size_threshold=0,
    )
    assert external_locations(path.read_bytes()) == {"model.onnx_data"}
    assert external_data_problem(path.read_bytes(), {"model.onnx_data"}) is None


@pytest.mark.parametrize("location", ["/etc/passwd", "../../proc/self/environ", "tokenizer.json"])
def test_a_location_other_than_the_graphs_data_file_is_named(location: str):
    problem = external_data_problem(graph_reading(location), {"model.onnx_data"})
    assert problem is not None and repr(location) in problem


def test_bytes_the_walk_cannot_read_are_refused_not_left_to_onnx_runtime():
    """Where protobuf's parser and this walk part, the walk must not be the one that gives up."""
    problem = external_data_problem(b"\x0f\xff\xff", {"model.onnx_data"})
    assert problem is not None and problem.startswith("the graph cannot be checked")


def test_a_tag_is_read_as_protobuf_reads_it_cut_to_32_bits():
    """`BA 80 80 80 10` is field 7 (the graph) to protobuf: the walk must see the graph too."""
    graph = graph_reading("/etc/passwd")
    assert graph[0] == 0x08 and b"\x3a" in graph  # ir_version, then the graph (field 7)
    at = graph.index(b"\x3a")
    disguised = graph[:at] + b"\xba\x80\x80\x80\x10" + graph[at + 1 :]
    assert external_locations(disguised) == {"/etc/passwd"}


def test_a_location_behind_an_unknown_group_field_is_still_found():
    """Groups are deprecated, but a parser skips one: the walk must not stop at it."""
    group = b"\x9b\x06" + b"\x08\x01" + b"\x9c\x06"  # field 99: start, a varint, end
    graph = group + graph_reading("/etc/passwd")
    assert external_locations(graph) == {"/etc/passwd"}


def test_the_container_refuses_such_a_graph_before_onnx_runtime_reads_it(tmp_path: Path):
    graph = tmp_path / "onnx" / "model.onnx"
    graph.parent.mkdir()
    graph.write_bytes(graph_reading("model.onnx_data", in_subgraph="../../etc/passwd"))
    engine = container_module("onnx_engine")
    with pytest.raises(
        ModelFilesError, match=r"onnx/model.onnx: the graph reads tensors from \['../../etc"
    ):
        engine.refuse_foreign_data(str(graph), "onnx/model.onnx")
