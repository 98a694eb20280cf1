"""`embed file`'s engine, the pure parts: batching to the limits, and the concurrency rule."""

from __future__ import annotations

import json

import pytest

from embedding_client.batching import request_body
from embedding_client.bulk_batches import Batch, BatchPlanner, Limits, RunStats, split
from embedding_client.bulk_input import Document
from embedding_client.bulk_pacing import (
    DEFAULT_TOKEN_BUDGET,
    MIN_TOKEN_BUDGET,
    AdaptiveConcurrency,
    TokenBudget,
    estimate_tokens,
)
from facts.embedding_api import EmbeddingOptions

OPTIONS = EmbeddingOptions(encoding_format="base64")


def plan(documents, limits, *, done=(), budget=None):
    """Every batch the planner makes, the stats, and what it refused."""
    refused: list[tuple[str | None, str]] = []
    stats = RunStats()
    planner = BatchPlanner(
        documents,
        limits,
        OPTIONS,
        budget or TokenBudget(),
        set(done),
        stats,
        lambda document, problem: refused.append((document.id, problem)),
    )
    batches = []
    while (batch := planner.next_batch()) is not None:
        batches.append(batch)
    return batches, stats, refused


def docs(*texts: str) -> list[Document]:
    return [Document(f"d{i}", text, i + 1) for i, text in enumerate(texts)]


def test_batches_fill_up_to_the_texts_per_request_in_input_order():
    batches, _, _ = plan(docs(*"abcdefg"), Limits(max_texts=3, max_body_bytes=4_000_000))
    assert [[d.id for d in b.documents] for b in batches] == [
        ["d0", "d1", "d2"],
        ["d3", "d4", "d5"],
        ["d6"],
    ]


def test_every_request_body_stays_under_the_byte_limit_and_is_sized_exactly():
    texts = ["é" * 300, "b" * 500, "c" * 100, "d" * 700]
    batches, _, _ = plan(docs(*texts), Limits(max_texts=100, max_body_bytes=1200))
    for batch in batches:
        body = request_body(batch.texts, OPTIONS)
        assert len(body) <= 1200
        assert abs(len(body) - batch.body_bytes) <= 1  # the planner's count is the real size
    assert [len(b.documents) for b in batches] == [2, 2]


def test_the_token_budget_closes_a_batch_early():
    text = "x" * 300  # about 100 tokens by the estimate
    budget = TokenBudget(fixed=250)
    batches, _, _ = plan(docs(*[text] * 5), Limits(100, 4_000_000), budget=budget)
    assert [len(b.documents) for b in batches] == [2, 2, 1]


def test_token_estimates_are_capped_at_the_models_sequence_length():
    assert estimate_tokens("x" * 3000, None) == 1002
    assert estimate_tokens("x" * 3000, 256) == 256


def test_done_ids_are_skipped_and_duplicates_counted():
    documents = docs("a", "b", "c") + [Document("d1", "again", 9)]
    batches, stats, refused = plan(documents, Limits(10, 4_000_000), done={"d0"})
    assert [d.id for b in batches for d in b.documents] == ["d1", "d2"]
    assert (stats.already_done, stats.duplicates, refused) == (1, 1, [])


def test_empty_oversized_and_unreadable_records_are_refused_not_sent():
    documents = docs("fine", "   ", "y" * 2000) + [Document(None, None, 4, "line is not JSON")]
    batches, _, refused = plan(documents, Limits(10, max_body_bytes=1000))
    assert [d.id for b in batches for d in b.documents] == ["d0"]
    assert refused[0] == ("d1", "empty text: nothing to embed")
    assert refused[1][0] == "d2" and "one request holds at most 1000 bytes" in refused[1][1]
    assert refused[2] == (None, "line is not JSON")


def test_an_oversized_text_is_measured_as_the_request_carries_it():
    """900 quotes are 900 bytes of UTF-8 but 1,802 as a JSON string, and a comma: 1,803."""
    _, _, refused = plan(docs('"' * 900), Limits(10, max_body_bytes=1000))
    assert refused[0][1].startswith("text takes 1803 bytes of a request (as JSON); one request")


def test_a_refused_batch_splits_into_halves_that_cover_it():
    batch = Batch(docs(*"abcde"), tokens=50, body_bytes=500)
    halves = split(batch)
    assert [[d.id for d in h.documents] for h in halves] == [["d0", "d1"], ["d2", "d3", "d4"]]
    assert sum(h.tokens for h in halves) == 50


def test_throttling_halves_the_limit_once_per_round_of_requests():
    limiter = AdaptiveConcurrency(8)
    assert limiter.on_throttle(sent_at=1.0, now=2.0) and limiter.limit == 4
    # The other requests of that round were sent before the cut: no further halving.
    assert not limiter.on_throttle(sent_at=1.5, now=2.1) and limiter.limit == 4
    assert limiter.on_throttle(sent_at=2.5, now=3.0) and limiter.limit == 2
    limiter.on_throttle(sent_at=3.5, now=4.0)
    limiter.on_throttle(sent_at=4.5, now=5.0)
    assert limiter.limit == limiter.lowest == 1  # never below one


def test_successes_grow_the_limit_back_to_where_it_started_and_no_further():
    limiter = AdaptiveConcurrency(4)
    limiter.on_throttle(sent_at=1.0, now=1.0)
    limiter.on_throttle(sent_at=2.0, now=2.0)
    assert limiter.limit == 1
    grown = []
    for _ in range(20):
        limiter.on_success()
        grown.append(limiter.limit)
    assert grown[:6] == [2, 2, 3, 3, 3, 4]  # one more after `limit` successes in a row
    assert max(grown) == 4 and limiter.lowest == 1


def test_concurrency_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        AdaptiveConcurrency(0)


def test_token_budget_shrinks_after_a_slow_request_and_grows_while_full_ones_are_fast():
    budget = TokenBudget()
    assert budget.value == DEFAULT_TOKEN_BUDGET
    budget.observe(tokens=16_000, seconds=60.0)
    assert budget.value == 4_000  # sized for 15 s at the speed just seen
    budget.observe(tokens=4_000, seconds=1.0)
    assert budget.value == 5_000
    budget.observe(tokens=100, seconds=1.0)  # a small request says nothing about capacity
    assert budget.value == 5_000
    for _ in range(20):
        budget.shrink()
    assert budget.value == MIN_TOKEN_BUDGET


def test_a_fixed_token_budget_never_moves():
    budget = TokenBudget(fixed=1000)
    budget.observe(tokens=1000, seconds=100.0)
    budget.shrink()
    assert budget.value == 1000


def test_request_bodies_in_json_are_what_the_planner_counts():
    text = 'quotes " and \\ and 漢字'
    batches, _, _ = plan(docs(text), Limits(10, 4_000_000))
    assert json.loads(request_body(batches[0].texts, OPTIONS))["inputs"] == [text]
    assert batches[0].body_bytes == len(request_body([text], OPTIONS)) + 1
