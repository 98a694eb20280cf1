"""`embed file`'s engine: full requests, as many in flight as the endpoint takes, fewer while it
throttles, and no document lost or written twice (batching, pacing, retries, refusals and
stops: docs/bulk.md).
"""

from __future__ import annotations

import heapq
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from embedding_client.backend import (
    EmbeddingBackend,
    EmbeddingResult,
    EndpointError,
    InputTooLargeError,
    ResponseFormatError,
    TargetError,
)
from embedding_client.bulk_batches import Batch, BatchPlanner, Limits, RunStats, split
from embedding_client.bulk_input import Document
from embedding_client.bulk_output import (
    ErrorLog,
    OutputError,
    Signature,
    VectorSink,
    recorded_options,
)
from embedding_client.bulk_pacing import AdaptiveConcurrency, RetryPolicy, TokenBudget
from embedding_client.ctrl_c import CtrlC
from facts.embedding_api import FLOAT_VALUE_BYTES, EmbeddingOptions

# How often the main thread looks at Ctrl-C while it waits for answers.
POLL_SECONDS = 0.2


class Progress:
    """What the runner reports as it goes (the terminal's progress bar implements it)."""

    def advance(self, documents: int, tokens: int) -> None: ...

    def concurrency(self, limit: int) -> None: ...

    def message(self, text: str) -> None: ...


@dataclass
class _Outcome:
    batch: Batch
    sent_at: float
    seconds: float
    result: EmbeddingResult | None = None
    error: Exception | None = None


@dataclass
class BulkRun:
    """One pass over a corpus: documents in, vectors to `sink`, refusals to `errors`."""

    backend: EmbeddingBackend  # one request per call, no retries of its own
    options: EmbeddingOptions
    limits: Limits
    sink: VectorSink
    errors: ErrorLog
    concurrency: int
    progress: Progress = field(default_factory=Progress)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], float] = time.monotonic

    def run(self, documents: Iterable[Document], done: set[str]) -> RunStats:
        """Embed every document whose id is not in `done`; returns what happened."""
        stats = RunStats(lowest_concurrency=self.concurrency)
        started = self.clock()
        limiter = AdaptiveConcurrency(self.concurrency)
        budget = TokenBudget(self.limits.token_budget)

        def refuse(document: Document, problem: str) -> None:
            self.errors.add(document.id, document.position, problem)
            stats.failed += 1
            self.progress.advance(1, 0)

        planner = BatchPlanner(documents, self.limits, self.options, budget, done, stats, refuse)
        tasks: queue.Queue[tuple[Batch, float] | None] = queue.Queue()
        outcomes: queue.Queue[_Outcome] = queue.Queue()
        workers = [
            threading.Thread(target=self._work, args=(tasks, outcomes), daemon=True)
            for _ in range(self.concurrency)
        ]
        for worker in workers:
            worker.start()
        waiting: list[tuple[float, int, Batch]] = []  # retries: (due, tiebreak, batch)
        order = 0
        in_flight = 0
        stopping = False
        with CtrlC() as interrupts:
            try:
                while True:
                    if interrupts.count and not stopping:
                        stats.interrupted = stopping = True
                        if in_flight:
                            self.progress.message(
                                f"stopping: waiting for {in_flight} request(s) in flight; "
                                "Ctrl-C again stops at once (a rerun embeds what they carry)"
                            )
                    if interrupts.count > 1:
                        stats.abandoned = in_flight
                        break
                    if not stopping:
                        in_flight += self._send(limiter.limit - in_flight, waiting, planner, tasks)
                    if in_flight == 0 and (stopping or (planner.exhausted and not waiting)):
                        break
                    timeout = POLL_SECONDS
                    if waiting and not stopping:
                        timeout = min(timeout, max(0.0, waiting[0][0] - self.clock()))
                    if in_flight == 0:
                        time.sleep(timeout)
                        continue
                    try:
                        outcome = outcomes.get(timeout=timeout)
                    except queue.Empty:
                        continue
                    in_flight -= 1
                    try:
                        retries = self._settle(outcome, stats, limiter, budget)
                    except _Stop as stop:
                        stats.stopped_by = stats.stopped_by or str(stop)
                        stopping = True
                        continue
                    for retry_batch, delay in retries:
                        order += 1
                        heapq.heappush(waiting, (self.clock() + delay, order, retry_batch))
            finally:
                for _ in workers:
                    tasks.put(None)
                self.sink.close()
                self.errors.close()
                stats.lowest_concurrency = limiter.lowest
                stats.final_concurrency = limiter.limit
                stats.elapsed_seconds = self.clock() - started
        return stats

    def _send(
        self,
        room: int,
        waiting: list[tuple[float, int, Batch]],
        planner: BatchPlanner,
        tasks: queue.Queue,
    ) -> int:
        """Up to `room` requests to the workers: retries that are due first, then new batches."""
        sent = 0
        while sent < room:
            if waiting and waiting[0][0] <= self.clock():
                batch = heapq.heappop(waiting)[2]
            elif not planner.exhausted:
                batch = planner.next_batch()
                if batch is None:
                    continue
            else:
                break
            tasks.put((batch, self.clock()))
            sent += 1
        return sent

    def _work(self, tasks: queue.Queue, outcomes: queue.Queue) -> None:
        while True:
            task = tasks.get()
            if task is None:
                return
            batch, sent_at = task
            began = time.monotonic()
            try:
                result = self.backend.embed(batch.texts, self.options)
                outcomes.put(_Outcome(batch, sent_at, time.monotonic() - began, result=result))
            except Exception as error:  # the main thread decides; a worker never dies
                outcomes.put(_Outcome(batch, sent_at, time.monotonic() - began, error=error))

    def _settle(
        self, outcome: _Outcome, stats: RunStats, limiter: AdaptiveConcurrency, budget: TokenBudget
    ) -> list[tuple[Batch, float]]:
        """Write a result, or decide what to do about an error: (batches to retry, delay)."""
        batch, error = outcome.batch, outcome.error
        stats.requests += 1
        stats.busy_seconds += outcome.seconds
        stats.bytes_sent += batch.body_bytes
        if error is None:
            assert outcome.result is not None
            try:
                self._write(batch, outcome.result, stats)
            except OutputError as refused_output:
                raise _Stop(str(refused_output)) from None
            limiter.on_success()
            budget.observe(batch.tokens, outcome.seconds)
            self.progress.concurrency(limiter.limit)
            return []
        if isinstance(error, EndpointError) and error.is_throttling:
            stats.throttled += 1
            limiter.on_throttle(outcome.sent_at, self.clock())
            self.progress.concurrency(limiter.limit)
            return self._again(batch, stats, error, self.retry.max_throttled)
        refused = isinstance(error, InputTooLargeError) or (
            isinstance(error, EndpointError) and error.refuses_the_input
        )
        if refused:
            if len(batch.documents) > 1:
                return [(half, 0.0) for half in split(batch)]
            document = batch.documents[0]
            self.errors.add(document.id, document.position, _message(error))
            stats.failed += 1
            self.progress.advance(1, 0)
            return []
        if isinstance(error, (TargetError, OutputError)):
            raise _Stop(str(error))
        if isinstance(error, EndpointError) and error.is_client_error:
            # Credentials, a wrong address or endpoint: every other request would fail alike.
            raise _Stop(f"{error} (the target refuses the request itself, not a document)")
        if not isinstance(error, (EndpointError, ResponseFormatError)):
            raise _Stop(f"unexpected {type(error).__name__}: {error}")
        if isinstance(error, EndpointError) and error.status is None and len(batch.documents) > 1:
            budget.shrink()  # no answer in time: smaller requests from now on
        return self._again(batch, stats, error, self.retry.max_failed)

    def _again(
        self, batch: Batch, stats: RunStats, error: Exception, max_attempts: int
    ) -> list[tuple[Batch, float]]:
        batch.attempts += 1
        if batch.attempts >= max_attempts:
            raise _Stop(f"{error} (after {batch.attempts} tries of one request)")
        stats.retried += 1
        return [(batch, self.retry.backoff.delay(batch.attempts))]

    def _write(self, batch: Batch, result: EmbeddingResult, stats: RunStats) -> None:
        signature = Signature(result.model, result.dimensions, recorded_options(self.options))
        self.sink.write([d.id or "" for d in batch.documents], result.vectors, signature)
        stats.model, stats.dimensions = result.model, result.dimensions
        count = len(batch.documents)
        stats.embedded += count
        if result.prompt_tokens is None:
            stats.tokens_measured = False
        tokens = batch.tokens if result.prompt_tokens is None else result.prompt_tokens
        stats.tokens += tokens
        per_value = FLOAT_VALUE_BYTES if self.options.encoding_format == "float" else 16 / 3
        stats.bytes_received += int(count * (result.dimensions * per_value + 16))
        self.progress.advance(count, tokens)


class _Stop(Exception):
    """The run cannot go on (the target keeps failing, credentials, the output refuses)."""


def _message(error: Exception) -> str:
    if isinstance(error, EndpointError):
        status = f"HTTP {error.status} " if error.status else ""
        return f"{status}{error.code + ': ' if error.code else ''}{error.message}"
    return str(error)
