"""The bound on one request's time: projected from its first forward passes, refused with 413."""

from __future__ import annotations

import pytest

from facts.embedding_api import EmbeddingOptions, InputError
from tests.support.models import container_module

time_budget = container_module("time_budget")


class Clock:
    """A monotonic clock that moves only when told: the tests' time, not the machine's."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(time_budget, "monotonic", clock)
    return clock


def test_a_request_projected_past_twice_the_budget_is_a_413_saying_how_many_fit(clock):
    budget = time_budget.TimeBudget(55.0, ["x" * 99] * 100)
    clock.now += 40.0  # the first quarter took 40 s: the whole would take 160 s
    with pytest.raises(InputError) as raised:
        budget.spent(["x" * 99] * 25)
    assert raised.value.status == 413
    assert str(raised.value).startswith("100 inputs would take about 160 s to embed here, past the")
    assert "send about 34 or fewer such inputs per request" in str(raised.value)


def test_a_projection_within_twice_the_budget_runs_until_the_budget_is_spent(clock):
    """Characters only stand in for tokens: 80 s projected may be 44 s of work; 55 s is the end."""
    budget = time_budget.TimeBudget(55.0, ["x" * 99] * 100)
    clock.now += 20.0
    budget.spent(["x" * 99] * 25)
    clock.now += 20.0
    budget.spent(["x" * 99] * 25)
    clock.now += 20.0
    with pytest.raises(InputError, match="100 inputs took over 55 s for 75 of them to embed"):
        budget.spent(["x" * 99] * 25)


def test_a_request_within_the_budget_runs_to_its_end(clock):
    budget = time_budget.TimeBudget(55.0, ["x" * 99] * 100)
    for _ in range(4):
        clock.now += 13.0  # 52 s in all
        budget.spent(["x" * 99] * 25)


def test_no_projection_counts_before_a_tenth_of_the_budget_is_spent(clock):
    budget = time_budget.TimeBudget(55.0, ["x" * 99] * 100)
    clock.now += 5.0  # 1 % in 5 s (a slow first pass): 500 s projected, but only 5 s spent
    budget.spent(["x" * 99])
    clock.now += 1.0
    with pytest.raises(InputError, match="100 inputs would take about 300 s"):
        budget.spent(["x" * 99])


def test_the_last_pass_is_never_refused_and_no_budget_never_refuses(clock):
    last = time_budget.TimeBudget(55.0, ["x"] * 2)
    clock.now += 100.0
    last.spent(["x"] * 2)
    unbounded = time_budget.TimeBudget(None, ["x"] * 100)
    unbounded.spent(["x"])


def test_the_encoder_stops_a_request_after_the_pass_that_shows_it_would_overrun(
    loaded, clock, monkeypatch
):
    """The reference model, 64 texts in two passes of 32; each pass 'takes' 60 s."""
    passes = []
    run = loaded.engine.token_embeddings if loaded.engine.name == "torch" else None
    assert run is not None

    def slow(features):
        passes.append(len(features["input_ids"]))
        clock.now += 60.0
        return run(features)

    monkeypatch.setattr(loaded.engine, "token_embeddings", slow)
    with pytest.raises(InputError) as raised:
        loaded.embed([f"sentence {i}" for i in range(64)], EmbeddingOptions())
    assert raised.value.status == 413 and len(passes) == 1
