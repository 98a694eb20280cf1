"""The engine rules the stack config, the loader event and the packager's check share."""

from __future__ import annotations

import pytest

from facts import engine_choice
from facts.engine_choice import EngineAsk, choose_engine, fusion_default

O2 = "onnx/model_O2.onnx"


def problems(**ask: object) -> list[tuple[str, str]]:
    return [(p.field, p.reason) for p in choose_engine(EngineAsk(**ask)).problems]


def test_auto_with_a_runtime_and_the_export_is_a_fused_onnx_archive() -> None:
    choice = choose_engine(EngineAsk("auto", "3.10", onnx_export=True))
    assert (choice.engine, choice.fusion, choice.graph) == ("onnx", True, "onnx/model.onnx")
    assert choice.runtime is not None and choice.runtime.python == "3.10"
    assert choice.problems == ()


@pytest.mark.parametrize(
    "ask",
    [
        EngineAsk("auto", "3.10", onnx_export=False),
        EngineAsk("auto", "3.10"),  # the export not known yet
        EngineAsk("auto", "3.13", onnx_export=True),  # no wheel for that Python
        EngineAsk("torch", "3.10", onnx_export=True),
        EngineAsk("auto", "3.10", source_archive=True, onnx_export=True),
    ],
)
def test_otherwise_the_archive_is_pytorchs_unfused(ask: EngineAsk) -> None:
    choice = choose_engine(ask)
    assert (choice.engine, choice.runtime, choice.fusion) == ("torch", None, False)


def test_the_export_decides_only_where_onnx_can_run() -> None:
    assert choose_engine(EngineAsk("auto", "3.10")).export_decides is True
    assert choose_engine(EngineAsk("torch", "3.10")).export_decides is False
    assert choose_engine(EngineAsk("onnx", "3.13")).export_decides is False


@pytest.mark.parametrize(
    ("engine", "asked", "fused"),
    [
        ("onnx", None, True),
        ("onnx", False, False),
        ("onnx", True, True),
        ("torch", None, False),
        ("torch", True, False),
    ],
)
def test_fusion_is_on_for_onnx_unless_turned_off(
    engine: str, asked: bool | None, fused: bool
) -> None:
    assert fusion_default(engine, asked) is fused


def test_onnx_needs_a_hub_model_and_a_known_runtime() -> None:
    assert problems(engine="onnx", python="3.10", source_archive=True) == [
        (engine_choice.ENGINE, engine_choice.SOURCE_ARCHIVE)
    ]
    assert problems(engine="onnx", python="3.13") == [
        (engine_choice.PYTHON, engine_choice.NO_RUNTIME)
    ]


def test_onnx_without_the_export_is_refused_on_the_graph_that_was_asked_for() -> None:
    assert problems(engine="onnx", python="3.10", onnx_export=False) == [
        (engine_choice.ENGINE, engine_choice.NO_EXPORT)
    ]
    assert problems(engine="auto", python="3.10", onnx_file=O2, onnx_export=False) == [
        (engine_choice.ONNX_FILE, engine_choice.NO_EXPORT)
    ]


@pytest.mark.parametrize(
    ("ask", "reason"),
    [
        ({"backend": "bedrock"}, engine_choice.NOT_SAGEMAKER),
        ({"engine": "torch"}, engine_choice.TORCH_ENGINE),
        ({"source_archive": True}, engine_choice.SOURCE_ARCHIVE),
    ],
)
def test_a_graph_or_a_fusion_asked_where_no_onnx_archive_is_made_is_refused(
    ask: dict, reason: str
) -> None:
    base = {"python": "3.10"} | ask
    assert problems(onnx_file=O2, **base) == [(engine_choice.ONNX_FILE, reason)]
    assert problems(onnx_fusion=False, **base) == [(engine_choice.ONNX_FUSION, reason)]


def test_a_graph_named_badly_says_why_in_its_detail() -> None:
    (problem,) = choose_engine(EngineAsk("auto", "3.10", "onnx/model_O4.onnx")).problems
    assert (problem.field, problem.reason) == (engine_choice.ONNX_FILE, engine_choice.BAD_NAME)
    assert "fp16" in problem.explain()


def test_a_graph_under_auto_without_a_runtime_is_refused_once() -> None:
    assert problems(engine="auto", python="3.13", onnx_file=O2) == [
        (engine_choice.ONNX_FILE, engine_choice.NO_RUNTIME)
    ]
    assert problems(engine="onnx", python="3.13", onnx_file=O2) == [
        (engine_choice.PYTHON, engine_choice.NO_RUNTIME)
    ]


def test_int8_on_an_onnx_archive_is_quantized() -> None:
    choice = choose_engine(EngineAsk("auto", "3.10", onnx_export=True, onnx_quantization="int8"))
    assert (choice.engine, choice.quantization, choice.problems) == ("onnx", "int8", ())


@pytest.mark.parametrize(
    ("ask", "reason"),
    [
        (EngineAsk("torch", "3.10", onnx_export=True), engine_choice.TORCH_ENGINE),
        (EngineAsk("auto", "3.10", onnx_export=False), engine_choice.NO_EXPORT),
        (EngineAsk("auto", "3.13", onnx_export=True), engine_choice.NO_RUNTIME),
        (EngineAsk("auto", "3.10", source_archive=True), engine_choice.SOURCE_ARCHIVE),
        (EngineAsk("auto", "3.10", backend="bedrock"), engine_choice.NOT_SAGEMAKER),
    ],
)
def test_int8_where_no_onnx_archive_is_packaged_is_a_problem_never_fp32(
    ask: EngineAsk, reason: str
) -> None:
    from dataclasses import replace

    choice = choose_engine(replace(ask, onnx_quantization="int8"))
    assert (engine_choice.ONNX_QUANTIZATION, reason) in [
        (p.field, p.reason) for p in choice.problems
    ]
    assert choice.quantization == "none" or choice.engine == "onnx"


def test_none_is_no_problem_with_any_engine() -> None:
    assert problems(engine="torch", python="3.10", onnx_quantization="none") == []
