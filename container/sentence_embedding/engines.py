"""Which engine runs the transformer: EMBEDDING_ENGINE when set, else what the archive carries.

An archive packaged for the ONNX engine carries `onnx/model.onnx`, or the one other graph the
stack chose (in `onnx/`, or at the root), and ONNX Runtime in `code/` instead of the PyTorch
weights; every other archive runs on PyTorch, also one with a root graph beside PyTorch weights
(onnx_engine.onnx_graph). The environment variable forces either engine, e.g. to compare them
on a folder that holds both. A forced or carried engine that cannot load fails the model load
with the reason: there is no silent fallback.
"""

from __future__ import annotations

from typing import Any

import torch

from .onnx_engine import OnnxEngine, onnx_graph


def chosen_engine(model_dir: str, forced: str | None) -> str:
    """`torch` or `onnx`: the forced one (EMBEDDING_ENGINE), else `onnx` when there is a graph."""
    if forced:
        return forced
    return "onnx" if onnx_graph(model_dir) else "torch"


def load_engine(model_dir: str, transformer_path: str, threads: int, forced: str | None) -> Any:
    """The chosen engine, loaded, with `threads` intra-op threads.

    With ONNX Runtime running the transformer, torch keeps one thread: it only pools and
    normalizes, and a second pool sized to every vCPU would fight ONNX Runtime's for the same
    cores (both spin-wait between tasks; measured 30-40% slower at batch 32 on 2 vCPUs).
    """
    if chosen_engine(model_dir, forced) == "onnx":
        torch.set_num_threads(1)
        return OnnxEngine.load(model_dir, transformer_path, threads)
    torch.set_num_threads(threads)
    from .torch_engine import TorchEngine

    return TorchEngine.load(transformer_path, threads)
