"""A mean-pooling head on the fused graph: sentence vectors out of ONNX Runtime, not numpy.

After `session.run` streams the weights through the caches, each numpy step that follows costs
5-10× its time in a warm loop (measured: pooling and normalization took 110-150 µs in a request
of about 5 ms, 11 µs warm). Done in the graph, they run inside the forward pass, and the engine
fetches a (batch, hidden) output instead of copying out every token vector. The head computes
what sentence-transformers' Pooling (mean) and Normalize compute, with the container's own
epsilons, and the loader checks it against the container's numpy pooling before it ships
(graph_fusion.head_problem). The token output stays: every other pooling mode, a prompt left
out of the mean, a Dense module or Matryoshka dimensions pool from it as before.
"""

from __future__ import annotations

from typing import Any

from facts.onnx_runtime import MEAN_POOLED_OUTPUT, UNIT_MEAN_POOLED_OUTPUT, token_output_name

_MASK_INPUT = "attention_mask"
_PREFIX = "endpoint_pooling/"
# ReduceSum and Unsqueeze take their axes as an input from opset 13, as an attribute before.
_AXES_AS_INPUT_OPSET = 13


def token_output(graph: Any) -> Any | None:
    """The graph's token-level float output (the engine's choice of name), None without one."""
    from onnx import TensorProto

    outputs = {item.name: item for item in graph.output}
    ranks = [(name, len(item.type.tensor_type.shape.dim)) for name, item in outputs.items()]
    name = token_output_name(ranks)
    chosen = outputs.get(name or "")
    if chosen is None or chosen.type.tensor_type.elem_type != TensorProto.FLOAT:
        return None
    return chosen


def add_mean_head(model: Any) -> bool:
    """Append the head's two outputs to `model` (an onnx ModelProto); False when it cannot.

    It cannot without an `attention_mask` input or a float token output, and a graph that has
    the head already keeps it as it is.
    """
    from onnx import TensorProto, helper

    graph = model.graph
    tokens = token_output(graph)
    names = {item.name for item in graph.output}
    if tokens is None or _MASK_INPUT not in {item.name for item in graph.input}:
        return False
    if MEAN_POOLED_OUTPUT in names or UNIT_MEAN_POOLED_OUTPUT in names:
        return False
    opset = next((item.version for item in model.opset_import if item.domain in ("", "ai.onnx")), 0)
    axes_as_input = opset >= _AXES_AS_INPUT_OPSET
    graph.initializer.extend(_constants(axes_as_input))
    graph.node.extend(_nodes(tokens.name, axes_as_input))
    hidden = tokens.type.tensor_type.shape.dim[2]
    size = hidden.dim_value if hidden.HasField("dim_value") else (hidden.dim_param or "hidden")
    for output in (MEAN_POOLED_OUTPUT, UNIT_MEAN_POOLED_OUTPUT):
        graph.output.append(
            helper.make_tensor_value_info(output, TensorProto.FLOAT, ["batch_size", size])
        )
    return True


def _constants(axes_as_input: bool) -> list[Any]:
    """The head's initializers: the container's epsilons, and the axes where opsets take them."""
    import numpy as np
    from onnx import numpy_helper

    from container.sentence_embedding.pooling import MEAN_EPSILON, NORM_EPSILON

    values = {"mean_epsilon": np.float32(MEAN_EPSILON), "norm_epsilon": np.float32(NORM_EPSILON)}
    if axes_as_input:
        values.update({f"axis{axis}": np.array([axis], dtype=np.int64) for axis in (1, 2)})
    return [
        numpy_helper.from_array(np.asarray(value), _PREFIX + key) for key, value in values.items()
    ]


def _nodes(tokens: str, axes_as_input: bool) -> list[Any]:
    """mean = Σ tokens × mask / max(Σ mask, ε); unit = mean / max(‖mean‖, ε), per row."""
    from onnx import TensorProto, helper

    kept_names = (tokens, _MASK_INPUT, MEAN_POOLED_OUTPUT, UNIT_MEAN_POOLED_OUTPUT)

    def named(item: str) -> str:
        """The head's own tensors get its prefix; the graph's and the outputs keep their names."""
        return item if item in kept_names else _PREFIX + item

    def node(op: str, inputs: list[str], output: str, **attributes: Any) -> Any:
        sources = [named(item) for item in inputs]
        return helper.make_node(op, sources, [named(output)], _PREFIX + output, **attributes)

    def on_axis(op: str, source: str, axis: int, output: str, **attributes: Any) -> Any:
        if axes_as_input:
            return node(op, [source, f"axis{axis}"], output, **attributes)
        return node(op, [source], output, axes=[axis], **attributes)

    return [
        node("Cast", [_MASK_INPUT], "mask", to=TensorProto.FLOAT),
        on_axis("Unsqueeze", "mask", 2, "mask3"),
        node("Mul", [tokens, "mask3"], "kept"),
        on_axis("ReduceSum", "kept", 1, "sums", keepdims=0),
        on_axis("ReduceSum", "mask", 1, "count", keepdims=1),
        node("Max", ["count", "mean_epsilon"], "counts"),
        node("Div", ["sums", "counts"], MEAN_POOLED_OUTPUT),
        node("Mul", [MEAN_POOLED_OUTPUT, MEAN_POOLED_OUTPUT], "squares"),
        on_axis("ReduceSum", "squares", 1, "sum_squares", keepdims=1),
        node("Sqrt", ["sum_squares"], "norm"),
        node("Max", ["norm", "norm_epsilon"], "norms"),
        node("Div", [MEAN_POOLED_OUTPUT, "norms"], UNIT_MEAN_POOLED_OUTPUT),
    ]
