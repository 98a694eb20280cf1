"""Fuse an ONNX export as optimum's O2 does, then check it gives the export's token vectors.

ONNX Runtime's transformer optimizer (facts/onnx_fusion.py says why here and not at cold start),
its exact fusions only: GELU keeps erf. The fused graph replaces the export in the archive only
when something fused and every token vector of a padded two-text batch is within
MIN_TOKEN_COSINE of the export's; otherwise the export ships as it is and the report says why.
The fused graph also gets the mean-pooling head (pooling_head.py), checked against the
container's numpy pooling on the same batch. Deterministic: the same graph and optimizer
versions give the same bytes.
"""

from __future__ import annotations

import gc
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facts.onnx_fusion import (
    FUSION_PACKAGES,
    MAX_FUSED_GRAPH_BYTES,
    MIN_TOKEN_COSINE,
    fusion_requirements,
)
from facts.onnx_runtime import MEAN_POOLED_OUTPUT, UNIT_MEAN_POOLED_OUTPUT, token_output_name
from loader.errors import LoaderError
from loader.pooling_head import add_mean_head

# The padded batch both graphs run: two texts of unequal length, as requests are.
CHECK_LENGTHS = (11, 5)
# Token ids the check feeds are below this, or the graph's vocabulary size when it is known.
_FALLBACK_VOCABULARY = 100
# The hollowed graph (see `_hollowed`): weights from 1 MiB up go to a file beside it.
_HOLLOW_GRAPH = "hollow.onnx"
_HOLLOW_WEIGHTS = "weights"
_HOLLOW_THRESHOLD_BYTES = 1024 * 1024


@dataclass(frozen=True)
class FusionReport:
    """What fused (operator → count) and how close; `reason` says why the export ships unfused."""

    fused: dict[str, int] = field(default_factory=dict)
    min_cosine: float | None = None
    reason: str = ""
    pooling_head: bool = False  # the mean-pooling head (pooling_head.py) was added and checked

    @property
    def applied(self) -> bool:
        return not self.reason

    def describe(self) -> str:
        if not self.applied:
            return f"packaged unfused: {self.reason}"
        operators = ", ".join(f"{count} {name}" for name, count in sorted(self.fused.items()))
        head = ", with a mean-pooling head" if self.pooling_head else ""
        return f"fused {operators} (min token cosine {self.min_cosine:.7f}){head}"


class FusionUnavailable(LoaderError):
    """The optimizer's packages are missing or not the pinned versions (never a silent skip)."""


def optimizer_problem(
    packages: tuple[tuple[str, str], ...] | None = None, purpose: str = "fusing the ONNX graph"
) -> str | None:
    """Why this Python cannot fuse (or do `purpose`) as the loader Lambda does (None: it can)."""
    from importlib.metadata import PackageNotFoundError, version

    packages = FUSION_PACKAGES if packages is None else packages
    wrong = []
    for name, pinned in packages:
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = "not installed"
        if installed != pinned:
            wrong.append(f"{name} {installed} (needs {pinned})")
    if not wrong:
        return None
    needed = fusion_requirements(packages)
    return f"{purpose} needs {needed}; this Python has {', '.join(wrong)}"


def fuse_graph(
    source: Path, destination: Path, model: str = "", max_bytes: int | None = MAX_FUSED_GRAPH_BYTES
) -> FusionReport:
    """Write the fused `source` to `destination` when it fuses and checks out; the report.

    When the report is not `applied`, `destination` does not exist. FusionUnavailable when this
    Python lacks the pinned optimizer (an archive made without it would differ).
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.unlink(missing_ok=True)
    size = source.stat().st_size
    if max_bytes is not None and size > max_bytes:
        return FusionReport(reason=f"the graph is {size} bytes, over {max_bytes}")
    problem = optimizer_problem()
    if problem:
        raise FusionUnavailable(problem, step="fuse-graph", model=model)
    import onnx

    try:
        graph = onnx.load(str(source), load_external_data=False)
    except Exception as error:  # the container's load names it too, with the engine's message
        return FusionReport(reason=f"it is not an ONNX graph: {type(error).__name__}: {error}")
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in graph.graph.initializer):
        return FusionReport(reason="the graph keeps its weights in a file beside it")
    vocabulary = vocabulary_size(graph)
    with tempfile.TemporaryDirectory(prefix="fusion-", dir=destination.parent) as scratch:
        try:
            hollow = _hollowed(graph, Path(scratch))
            del graph
            gc.collect()  # the weights are on disk now
            fused, head = _fuse(hollow, Path(scratch), destination)
        except Exception as error:  # the optimizer's own errors are not one class
            destination.unlink(missing_ok=True)
            return FusionReport(reason=f"the optimizer failed: {type(error).__name__}: {error}")
    gc.collect()  # the fused graph's weights, before two sessions load them
    if not fused:
        destination.unlink(missing_ok=True)
        return FusionReport(reason="nothing in the graph matches the optimizer's fusions")
    try:
        cosine = min_token_cosine(source, destination, vocabulary)
    except Exception as error:  # a fused graph ONNX Runtime cannot load or run
        destination.unlink(missing_ok=True)
        return FusionReport(fused, reason=f"the fused graph does not run: {error}")
    if cosine < MIN_TOKEN_COSINE:
        destination.unlink(missing_ok=True)
        return FusionReport(
            fused, cosine, f"its token vectors differ (cosine {cosine:.7f} < {MIN_TOKEN_COSINE})"
        )
    problem = head_problem(destination, vocabulary) if head else None
    if problem:
        destination.unlink(missing_ok=True)
        return FusionReport(fused, cosine, f"its pooling head is wrong: {problem}")
    return FusionReport(fused, cosine, pooling_head=head)


def _hollowed(graph: Any, scratch: Path) -> Any:
    """`graph` with its large weights moved to a file in `scratch` (read back when needed).

    The optimizer's shape inference copies the whole graph several times: with the weights
    inline that peaks at 8.5× the graph (3.7 GB for a 435 MB BERT-base); hollowed, at 5× (2.1 GB,
    most of it the final save), which is what lets a 3,008 MB loader fuse base-size models.
    """
    import onnx

    onnx.save_model(
        graph,
        str(scratch / _HOLLOW_GRAPH),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=_HOLLOW_WEIGHTS,
        size_threshold=_HOLLOW_THRESHOLD_BYTES,
    )
    return onnx.load(str(scratch / _HOLLOW_GRAPH), load_external_data=False)


@contextmanager
def _working_directory(folder: Path) -> Iterator[None]:
    """Run in `folder`: the optimizer reads hollowed weights by their relative location.

    onnx refuses absolute locations, and the optimizer names no base folder. The process-wide
    change is undone on the way out (runner local runs one packaging at a time).
    """
    previous = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


def _fuse(graph: Any, scratch: Path, destination: Path) -> tuple[dict[str, int], bool]:
    """Hollowed `graph` fused as optimum's O2 (exact), saved whole when anything fused.

    (what fused, whether the mean-pooling head was added to it).
    """
    import onnx
    from onnx.external_data_helper import load_external_data_for_model
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    before = Counter(node.op_type for node in graph.graph.node)
    explicit_head_counts(graph)
    options = FusionOptions("bert")
    options.enable_gelu_approximation = False
    with _working_directory(scratch):
        optimized = optimizer.optimize_model(
            graph, model_type="bert", optimization_options=options, opt_level=0, use_gpu=False
        )
    # The statistics count the graph's fused operators, those it already had as well.
    statistics = optimized.get_fused_operator_statistics()
    fused = {
        name: count - before[name] for name, count in statistics.items() if count > before[name]
    }
    head = bool(fused) and add_mean_head(optimized.model)
    if fused:
        load_external_data_for_model(optimized.model, str(scratch))
        onnx.save_model(optimized.model, str(destination))
    return fused, head


def explicit_head_counts(graph: Any) -> int:
    """Give each attention head reshape its head count; how many were rewritten.

    transformers 5 splits heads with a reshape to (batch, length, -1, head size); transformers 4
    named the count, and the optimizer's attention fusion reads it there (a -1 stops the fusion).
    The count is the projection's bias length over the head size, so the reshape is unchanged.
    """
    import numpy as np
    from onnx import numpy_helper

    nodes = graph.graph.node
    producers = {output: node for node in nodes for output in node.output}
    initializers = {tensor.name: tensor for tensor in graph.graph.initializer}

    def constant(name: str) -> Any:
        tensor = initializers.get(name)
        if tensor is not None and tensor.data_location == tensor.EXTERNAL:
            return None  # a hollowed weight: no bias, no shape
        if tensor is not None:
            return numpy_helper.to_array(tensor)
        node = producers.get(name)
        if node is not None and node.op_type == "Identity":  # a tensor the exporter shared
            return constant(node.input[0])
        if node is not None and node.op_type == "Constant" and node.attribute:
            return numpy_helper.to_array(node.attribute[0].t)
        return None

    rewritten = 0
    for node in nodes:
        if node.op_type != "Reshape":
            continue
        concat, projection = producers.get(node.input[1]), producers.get(node.input[0])
        if concat is None or concat.op_type != "Concat" or len(concat.input) != 4:
            continue
        if projection is None or projection.op_type != "Add":
            continue
        heads, head_size = constant(concat.input[2]), constant(concat.input[3])
        biases = [constant(name) for name in projection.input]
        bias = next((value for value in biases if value is not None and value.ndim == 1), None)
        if heads is None or head_size is None or bias is None or heads.size != 1:
            continue
        size = int(head_size.reshape(-1)[0]) if head_size.size == 1 else 0
        if int(heads.reshape(-1)[0]) != -1 or size <= 0 or bias.shape[0] % size:
            continue
        name = f"{concat.output[0]}_head_count"
        count = np.array([bias.shape[0] // size], dtype=heads.dtype)
        graph.graph.initializer.append(numpy_helper.from_array(count, name))
        concat.input[2] = name
        rewritten += 1
    return rewritten


def vocabulary_size(graph: Any) -> int:
    """Rows of the table `input_ids` is looked up in (the ids the check may feed)."""
    initializers = {tensor.name: tensor for tensor in graph.graph.initializer}
    for node in graph.graph.node:
        if node.op_type == "Gather" and node.input[1] == "input_ids":
            table = initializers.get(node.input[0])
            if table is not None and len(table.dims) == 2:
                return int(table.dims[0])
    return _FALLBACK_VOCABULARY


def check_batch(vocabulary: int) -> dict[str, Any]:
    """Every input the engine may feed, for two texts of CHECK_LENGTHS tokens, right-padded."""
    import numpy as np

    rows, length = len(CHECK_LENGTHS), max(CHECK_LENGTHS)
    mask = np.array([[1] * n + [0] * (length - n) for n in CHECK_LENGTHS], dtype=np.int64)
    ids = (np.arange(rows * length, dtype=np.int64).reshape(rows, length) * 7919 + 101) % vocabulary
    return {
        "input_ids": ids * mask,
        "attention_mask": mask,
        "token_type_ids": np.zeros_like(ids),
        "position_ids": np.broadcast_to(np.arange(length, dtype=np.int64), ids.shape).copy(),
    }


def min_token_cosine(export: Path, fused: Path, vocabulary: int) -> float:
    """The least cosine between the two graphs' token vectors (real tokens of `check_batch`)."""
    batch = check_batch(vocabulary)
    ours, theirs = (token_vectors(graph, batch) for graph in (fused, export))
    return least_token_cosine(ours, theirs, batch["attention_mask"])


def least_token_cosine(ours: Any, theirs: Any, attention_mask: Any) -> float:
    """The least cosine between two [batch, length, hidden] outputs over the real tokens."""
    import numpy as np

    real = np.asarray(attention_mask).astype(bool)
    ours, theirs = np.asarray(ours)[real], np.asarray(theirs)[real]
    cosine = (ours * theirs).sum(-1) / (
        np.linalg.norm(ours, axis=-1) * np.linalg.norm(theirs, axis=-1)
    )
    return float(cosine.min())


def token_vectors(graph: Path, batch: dict[str, Any]) -> Any:
    """The graph's token-level output for `batch` (inputs typed as the graph declares them)."""
    return run_tokens(open_session(graph), batch)


def open_session(graph: Path) -> Any:
    """An ONNX Runtime CPU session of `graph`, with every graph optimization on."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(
        str(graph), sess_options=options, providers=["CPUExecutionProvider"]
    )


def run_tokens(session: Any, batch: dict[str, Any]) -> Any:
    """The session's token-level output for `batch`: the inputs it declares, typed as declared."""
    (hidden,) = session.run([token_output(session)], session_feeds(session, batch))
    return hidden


def token_output(session: Any) -> str:
    """The session's token-level output, chosen as the engine chooses it."""
    name = token_output_name([(item.name, len(item.shape or ())) for item in session.get_outputs()])
    if name is None:
        raise ValueError("the graph has no token-level output (one vector per token)")
    return name


def session_feeds(session: Any, batch: dict[str, Any]) -> dict[str, Any]:
    """`batch`'s arrays for the inputs the session declares, typed as it declares them."""
    import numpy as np

    types = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}
    return {
        item.name: batch[item.name].astype(types.get(item.type, np.int64))
        for item in session.get_inputs()
    }


def head_problem(graph: Path, vocabulary: int) -> str | None:
    """Why the graph's pooling head does not give the container's pooling, or None.

    Run on the padded `check_batch`, so the mask's zeros are checked too.
    """
    from container.sentence_embedding.pooling import mean_head_problem

    batch = check_batch(vocabulary)
    session = open_session(graph)
    fetched = [token_output(session), MEAN_POOLED_OUTPUT, UNIT_MEAN_POOLED_OUTPUT]
    hidden, mean, unit = session.run(fetched, session_feeds(session, batch))
    return mean_head_problem(hidden, batch["attention_mask"], mean, unit)
