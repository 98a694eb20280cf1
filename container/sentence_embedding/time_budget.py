"""A bound on the time one request may take: refused early when far past it, else at it.

SageMaker answers an invocation that takes over 60 s with an error, after billing all of it; a
request of a thousand long texts can take minutes here. Two refusals, each a 413 that says how
many such texts would fit:
- early: after each forward pass, the time per character so far times the request's characters
  projects the whole. Characters only stand in for tokens (Chinese or code take 1-2 a token,
  English prose 4-5), so a request is refused early only when projected past twice the budget,
  and not before a tenth of the budget is spent (a first pass slowed by warm-up);
- at the budget: a request still running when the budget is spent stops there, answered before
  the invocation times out instead of billed to the end of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from time import monotonic

from facts.embedding_api import InputError
from facts.sagemaker_endpoints import MAX_REQUEST_SECONDS_VARIABLE
from facts.serverless import INVOCATION_TIMEOUT_SECONDS

# The share of the budget spent before a projection counts, and how far past the budget a
# projection must reach to refuse early (see above).
WARM_UP_SHARE = 0.1
EARLY_MARGIN = 2.0


class TimeBudget:
    """`spent(texts)` after each pass: InputError (413) when the request overruns its budget."""

    def __init__(self, seconds: float | None, texts: Sequence[str]) -> None:
        self.seconds = seconds
        self.count = len(texts)
        self.total = _work(texts) if seconds is not None else 0
        self.done = 0
        self.done_texts = 0
        self.started = monotonic()

    def spent(self, texts: Sequence[str]) -> None:
        """Count `texts` as embedded; refuse the rest of the request if it overruns."""
        self.done_texts += len(texts)
        if self.seconds is None or self.done_texts >= self.count:
            return
        self.done += _work(texts)
        elapsed = monotonic() - self.started
        if elapsed >= self.seconds:
            self._refuse(f"took over {self.seconds:g} s for {self.done_texts} of them", elapsed)
        projected = elapsed * self.total / self.done
        if elapsed >= self.seconds * WARM_UP_SHARE and projected > self.seconds * EARLY_MARGIN:
            self._refuse(f"would take about {projected:.0f} s", projected)

    def _refuse(self, what: str, seconds: float) -> None:
        fits = max(1, int(self.count * self.seconds / seconds))  # type: ignore[operator]
        raise InputError(
            f"{self.count} inputs {what} to embed here, past the {self.seconds:g} s one request "
            f"may take (an invocation times out after {INVOCATION_TIMEOUT_SECONDS} s; "
            f"{MAX_REQUEST_SECONDS_VARIABLE}): send about {fits} or fewer such inputs per request",
            status=413,
        )


def _work(texts: Sequence[str]) -> int:
    """The characters a pass reads, +1 a text: an empty text costs a pass too."""
    return sum(len(text) + 1 for text in texts)
