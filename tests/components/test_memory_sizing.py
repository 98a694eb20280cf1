"""The memory fit: the smallest serverless size for a packaged model, from measured memory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components import memory_sizing
from components.memory_sizing import (
    memory_fit_warning,
    needed_mb,
    sizing_engine,
    smallest_memory_size_mb,
)
from facts.serverless import MEMORY_SIZES_MB

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "cold_start.json"
REFERENCE_WEIGHTS = 90_868_376  # all-MiniLM-L6-v2's model.safetensors
MB = 2**20


@pytest.mark.parametrize("engine", ["torch", "onnx"])
def test_the_reference_model_fits_the_default_size(engine: str) -> None:
    assert smallest_memory_size_mb(engine, REFERENCE_WEIGHTS) <= 2048
    assert memory_fit_warning("org/small", engine, REFERENCE_WEIGHTS, 2048) is None


@pytest.mark.parametrize("engine", ["torch", "onnx"])
def test_a_size_below_the_fit_is_warned_about_naming_the_size_that_fits(engine: str) -> None:
    weights = 1_340_000_000
    fits = smallest_memory_size_mb(engine, weights)
    assert fits is not None and fits > MEMORY_SIZES_MB[0]
    assert needed_mb(engine, weights) <= fits < needed_mb(engine, weights) + 1024
    warning = memory_fit_warning("org/large", engine, weights, fits - 1024)
    assert warning is not None
    assert f"memorySizeMb={fits - 1024}" in warning and f"memorySizeMb: {fits}" in warning
    assert "org/large" in warning and engine in warning
    assert memory_fit_warning("org/large", engine, weights, fits) is None


def test_weights_no_size_holds_are_warned_about_as_such() -> None:
    warning = memory_fit_warning("org/huge", "torch", 8 * 2**30, 6144)
    assert warning is not None and "largest size, 6144" in warning


@pytest.mark.parametrize(("engine", "weights"), [(None, 10**10), ("torch", None), ("x", 10**10)])
def test_no_warning_without_an_engine_or_weights(engine, weights) -> None:
    assert memory_fit_warning("org/name", engine, weights, 1024) is None


@pytest.mark.parametrize("engine", ["torch", "onnx", "onnx int8"])
def test_the_rule_is_the_measured_one(engine: str) -> None:
    """The constants reproduce the peaks `make bench-cold-start` measured, at both sizes."""
    rows = [row for row in json.loads(RESULTS.read_text())["engines"] if row["engine"] == engine]
    assert len(rows) == 2
    for row in rows:
        worker = row["full_batch_peak_rss_mb"]
        predicted = (
            memory_sizing.WORKER_BASE_MB[engine]
            + memory_sizing.WEIGHTS_FACTOR[engine] * row["weights_bytes"] / MB
        )
        assert predicted == pytest.approx(worker, rel=0.05)
        assert memory_sizing.FRONT_END_MB >= row["java_peak_rss_mb"]


@pytest.mark.parametrize(
    ("engine", "quantization", "rule"),
    [("onnx", "int8", "onnx int8"), ("onnx", "none", "onnx"), ("torch", "none", "torch")],
)
def test_an_archive_follows_its_engines_rule_and_int8_its_own(engine, quantization, rule) -> None:
    assert sizing_engine(engine, quantization) == rule
