"""The smallest serverless memory size that holds a packaged model, from measured memory.

A serverless endpoint's `memorySizeMb` holds the whole container: the DLC's Java front end
(multi-model-server) and one Python worker. The worker's peak, measured under the DLC's own model
server after a request of texts at the token limit (`make bench-cold-start`,
benchmarks/results/cold_start.md: all-MiniLM-L6-v2 and a model of BERT-base's shape, each
engine), grows with the weights as

    worker peak MB = WORKER_BASE_MB[engine] + WEIGHTS_FACTOR[engine] x weights MB

(the base is the runtime: Python, torch and transformers, which the toolkit imports whatever the
engine, plus the activations of one batch at 256 tokens). The size needed adds the front end and
HEADROOM_MB for what the measurement cannot see (the container's own processes, allocator growth
over many requests); a model whose limit is far above 512 tokens needs more than this says.
"""

from __future__ import annotations

from facts.onnx_quantization import INT8
from facts.serverless import MEMORY_SIZES_MB

# Measured (benchmarks/results/cold_start.md, 2026-12-07): worker peaks of 937 / 1,502 MB
# (torch) and 938 / 1,698 MB (ONNX) at 87 / 415 MB of weights, 880 / 1,394 MB (ONNX int8) at
# 22 / 104 MB; the front end peaked at 110 MB. ONNX Runtime keeps its memory arena after a
# request, so its peak grows faster with the model. An int8 graph's activations stay fp32, as
# large as its fp32 model's, on weights a quarter the size: its own, steeper, rule.
FRONT_END_MB = 112
WORKER_BASE_MB = {"torch": 788.0, "onnx": 739.0, "onnx int8": 745.0}
WEIGHTS_FACTOR = {"torch": 1.72, "onnx": 2.31, "onnx int8": 6.22}
HEADROOM_MB = 256


def sizing_engine(engine: str | None, quantization: str) -> str | None:
    """The measured rule an archive follows: `engine`, or "onnx int8" for an int8 ONNX graph."""
    return f"{engine} {INT8}" if engine == "onnx" and quantization == INT8 else engine


def needed_mb(engine: str, weights_bytes: int) -> float:
    """Memory the container needs at its peak for `weights_bytes` of weights run by `engine`."""
    weights_mb = weights_bytes / 2**20
    worker = WORKER_BASE_MB[engine] + WEIGHTS_FACTOR[engine] * weights_mb
    return FRONT_END_MB + worker + HEADROOM_MB


def smallest_memory_size_mb(engine: str, weights_bytes: int) -> int | None:
    """The smallest allowed `memorySizeMb` that holds the model; None when none does."""
    needed = needed_mb(engine, weights_bytes)
    return next((size for size in MEMORY_SIZES_MB if size >= needed), None)


def memory_fit_warning(
    model_id: str, engine: str | None, weights_bytes: int | None, memory_size_mb: int
) -> str | None:
    """A preview warning when `memory_size_mb` is below what the packaged model needs."""
    if not weights_bytes or engine not in WEIGHTS_FACTOR:
        return None
    fits = smallest_memory_size_mb(engine, weights_bytes)
    if fits is not None and fits <= memory_size_mb:
        return None
    what = (
        f"model {model_id} ({weights_bytes / 2**20:,.0f} MB of weights, {engine} engine) needs "
        f"about {needed_mb(engine, weights_bytes):,.0f} MB at its peak under the DLC's model "
        f"server, more than memorySizeMb={memory_size_mb}"
    )
    if fits is None:
        largest = MEMORY_SIZES_MB[-1]
        return f"{what} and than the largest size, {largest}; choose a smaller model"
    return f"{what}; set memorySizeMb: {fits} (the smallest size that fits)"
