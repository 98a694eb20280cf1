"""How hard `embed file` drives its target: the estimated tokens per request (sized by latency),
the requests in flight (halved on throttling, grown back on success) and the retries of one batch
(the client's one backoff, embedding_client/transport.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from embedding_client.transport import Backoff

# Estimated tokens per request to start with, and the bounds of the adaptive budget.
DEFAULT_TOKEN_BUDGET = 16_384
MIN_TOKEN_BUDGET = 512
MAX_TOKEN_BUDGET = 262_144
# A request should take about TARGET_SECONDS: a quarter of SageMaker's 60 s invocation limit.
TARGET_SECONDS = 15.0
SLOW_SECONDS = 30.0
# Tries per batch before the run stops: throttling is expected and waited out longer.
MAX_THROTTLED_ATTEMPTS = 12
MAX_FAILED_ATTEMPTS = 5


def estimate_tokens(text: str, max_sequence_length: int | None) -> int:
    """Tokens a text is likely to cost: about 3 UTF-8 bytes per token, plus two special tokens,
    capped at the model's maximum sequence length (the endpoint truncates beyond it)."""
    estimate = math.ceil(len(text.encode("utf-8")) / 3) + 2
    return min(estimate, max_sequence_length) if max_sequence_length else estimate


@dataclass(frozen=True)
class RetryPolicy:
    """How many tries one batch gets, and the backoff between them."""

    backoff: Backoff = Backoff()
    max_throttled: int = MAX_THROTTLED_ATTEMPTS
    max_failed: int = MAX_FAILED_ATTEMPTS


class TokenBudget:
    """Estimated tokens per request: fixed when the user sets it, else sized by latency."""

    def __init__(self, fixed: int | None = None) -> None:
        self.fixed = fixed
        self.value = fixed or DEFAULT_TOKEN_BUDGET

    def observe(self, tokens: int, seconds: float) -> None:
        if self.fixed or tokens <= 0:
            return
        if seconds > SLOW_SECONDS:
            self.value = max(MIN_TOKEN_BUDGET, int(tokens * TARGET_SECONDS / seconds))
        elif seconds < TARGET_SECONDS / 2 and tokens >= 0.8 * self.value:
            self.value = min(MAX_TOKEN_BUDGET, int(self.value * 1.25))

    def shrink(self) -> None:
        if not self.fixed:
            self.value = max(MIN_TOKEN_BUDGET, self.value // 2)


class AdaptiveConcurrency:
    """Requests allowed in flight: halved on throttling, grown back by one per round of successes.

    Only a throttle of a request sent after the last cut cuts again: once per round, not request.
    """

    def __init__(self, maximum: int) -> None:
        if maximum < 1:
            raise ValueError(f"concurrency must be at least 1, got {maximum}")
        self.maximum = maximum
        self.limit = maximum
        self.lowest = maximum
        self._successes = 0
        self._last_cut = -math.inf

    def on_throttle(self, sent_at: float, now: float) -> bool:
        """Halve the limit unless this request was already in flight at the last cut."""
        if sent_at < self._last_cut:
            return False
        self.limit = max(1, self.limit // 2)
        self.lowest = min(self.lowest, self.limit)
        self._last_cut = now
        self._successes = 0
        return True

    def on_success(self) -> None:
        self._successes += 1
        if self.limit < self.maximum and self._successes >= self.limit:
            self.limit += 1
            self._successes = 0
