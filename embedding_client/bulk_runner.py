"""`embed file`'s engine: full requests, as many in flight as the endpoint takes, fewer while it
throttles, and no document lost or written twice.

- Batching: consecutive documents fill a request up to the target's limits: texts per request,
  body bytes (4 MB on SageMaker) and an estimated token budget that keeps one request well
  inside the 60 s invocation limit (it shrinks when requests are slow, grows while they are fast).
- Concurrency: starts at the endpoint's MaxConcurrency (or `--concurrency`); throttling halves it
  (once per round of requests in flight), then it grows back by one after each `limit` successes.
- Retries: throttling and server errors are retried with full-jitter backoff by this module alone
  (the backends are built with one attempt, so their own retries do not fight this pacing).
- Refusals: a 4xx answer about the inputs splits the batch in halves until the refused document
  stands alone; it goes to the error file and the run carries on. A 4xx about the request itself
  (credentials, no such endpoint or URL) stops the run instead of refusing every document.
- Stops: Ctrl-C stops sending, waits for the requests in flight and writes their vectors (Ctrl-C
  again abandons them); a target that keeps failing stops the run the same way. Either way the
  output holds only whole results, and a rerun carries on from there.
"""

from __future__ import annotations

import heapq
import json
import math
import queue
import random
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from embedding_client.backends import (
    EmbeddingBackend,
    EmbeddingResult,
    EndpointError,
    InputTooLargeError,
    ResponseFormatError,
    TargetError,
    request_body,
)
from embedding_client.bulk_input import Document
from embedding_client.bulk_output import ErrorLog, OutputError, Signature, VectorSink
from facts.embedding_api import FLOAT_VALUE_BYTES, EmbeddingOptions

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
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 20.0
# How often the main thread looks at Ctrl-C while it waits for answers.
POLL_SECONDS = 0.2


def estimate_tokens(text: str, max_sequence_length: int | None) -> int:
    """Tokens a text is likely to cost: about 3 UTF-8 bytes per token, plus two special tokens,
    capped at the model's maximum sequence length (the endpoint truncates beyond it)."""
    estimate = math.ceil(len(text.encode("utf-8")) / 3) + 2
    return min(estimate, max_sequence_length) if max_sequence_length else estimate


@dataclass(frozen=True)
class Limits:
    """What one request to the target may hold."""

    max_texts: int
    max_body_bytes: int | None  # None: the backend checks its own sizes (Bedrock)
    max_sequence_length: int | None = None
    token_budget: int | None = None  # None: adaptive


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff between tries of one batch (full jitter), and how many tries it gets."""

    base_seconds: float = BACKOFF_BASE_SECONDS
    cap_seconds: float = BACKOFF_CAP_SECONDS
    max_throttled: int = MAX_THROTTLED_ATTEMPTS
    max_failed: int = MAX_FAILED_ATTEMPTS

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap_seconds, self.base_seconds * 2**attempt))


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

    One congestion episode throttles every request in flight; only a throttle of a request sent
    after the last cut cuts again, so the limit halves once per round, not once per request.
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


@dataclass
class Batch:
    """Consecutive documents for one request, and how often it was tried."""

    documents: list[Document]
    tokens: int
    body_bytes: int
    attempts: int = 0

    @property
    def texts(self) -> list[str]:
        return [document.text or "" for document in self.documents]


@dataclass
class RunStats:
    """What a run did; the summary and the cost estimate read it."""

    embedded: int = 0
    already_done: int = 0
    duplicates: int = 0
    failed: int = 0
    tokens: int = 0
    tokens_measured: bool = True  # False when some tokens are estimates (the target gave none)
    requests: int = 0
    busy_seconds: float = 0.0  # Σ request latency
    bytes_sent: int = 0
    bytes_received: int = 0  # estimated from the vectors
    throttled: int = 0
    retried: int = 0
    lowest_concurrency: int = 0
    final_concurrency: int = 0  # the limit when the run ended: grown back after throttling?
    elapsed_seconds: float = 0.0
    interrupted: bool = False
    abandoned: int = 0  # requests in flight when a second Ctrl-C gave up on them
    stopped_by: str | None = None  # why the run stopped before the end of the input
    model: str | None = None
    dimensions: int | None = None


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


class BatchPlanner:
    """Documents → batches, skipping done ids and reporting what cannot be sent."""

    def __init__(
        self,
        documents: Iterable[Document],
        limits: Limits,
        options: EmbeddingOptions,
        budget: TokenBudget,
        done: set[str],
        stats: RunStats,
        refuse: Callable[[Document, str], None],
    ) -> None:
        self._documents = iter(documents)
        self._limits = limits
        self._envelope = len(request_body([], options))
        self._budget = budget
        self._done = done
        self._seen: set[str] = set()
        self._stats = stats
        self._refuse = refuse
        self._held: tuple[Document, int, int] | None = None
        self.exhausted = False

    def _sendable(self) -> Iterator[tuple[Document, int, int]]:
        if self._held is not None:
            held, self._held = self._held, None
            yield held
        for document in self._documents:
            if document.problem is None and document.id is not None:
                if document.id in self._done:
                    self._stats.already_done += 1
                    continue
                if document.id in self._seen:
                    self._stats.duplicates += 1
                    continue
                self._seen.add(document.id)
            problem = document.problem
            text = document.text or ""
            if problem is None and not text.strip():
                problem = "empty text: nothing to embed"
            encoded = len(json.dumps(text, ensure_ascii=False).encode("utf-8")) + 1
            limit = self._limits.max_body_bytes
            if problem is None and limit is not None and self._envelope + encoded > limit:
                problem = (
                    f"text is {len(text.encode('utf-8'))} bytes; one request holds at most "
                    f"{limit} bytes: split the document"
                )
            if problem is not None:
                self._refuse(document, problem)
                continue
            yield document, encoded, estimate_tokens(text, self._limits.max_sequence_length)

    def next_batch(self) -> Batch | None:
        """The next full batch (or the last, partial one); None once the input is exhausted."""
        documents: list[Document] = []
        size, tokens = self._envelope, 0
        limit = self._limits.max_body_bytes
        for document, encoded, estimated in self._sendable():
            if documents and (
                len(documents) >= self._limits.max_texts
                or (limit is not None and size + encoded > limit)
                or tokens + estimated > self._budget.value
            ):
                self._held = (document, encoded, estimated)
                return Batch(documents, tokens, size)
            documents.append(document)
            size += encoded
            tokens += estimated
        self.exhausted = True
        return Batch(documents, tokens, size) if documents else None


def split(batch: Batch) -> list[Batch]:
    """Two halves of a batch, to find the one document a target refuses."""
    middle = len(batch.documents) // 2
    halves = [batch.documents[:middle], batch.documents[middle:]]
    share = [len(half) / len(batch.documents) for half in halves]
    return [
        Batch(half, int(batch.tokens * part), int(batch.body_bytes * part))
        for half, part in zip(halves, share, strict=True)
    ]


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
                    while not stopping and in_flight < limiter.limit:
                        if waiting and waiting[0][0] <= self.clock():
                            batch = heapq.heappop(waiting)[2]
                        elif not planner.exhausted:
                            batch = planner.next_batch()
                            if batch is None:
                                continue
                        else:
                            break
                        tasks.put((batch, self.clock()))
                        in_flight += 1
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
        self,
        outcome: _Outcome,
        stats: RunStats,
        limiter: AdaptiveConcurrency,
        budget: TokenBudget,
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
        return [(batch, self.retry.delay(batch.attempts))]

    def _write(self, batch: Batch, result: EmbeddingResult, stats: RunStats) -> None:
        signature = Signature(result.model, result.dimensions)
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


class CtrlC:
    """Counts Ctrl-C presses instead of raising KeyboardInterrupt mid-write (main thread only)."""

    def __init__(self) -> None:
        self.count = 0
        self._previous: object = None

    def _pressed(self, signum: int, frame: object) -> None:
        self.count += 1

    def __enter__(self) -> CtrlC:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._pressed)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)  # type: ignore[arg-type]


class _Stop(Exception):
    """The run cannot go on (the target keeps failing, credentials, the output refuses)."""


def _message(error: Exception) -> str:
    if isinstance(error, EndpointError):
        status = f"HTTP {error.status} " if error.status else ""
        return f"{status}{error.code + ': ' if error.code else ''}{error.message}"
    return str(error)
