"""What `embed file` shows: a progress bar on a terminal (tqdm; silent when stderr is not one), and
a summary at the end (done, skipped, failed, elapsed time, estimated cost).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, TextIO

from embedding_client.bulk_batches import RunStats
from embedding_client.bulk_runner import Progress
from facts import pricing


class TerminalProgress(Progress):
    """A tqdm bar over the documents still to do; quiet when not on a terminal."""

    def __init__(self, total: int | None, stream: TextIO, enabled: bool) -> None:
        from tqdm import tqdm

        self._stream = stream
        self._enabled = enabled
        self._bar: Any = tqdm(
            total=total,
            unit="doc",
            unit_scale=True,
            dynamic_ncols=True,
            file=stream,
            disable=not enabled,
            smoothing=0.05,
        )
        self._started = time.monotonic()
        self._tokens = 0
        self._limit: int | None = None
        self._shown = 0.0

    def advance(self, documents: int, tokens: int) -> None:
        self._tokens += tokens
        self._bar.update(documents)
        self._postfix()

    def concurrency(self, limit: int) -> None:
        self._limit = limit

    def message(self, text: str) -> None:
        if self._enabled:
            self._bar.write(text, file=self._stream)
        else:
            print(text, file=self._stream)

    def _postfix(self) -> None:
        now = time.monotonic()
        if not self._enabled or now - self._shown < 0.5:
            return
        self._shown = now
        rate = self._tokens / max(now - self._started, 1e-9)
        in_flight = f", {self._limit} in flight" if self._limit else ""
        self._bar.set_postfix_str(f"{rate:,.0f} tok/s{in_flight}", refresh=False)

    def close(self) -> None:
        self._bar.close()


@dataclass(frozen=True)
class Pricing:
    """How a run's cost is estimated: serverless compute and data, or Bedrock tokens."""

    kind: str  # "serverless" or "bedrock"
    memory_mb: int = 0
    per_gb_second: float = pricing.SERVERLESS_PER_GB_SECOND
    data_per_gb: float = pricing.SERVERLESS_DATA_PER_GB
    per_1k_tokens: float = 0.0
    overridden: bool = False

    def estimate(self, stats: RunStats) -> str:
        """One line: the estimated cost and how it was computed."""
        source = (
            "your prices"
            if self.overridden
            else f"{pricing.PRICES_REGION} list prices of {pricing.PRICES_AS_OF}"
        )
        if self.kind == "serverless":
            processed = stats.bytes_sent + stats.bytes_received
            cost = pricing.serverless_cost(
                stats.busy_seconds,
                self.memory_mb,
                processed,
                per_gb_second=self.per_gb_second,
                data_per_gb=self.data_per_gb,
            )
            gb_seconds = stats.busy_seconds * self.memory_mb / 1024
            return (
                f"estimated cost: ${cost:,.4f} (serverless {self.memory_mb} MB: "
                f"{gb_seconds:,.1f} GB-s × ${self.per_gb_second:g} + "
                f"{processed / pricing.GB:,.3f} GB data × ${self.data_per_gb:g}; {source}; "
                "request time measured by this client, an upper bound)"
            )
        cost = pricing.bedrock_cost(stats.tokens, self.per_1k_tokens)
        kind = "" if stats.tokens_measured else "estimated "
        return (
            f"estimated cost: ${cost:,.4f} (Bedrock: {stats.tokens:,} {kind}tokens × "
            f"${self.per_1k_tokens:g}/1k; {source})"
        )


def _duration(seconds: float) -> str:
    minutes, second = divmod(int(round(seconds)), 60)
    hours, minute = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minute:02d}m{second:02d}s"
    return f"{minute}m{second:02d}s" if minute else f"{seconds:.1f}s"


def summary(stats: RunStats, *, errors_file: str, pricing_model: Pricing | None) -> list[str]:
    """The lines printed when a run ends (completed, interrupted or stopped)."""
    rate = stats.embedded / stats.elapsed_seconds if stats.elapsed_seconds > 0 else 0.0
    lines = [
        f"done: {stats.embedded:,} embedded, {stats.already_done:,} skipped (already in the "
        f"output), {stats.failed:,} failed"
        + (f" (listed in {errors_file})" if stats.failed else "")
        + (f", {stats.duplicates:,} duplicate ids skipped" if stats.duplicates else ""),
        f"elapsed: {_duration(stats.elapsed_seconds)}, {rate:,.1f} docs/s, "
        f"{stats.requests:,} requests ({stats.throttled:,} throttled, {stats.retried:,} retried, "
        f"concurrency lowest {stats.lowest_concurrency}, at the end {stats.final_concurrency})",
    ]
    if stats.model:
        lines.append(f"model: {stats.model}, {stats.dimensions} dimensions")
    if pricing_model is not None and stats.requests:
        lines.append(pricing_model.estimate(stats))
    if stats.abandoned:
        lines.append(f"abandoned {stats.abandoned} request(s) in flight: rerun to embed them")
    if stats.interrupted:
        lines.append("interrupted: rerun the same command to carry on where this run stopped")
    elif stats.stopped_by:
        lines.append(f"stopped: {stats.stopped_by}")
        lines.append("rerun the same command to carry on where this run stopped")
    return lines
