"""The transformer's forward pass with ONNX Runtime: the repository's `onnx/model.onnx`.

Or the one other graph the archive carries in `onnx/` when the stack asked for it (`onnxFile`,
e.g. optimum's `onnx/model_O2.onnx`, whose fused attention and layer norms run faster).

ONNX Runtime comes from the archive's own `code/onnxruntime/` (the toolkit puts `code/` first on
sys.path), vendored by the loader for the image's Python; nothing is installed at startup. The
tokenizer, pooling, Dense modules and normalization stay shared (encoder.py), so only
`last_hidden_state` comes from here, numpy in and out as ONNX Runtime has it; or, from a graph
the loader fused, the mean of the token vectors (unit length or not) its pooling head computes
(loader/pooling_head.py), checked against `pool` when the graph loads. config.json
is read as plain JSON, not through transformers: a model that is its repository's own code
(facts/model_code.py) runs from its export without that code.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

from facts.model_code import CONFIG_FILE
from facts.onnx_external_data import graph_file_problem
from facts.onnx_runtime import (
    MEAN_POOLED_OUTPUT,
    ONNX_FOLDER,
    ONNX_MODEL_FILE,
    TOKEN_OUTPUTS,
    UNIT_MEAN_POOLED_OUTPUT,
    external_data_files,
    token_output_name,
)
from facts.sentence_modules import ModelFilesError

from .model_files import read_json
from .pooling import mean_head_problem

# What the Hub's exports (optimum's) and torch.onnx.export of a Hugging Face encoder take.
_KNOWN_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "position_ids")
_NUMPY_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}


def refuse_foreign_data(path: str, graph: str) -> None:
    """Fail the load when the graph's tensors read their bytes from anywhere but its own data
    file: ONNX Runtime would read any path they name (facts/onnx_external_data.py).
    """
    allowed = {name.rpartition("/")[2] for name in external_data_files(graph)}
    problem = graph_file_problem(path, allowed)
    if problem is not None:
        raise ModelFilesError(f"{graph}: {problem}; the endpoint does not load it")


def _import_runtime() -> Any:
    """`onnxruntime`, or ModelFilesError saying why it cannot be imported (no silent fallback)."""
    try:
        import onnxruntime
    except Exception as error:  # ImportError, or OSError from a shared library that cannot load
        raise ModelFilesError(
            f"the ONNX engine cannot start: importing onnxruntime failed ({type(error).__name__}: "
            f"{error}) on Python {sys.version.split()[0]}. The archive ships ONNX Runtime in "
            "code/onnxruntime for the Python of the image it was packaged for: deploy it on "
            "that image, or package it again with inferenceEngine torch"
        ) from error
    return onnxruntime


def _output_name(session: Any, graph: str) -> str:
    outputs = session.get_outputs()
    names = [output.name for output in outputs]
    name = token_output_name([(output.name, len(output.shape or ())) for output in outputs])
    if name is not None:
        return name
    raise ModelFilesError(
        f"{graph} has outputs {names}; expected one of {list(TOKEN_OUTPUTS)} "
        "(one vector per token), as the Hub's ONNX exports have"
    )


def onnx_graph(model_dir: str) -> str | None:
    """The graph the archive carries (relative path), None without one.

    The loader packages exactly one: an `onnx/*.onnx`, or a graph the repository keeps at its
    root (`onnxFile: model.onnx`), and then no PyTorch weights beside it. A folder with several
    in onnx/ (a checkout of a whole repository) runs `onnx/model.onnx`, as sentence-transformers'
    ONNX backend does. A root graph beside PyTorch weights (a training output that also exported
    one, repackaged from `sourceModelDataUrl` without a runtime) is not the engine's: PyTorch's.
    """
    folder = os.path.join(model_dir, ONNX_FOLDER)
    names = os.listdir(folder) if os.path.isdir(folder) else []
    graphs = sorted(ONNX_FOLDER + name for name in names if name.endswith(".onnx"))
    root = os.listdir(model_dir)
    if not graphs and not any(_is_pytorch_weights(name) for name in root):
        graphs = sorted(name for name in root if name.endswith(".onnx"))
    if len(graphs) > 1 and ONNX_MODEL_FILE in graphs:
        return ONNX_MODEL_FILE
    if len(graphs) > 1:
        raise ModelFilesError(
            f"{model_dir} holds the graphs {graphs} and no {ONNX_MODEL_FILE}: keep only the "
            "one the ONNX engine should run (an archive the loader packages holds one)"
        )
    return graphs[0] if graphs else None


def _is_pytorch_weights(name: str) -> bool:
    """A root file of a PyTorch checkpoint (safetensors or .bin, sharded or not, or its index)."""
    return (name.startswith("model") and ".safetensors" in name) or (
        name.startswith("pytorch_model") and ".bin" in name
    )


class OnnxEngine:
    """An ONNX graph of the transformer on the CPU: intra-op threads = vCPUs, all optimizations."""

    name = "onnx"

    def __init__(self, session: Any, config: dict[str, Any], graph: str = ONNX_MODEL_FILE) -> None:
        self.session = session
        self.graph = graph
        positions = config.get("max_position_embeddings")
        self.max_position_embeddings = positions if type(positions) is int else None
        self.output_name = _output_name(session, graph)
        outputs = {output.name for output in session.get_outputs()}
        # The loader's mean-pooling head: both outputs, or the engine pools the tokens itself.
        self.mean_head = {MEAN_POOLED_OUTPUT, UNIT_MEAN_POOLED_OUTPUT} <= outputs
        self.inputs = [(item.name, _NUMPY_TYPES.get(item.type)) for item in session.get_inputs()]
        unknown = [name for name, kind in self.inputs if name not in _KNOWN_INPUTS or kind is None]
        if unknown:
            raise ModelFilesError(
                f"{self.graph} takes inputs {[item.name for item in session.get_inputs()]} "
                f"({[item.type for item in session.get_inputs()]}); the ONNX engine feeds "
                f"{list(_KNOWN_INPUTS)} as int64 or int32 tensors, so it cannot feed {unknown}"
            )
        # A graph exported without dynamic axes takes one batch size and length only: it would
        # load, then refuse every other request. Refused here, while the model loads.
        fixed = {
            item.name: item.shape
            for item in session.get_inputs()
            if any(isinstance(size, int) for size in (item.shape or ())[:2])
        }
        if fixed:
            raise ModelFilesError(
                f"{self.graph} has fixed input dimensions {fixed}: it takes one batch size "
                "and text length only, the engine sends any. Use inferenceEngine torch (or "
                "EMBEDDING_ENGINE=torch), or export with dynamic batch and sequence axes"
            )
        self.hidden_size = self._warm_up()

    def _warm_up(self) -> int:
        """Run the graph once on a two-token text: its vector size, and a graph that runs.

        The size comes from the graph, not config.json, whose name for it varies with the
        architecture (`hidden_size`, `n_embd`, `d_model`). A graph that cannot run fails the load
        here, not the first request; the first request also skips ONNX Runtime's first-run setup.
        """
        ids = np.zeros((1, 2), dtype=np.int64)
        features = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        try:
            hidden = self.token_embeddings(features)
        except ModelFilesError:
            raise
        except Exception as error:  # the runtime's own errors are not one class across versions
            raise ModelFilesError(
                f"ONNX Runtime cannot run {self.graph} on a two-token text: "
                f"{type(error).__name__}: {error}"
            ) from error
        if hidden.ndim != 3 or hidden.shape[:2] != (1, 2):
            raise ModelFilesError(
                f"{self.graph} gave {self.output_name!r} of shape {list(hidden.shape)} for "
                "a two-token text; expected [1, 2, hidden size], one vector per token"
            )
        if self.mean_head:
            self._check_head(features, hidden)
        return int(hidden.shape[2])

    def _check_head(self, features: dict[str, np.ndarray], hidden: np.ndarray) -> None:
        """Refuse a graph whose pooling head's outputs are not the mean of its token vectors."""
        mean, unit = (self.mean_pooled(features, unit) for unit in (False, True))
        problem = mean_head_problem(hidden, features["attention_mask"], mean, unit)
        if problem:
            raise ModelFilesError(
                f"{self.graph} has the outputs {MEAN_POOLED_OUTPUT!r} and "
                f"{UNIT_MEAN_POOLED_OUTPUT!r} of the loader's pooling head, but {problem}: "
                "package the model again"
            )

    @classmethod
    def load(cls, model_dir: str, transformer_path: str, threads: int) -> OnnxEngine:
        graph = onnx_graph(model_dir)
        if graph is None:
            raise ModelFilesError(
                f"the ONNX engine needs {ONNX_MODEL_FILE} (or another graph in {ONNX_FOLDER}), "
                f"which is not in {model_dir}; package the model with inferenceEngine onnx (or "
                "auto), or set EMBEDDING_ENGINE=torch"
            )
        path = os.path.join(model_dir, graph)
        refuse_foreign_data(path, graph)
        runtime = _import_runtime()
        options = runtime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = runtime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = runtime.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = runtime.InferenceSession(
                path, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # the runtime's own errors are not one class across versions
            raise ModelFilesError(
                f"ONNX Runtime {runtime.__version__} cannot load {graph}: "
                f"{type(error).__name__}: {error}"
            ) from error
        config = read_json(os.path.join(transformer_path, CONFIG_FILE))
        return cls(session, config if isinstance(config, dict) else {}, graph)

    def token_embeddings(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """`last_hidden_state` for a tokenized batch."""
        return self._run(self.output_name, features)

    def mean_pooled(self, features: dict[str, np.ndarray], unit: bool) -> np.ndarray:
        """The pooling head's (batch, hidden) mean of the token vectors; `unit`: normalized."""
        return self._run(UNIT_MEAN_POOLED_OUTPUT if unit else MEAN_POOLED_OUTPUT, features)

    def _run(self, output: str, features: dict[str, np.ndarray]) -> np.ndarray:
        """One output for a tokenized batch; defaults as transformers' for ids not given.

        token_type_ids: zeros (every token in segment 0); position_ids: 0..length-1 per row.
        """
        input_ids = features["input_ids"]
        feeds = {}
        for name, kind in self.inputs:
            array = features.get(name)
            if array is None and name == "token_type_ids":
                array = np.zeros_like(input_ids)
            elif array is None and name == "position_ids":
                array = np.broadcast_to(np.arange(input_ids.shape[1]), input_ids.shape)
            elif array is None:
                raise ModelFilesError(
                    f"{self.graph} takes {name!r}, which the model's tokenizer does not "
                    "produce; package the model with inferenceEngine torch"
                )
            feeds[name] = np.ascontiguousarray(array, dtype=kind)
        (result,) = self.session.run([output], feeds)
        return result.astype(np.float32, copy=False)
