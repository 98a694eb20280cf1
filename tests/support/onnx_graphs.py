"""Small ONNX models built for one property (here: tensors whose bytes lie in another file)."""

from __future__ import annotations

from onnx import AttributeProto, TensorProto, helper


def external(tensor: TensorProto, location: str) -> TensorProto:
    """`tensor` with its bytes said to be at `location`."""
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "4")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


def graph_reading(initializer: str, in_subgraph: str | None = None) -> bytes:
    """A model whose initializer (and, optionally, a Constant inside an If's branch) is external."""
    weights = external(
        helper.make_tensor("w", TensorProto.UINT8, [4], b"\0" * 4, raw=True), initializer
    )
    nodes = [helper.make_node("Identity", ["w"], ["y"])]
    if in_subgraph is not None:
        hidden = external(
            helper.make_tensor("c", TensorProto.UINT8, [4], b"\0" * 4, raw=True), in_subgraph
        )
        branch = helper.make_graph(
            [helper.make_node("Constant", [], ["z"], value=hidden)],
            "branch",
            [],
            [helper.make_tensor_value_info("z", TensorProto.UINT8, [4])],
        )
        nodes.append(
            helper.make_node("If", ["cond"], ["y2"], then_branch=branch, else_branch=branch)
        )
    outputs = [helper.make_tensor_value_info("y", TensorProto.UINT8, [4])]
    graph = helper.make_graph(nodes, "g", [], outputs, [weights])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def function_default_reading(location: str) -> bytes:
    """A model calling a function whose body's Constant takes the default of its attribute `w`,
    a tensor whose bytes are said to be at `location` (ONNX Runtime inlines it and reads them)."""
    default = helper.make_attribute(
        "w",
        external(helper.make_tensor("w", TensorProto.UINT8, [4], b"\0" * 4, raw=True), location),
    )
    constant = helper.make_node("Constant", [], ["out"])
    constant.attribute.append(
        AttributeProto(name="value", ref_attr_name="w", type=AttributeProto.TENSOR)
    )
    function = helper.make_function(
        "local", "Read", [], ["out"], [constant], [helper.make_opsetid("", 17)],
        attribute_protos=[default],
    )  # fmt: skip
    call = helper.make_node("Read", [], ["y"], domain="local")
    outputs = [helper.make_tensor_value_info("y", TensorProto.UINT8, [4])]
    model = helper.make_model(
        helper.make_graph([call], "g", [], outputs),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)],
        functions=[function],
        ir_version=10,  # what ONNX Runtime 1.23 reads
    )
    return model.SerializeToString()


def tiny_graph(name: str = "g") -> bytes:
    """A valid one-node model (Identity), named `name` so that two of them differ in bytes."""
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])]
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], name, inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
