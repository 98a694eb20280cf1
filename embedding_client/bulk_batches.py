"""`embed file`'s requests: consecutive documents fill a batch up to the target's limits (texts,
body bytes, the token budget); ids already done or seen are skipped, and a document that cannot
be sent at all is refused before any request. What a run did is counted in `RunStats`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from embedding_client.batching import encoded_size, request_body
from embedding_client.bulk_input import Document
from embedding_client.bulk_pacing import TokenBudget, estimate_tokens
from facts.embedding_api import EmbeddingOptions


@dataclass(frozen=True)
class Limits:
    """What one request to the target may hold."""

    max_texts: int
    max_body_bytes: int | None  # None: the backend checks its own sizes (Bedrock)
    max_sequence_length: int | None = None
    token_budget: int | None = None  # None: adaptive


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
            problem = document.problem
            text = document.text or ""
            if problem is None and not text.strip():
                problem = "empty text: nothing to embed"
            encoded = encoded_size(text)
            limit = self._limits.max_body_bytes
            if problem is None and limit is not None and self._envelope + encoded > limit:
                problem = (
                    f"text takes {encoded} bytes of a request (as JSON); one request holds at most "
                    f"{limit} bytes, {self._envelope} of them the request's own: split the document"
                )
            if problem is not None:
                self._refuse(document, problem)
                continue
            # Only a record that is sent makes its id taken: a later copy of a refused one may
            # still be the good one.
            self._seen.add(str(document.id))
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
