"""Which engine an archive is for: the rules the stack config, the event and `check` share.

`choose_engine` decides the engine, graph, fusion and quantization, and returns problems as
(field, reason) pairs, which each caller words in its own terms (`inferenceEngine`, `engine`,
`inference_engine`).
"""

from __future__ import annotations

from dataclasses import dataclass

from facts.onnx_quantization import INT8, NO_QUANTIZATION
from facts.onnx_runtime import ONNX_MODEL_FILE, RuntimeWheel, onnx_file_problem, runtime_wheel

# What a problem is about: the engine asked for, the container's Python, the graph, the fusion,
# the quantization.
ENGINE, PYTHON, ONNX_FILE, ONNX_FUSION = "engine", "python", "onnx_file", "onnx_fusion"
ONNX_QUANTIZATION = "onnx_quantization"
# Why. BAD_NAME: the graph's name alone rules it out (`EngineProblem.detail` says why).
SOURCE_ARCHIVE = "source-archive"  # a source archive is packaged for PyTorch
NO_RUNTIME = "no-runtime"  # no ONNX Runtime wheel is known for the container's Python
NO_EXPORT = "no-export"  # the pinned commit lacks the graph
TORCH_ENGINE = "torch-engine"  # the engine asked for is PyTorch, which runs no graph
NOT_SAGEMAKER = "not-sagemaker"  # the ONNX engine runs on the SageMaker backend only
BAD_NAME = "bad-name"
# Each reason in plain words, for a caller with nothing more specific to say.
REASONS = {
    SOURCE_ARCHIVE: "a source archive is packaged for PyTorch",
    NO_RUNTIME: "no ONNX Runtime wheel is known for the container's Python",
    NO_EXPORT: "the commit does not ship the graph",
    TORCH_ENGINE: "the PyTorch engine packages no ONNX graph",
    NOT_SAGEMAKER: "the ONNX engine runs on the SageMaker backend only",
}


@dataclass(frozen=True)
class EngineAsk:
    """What was asked for, as far as it is known where the question is asked."""

    engine: str = "auto"  # auto | torch | onnx
    python: str | None = None  # the container's Python ("3.10")
    onnx_file: str | None = None  # a graph asked for by name; None: the default, not asked
    onnx_fusion: bool | None = None  # fusion asked for (true or false); None: not asked
    onnx_quantization: str = NO_QUANTIZATION  # none | int8: int8 needs an ONNX archive
    source_archive: bool = False  # packaging the user's archive, not a Hub commit
    backend: str = "sagemaker"
    # Whether the commit ships the graph; None: not known here (the config, a preview's pin).
    onnx_export: bool | None = None


@dataclass(frozen=True)
class EngineProblem:
    """One thing wrong with an `EngineAsk`: about `field`, for `reason`."""

    field: str
    reason: str
    detail: str = ""

    def explain(self) -> str:
        """Why, in plain words (the name's own problem for BAD_NAME)."""
        return self.detail or REASONS[self.reason]


@dataclass(frozen=True)
class EngineChoice:
    """The archive's engine, and the problems that stop it from being built as asked."""

    engine: str  # torch | onnx
    runtime: RuntimeWheel | None  # the wheel ONNX archives vendor (None for PyTorch)
    graph: str  # the graph the ONNX engine runs
    fusion: bool  # whether the loader fuses it
    problems: tuple[EngineProblem, ...]
    quantization: str = NO_QUANTIZATION  # int8: the loader quantizes it (ONNX archives only)
    # ONNX is asked for (or `auto`) and can run here: whether the commit ships the graph decides.
    export_decides: bool = False


def fusion_default(engine: str, asked: bool | None) -> bool:
    """The loader fuses the graph of every ONNX archive unless told not to; PyTorch has none."""
    return engine == "onnx" and asked is not False


def choose_engine(ask: EngineAsk) -> EngineChoice:
    """ONNX when asked for (or `auto`), a wheel is known and the commit ships the graph; until
    the export is known to be there, PyTorch.
    """
    runtime = runtime_wheel(ask.python)
    onnx = ask.engine != "torch" and not ask.source_archive and runtime is not None
    engine = "onnx" if onnx and ask.onnx_export is True else "torch"
    return EngineChoice(
        engine=engine,
        runtime=runtime if engine == "onnx" else None,
        graph=ask.onnx_file or ONNX_MODEL_FILE,
        fusion=fusion_default(engine, ask.onnx_fusion),
        problems=(
            *_engine_problems(ask, runtime),
            *_graph_problems(ask, runtime),
            *_quantization_problems(ask, runtime),
        ),
        quantization=ask.onnx_quantization if engine == "onnx" else NO_QUANTIZATION,
        export_decides=onnx,
    )


def _engine_problems(ask: EngineAsk, runtime: RuntimeWheel | None) -> list[EngineProblem]:
    problems = []
    if ask.engine == "onnx" and ask.source_archive:
        problems.append(EngineProblem(ENGINE, SOURCE_ARCHIVE))
    if ask.engine == "onnx" and runtime is None:
        problems.append(EngineProblem(PYTHON, NO_RUNTIME))
    if ask.engine == "onnx" and ask.onnx_file is None and ask.onnx_export is False:
        problems.append(EngineProblem(ENGINE, NO_EXPORT))
    return problems


def _graph_problems(ask: EngineAsk, runtime: RuntimeWheel | None) -> list[EngineProblem]:
    """A graph or a fusion asked for where no ONNX archive can be packaged."""
    problems = []
    elsewhere = _onnx_ruled_out(ask)
    if ask.onnx_file is not None:
        named = onnx_file_problem(ask.onnx_file)
        if named is not None:
            problems.append(EngineProblem(ONNX_FILE, BAD_NAME, named))
        elif elsewhere is not None:
            problems.append(EngineProblem(ONNX_FILE, elsewhere))
        elif ask.engine != "onnx" and runtime is None:  # with `onnx`, PYTHON's problem says it
            problems.append(EngineProblem(ONNX_FILE, NO_RUNTIME))
        elif ask.onnx_export is False:
            problems.append(EngineProblem(ONNX_FILE, NO_EXPORT))
    if ask.onnx_fusion is not None and elsewhere is not None:
        problems.append(EngineProblem(ONNX_FUSION, elsewhere))
    return problems


def _quantization_problems(ask: EngineAsk, runtime: RuntimeWheel | None) -> list[EngineProblem]:
    """int8 asked for where the archive would be PyTorch's: refused, never shipped as fp32."""
    if ask.onnx_quantization != INT8:
        return []
    why = _onnx_ruled_out(ask)
    if why is None and runtime is None:
        why = NO_RUNTIME
    if why is None and ask.onnx_export is False:
        why = NO_EXPORT
    return [] if why is None else [EngineProblem(ONNX_QUANTIZATION, why)]


def _onnx_ruled_out(ask: EngineAsk) -> str | None:
    """Why no ONNX archive is packaged whatever the commit ships (None: one may be)."""
    if ask.backend != "sagemaker":
        return NOT_SAGEMAKER
    if ask.engine == "torch":
        return TORCH_ENGINE
    if ask.source_archive:
        return SOURCE_ARCHIVE
    return None
