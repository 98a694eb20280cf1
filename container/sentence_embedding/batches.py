"""Split a padded batch into runs of similar length, so the transformer reads less padding.

The tokenizer pads every text of a batch to its longest; a pad token costs the forward pass as
much as a real one, and a batch of mixed lengths is often a quarter padding. Rows sorted by length
and cut where a new run saves more padding than a run costs: each run pads only to its own
longest. With right padding a text's tokens keep their positions and the padding is masked out,
so every vector is the one the whole batch gives (to float rounding). Left-padded batches keep
their width: trimming their padding would shift the positions of the real tokens.
A pass also holds at most MAX_ATTENTION_CELLS of attention, so long texts go a few rows at a time.
"""

from __future__ import annotations

import numpy as np

# What one more forward pass costs, counted in padded tokens: its fixed overhead (on a model as
# small as all-MiniLM-L6-v2, mostly reading the weights once more: about 12-16 tokens' worth on
# one thread, more on two), with a margin so runs stay large enough for efficient matrix products.
RUN_COST_TOKENS = 32
# The most attention scores (rows × length², per head and layer) one forward pass may hold: a
# batch of 32 texts of 512 tokens, as BERT-sized models have always run. A model that reads 8,192
# tokens (nomic-embed-text, jina-embeddings-v2, gte-v1.5, bge-m3) would otherwise hold 32 × 8192²
# scores per head in a full batch: with 12 heads in float32, about 100 GB.
MAX_ATTENTION_CELLS = 32 * 512 * 512


def length_runs(
    attention_mask: np.ndarray, padding_side: str = "right", run_cost: int = RUN_COST_TOKENS
) -> list[tuple[list[int], int]]:
    """(row indices, padded length) per forward pass; the whole batch when splitting saves nothing.

    Rows go longest first; the cut points minimise padded tokens + `run_cost` per run (exact, by
    dynamic programming over the sorted lengths).
    """
    rows, width = attention_mask.shape
    if padding_side != "right" or rows < 2:
        return within_attention_budget([(list(range(rows)), width)])
    lengths = attention_mask.sum(axis=1).tolist()
    order = sorted(range(rows), key=lambda row: -lengths[row])
    longest = [int(lengths[row]) for row in order]
    best, cut = _least_cost_cuts(longest, run_cost)
    runs: list[tuple[list[int], int]] = []
    end = rows
    while end > 0:
        start = cut[end]
        runs.append((order[start:end], max(1, longest[start])))
        end = start
    runs.reverse()
    if len(runs) == 1:
        runs = [(list(range(rows)), width)]
    return within_attention_budget(runs)


def _least_cost_cuts(longest: list[int], run_cost: int) -> tuple[list[int], list[int]]:
    """best[end]: the least cost of the first `end` rows; cut[end]: where its last run starts.

    Plain loops, not a generator of tuples: at 32 rows this runs on every request, and the
    tuples took 5 us a text, as much as the rest of the request's Python together.
    """
    rows = len(longest)
    best = [0] * (rows + 1)
    cut = [0] * (rows + 1)
    for end in range(1, rows + 1):
        least, where = None, 0
        for start in range(end):  # the earliest start wins a tie, as min() over (cost, start)
            cost = best[start] + (end - start) * longest[start]
            if least is None or cost < least:
                least, where = cost, start
        best[end], cut[end] = least + run_cost, where
    return best, cut


def within_attention_budget(runs: list[tuple[list[int], int]]) -> list[tuple[list[int], int]]:
    """`runs` with each cut into passes of at most MAX_ATTENTION_CELLS (one row at the least)."""
    bounded = []
    for rows, length in runs:
        per_pass = max(1, MAX_ATTENTION_CELLS // max(1, length) ** 2)
        bounded += [
            (rows[start : start + per_pass], length) for start in range(0, len(rows), per_pass)
        ]
    return bounded
