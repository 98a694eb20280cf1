"""A bound on the time one request may take, projected from its own first forward passes.

SageMaker answers an invocation that takes over 60 s with an error, after billing all of it; a
request of a thousand long texts can take minutes here. Texts run longest first, so after each
forward pass the time spent per character read so far, times the characters of the whole
request, over-estimates the whole request's time: one past the budget is refused then, with a 413
that says how many texts would fit. Not before a tenth of the budget is spent, so that a first
pass slowed by the engine's warm-up does not refuse a request that fits; at most that tenth
is spent on a request refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from time import monotonic

from facts.embedding_api import InputError
from facts.sagemaker_endpoints import MAX_REQUEST_SECONDS_VARIABLE
from facts.serverless import INVOCATION_TIMEOUT_SECONDS

# The share of the budget spent before a projection counts (see above).
WARM_UP_SHARE = 0.1


class TimeBudget:
    """`spent(chars)` after each pass: InputError (413) when the request would overrun."""

    def __init__(self, seconds: float | None, texts: Sequence[str]) -> None:
        self.seconds = seconds
        self.count = len(texts)
        self.total = sum(len(text) + 1 for text in texts)  # +1: an empty text costs a pass too
        self.done = 0
        self.started = monotonic()

    def spent(self, texts: Sequence[str]) -> None:
        """Count `texts` as embedded; refuse the rest of the request if it would overrun."""
        self.done += sum(len(text) + 1 for text in texts)
        if self.seconds is None or self.done >= self.total:
            return
        elapsed = monotonic() - self.started
        if elapsed < self.seconds * WARM_UP_SHARE:
            return
        projected = elapsed * self.total / self.done
        if projected > self.seconds:
            fits = max(1, int(self.count * self.seconds / projected))
            raise InputError(
                f"{self.count} inputs would take about {projected:.0f} s to embed here, past "
                f"the {self.seconds:g} s one request may take (an invocation times out after "
                f"{INVOCATION_TIMEOUT_SECONDS} s; {MAX_REQUEST_SECONDS_VARIABLE}): send about "
                f"{fits} or fewer such inputs per request",
                status=413,
            )
