"""Mixed-length batches run as a few shorter forward passes, each padded only to its longest."""

from __future__ import annotations

import itertools

import numpy as np

from tests.support.models import container_module

batches = container_module("batches")


def right_padded(lengths: list[int]) -> np.ndarray:
    width = max(lengths)
    return np.array([[1] * length + [0] * (width - length) for length in lengths])


def padded_tokens(runs: list[tuple[list[int], int]]) -> int:
    return sum(len(rows) * length for rows, length in runs)


def test_mixed_lengths_split_into_runs_that_cover_every_row_once_at_its_run_length():
    lengths = [30, 12, 31, 10, 29, 11, 30, 12, 9, 31, 30, 10]
    runs = batches.length_runs(right_padded(lengths), "right", run_cost=16)
    assert sorted(row for rows, _ in runs for row in rows) == list(range(len(lengths)))
    assert len(runs) == 2
    for rows, length in runs:
        assert length == max(lengths[row] for row in rows)
    assert padded_tokens(runs) < len(lengths) * max(lengths)


def test_a_run_is_cut_only_where_it_saves_more_padding_than_a_forward_pass_costs():
    # Whole: 4 × 20 = 80 tokens + 1 pass; split: 2 × 20 + 2 × 18 = 76 tokens + 2 passes.
    lengths = [20, 20, 18, 18]
    mask = right_padded(lengths)
    assert batches.length_runs(mask, "right", run_cost=3) == [([0, 1], 20), ([2, 3], 18)]
    assert batches.length_runs(mask, "right", run_cost=4) == [([0, 1, 2, 3], 20)]


def least_cost_by_trying_every_cut(lengths: list[int], run_cost: int) -> int:
    """Padded tokens + run_cost per run, least over every way to cut the sorted rows."""
    longest = sorted(lengths, reverse=True)
    least = None
    for count in range(len(longest)):
        for cuts in itertools.combinations(range(1, len(longest)), count):
            starts, ends = (0, *cuts), (*cuts, len(longest))
            runs = zip(starts, ends, strict=True)
            cost = sum((end - start) * longest[start] + run_cost for start, end in runs)
            least = cost if least is None else min(least, cost)
    return least


def test_the_runs_cost_no_more_than_the_best_of_every_possible_cut():
    generator = np.random.default_rng(7)
    for _ in range(200):
        lengths = generator.integers(1, 40, size=int(generator.integers(2, 9))).tolist()
        run_cost = int(generator.integers(0, 20))
        runs = batches.length_runs(right_padded(lengths), "right", run_cost=run_cost)
        assert padded_tokens(runs) + run_cost * len(runs) == least_cost_by_trying_every_cut(
            lengths, run_cost
        )


def test_equal_lengths_and_single_rows_stay_one_forward_pass_over_the_whole_batch():
    assert batches.length_runs(right_padded([7, 7, 7]), "right") == [([0, 1, 2], 7)]
    assert batches.length_runs(right_padded([5]), "right") == [([0], 5)]


def test_left_padded_batches_stay_whole_because_trimming_would_shift_token_positions():
    lengths = [40, 4, 4, 4, 4, 4, 4, 4]
    mask = right_padded(lengths)[:, ::-1]
    assert batches.length_runs(mask, "left", run_cost=1) == [(list(range(8)), 40)]


def test_long_texts_run_a_few_rows_at_a_time_so_attention_stays_bounded():
    # 32 texts of 2,048 tokens: 2 rows per pass keeps rows × length² within 32 × 512².
    runs = batches.length_runs(right_padded([2048] * 32), "right")
    assert [len(rows) for rows, _ in runs] == [2] * 16
    assert all(len(rows) * length**2 <= batches.MAX_ATTENTION_CELLS for rows, length in runs)
    assert sorted(row for rows, _ in runs for row in rows) == list(range(32))


def test_a_left_padded_batch_keeps_its_width_when_cut_into_rows():
    mask = np.array([[0] * (1024 - 1000) + [1] * 1000] * 10 + [[1] * 1024] * 2)
    runs = batches.length_runs(mask, "left")
    assert [len(rows) for rows, _ in runs] == [8, 4]
    assert {length for _, length in runs} == {1024}


def test_one_text_longer_than_the_budget_still_runs_alone():
    assert batches.length_runs(right_padded([8192]), "right") == [([0], 8192)]


def test_a_batch_of_empty_texts_without_special_tokens_runs_as_it_is():
    # A tokenizer that adds no special tokens gives empty texts a zero-width mask.
    mask = np.zeros((3, 0), dtype=np.int64)
    assert batches.length_runs(mask, "left") == [([0, 1, 2], 0)]
