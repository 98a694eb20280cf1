"""The int8 graph's quality check at packaging: it ships only when it agrees with the fp32 graph.

Both graphs embed the same fixed texts (loader/quantization_texts.txt.gz, made by
scripts/make_quantization_texts.py), tokenized with the Rust `tokenizers` library from the
repository's tokenizer.json and truncated at the model's max_seq_length, pooled with the model's
own Pooling modes (the container's `pool`). Two figures decide: the least cosine between a text's
int8 and fp32 sentence vectors, and the mean recall@10 of the int8 top-10 against the fp32 top-10
over the corpus for each query. Below the thresholds of facts/onnx_quantization.py the archive is
refused, naming the model, the figures, the thresholds and the way out; never a silent loss.
The vectors compared are the pooled ones, before any Dense module (the same float layer for both).
"""

from __future__ import annotations

import gzip
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from facts.onnx_quantization import MIN_MEAN_RECALL_AT_10, MIN_SENTENCE_COSINE
from facts.sentence_modules import MODULES_FILE, parse_json, parse_modules
from loader.errors import LoaderError
from loader.graph_fusion import open_session, run_tokens

log = logging.getLogger(__name__)
TEXTS_FILE = Path(__file__).resolve().parent / "quantization_texts.txt.gz"
# The file's layout (scripts/make_quantization_texts.py writes it): the first QUERY_COUNT texts
# are the queries, the rest the corpus (sentences, then long passages).
QUERY_COUNT = 100
TOP_K = 10
BATCH_SIZE = 32
TOKENIZER_FILE = "tokenizer.json"
# Where max_seq_length is absent: the tokenizer's own limit when it states a real one, else this.
FALLBACK_MAX_TOKENS = 512
_NO_LIMIT = 100_000
_PAD_TOKENS = ("[PAD]", "<pad>", "<|endoftext|>")


class QuantizationRefused(LoaderError):
    """The int8 graph cannot be made or checked, or falls below the quality thresholds."""


@dataclass(frozen=True)
class CheckSettings:
    """How the model turns text into a sentence vector, as far as the check needs it."""

    tokenizer_json: str
    max_seq_length: int
    pooling_modes: tuple[str, ...]
    do_lower_case: bool = False


@dataclass(frozen=True)
class QualityReport:
    """The check's figures for one model: what `pulumi up` shows and the manifest records."""

    model: str
    texts: int
    queries: int
    corpus: int
    min_cosine: float
    mean_cosine: float
    mean_recall_at_10: float
    min_recall_at_10: float
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        thresholds = {
            "min_cosine_threshold": MIN_SENTENCE_COSINE,
            "mean_recall_at_10_threshold": MIN_MEAN_RECALL_AT_10,
        }
        return asdict(self) | thresholds

    def describe(self) -> str:
        return (
            f"int8 against fp32 on {self.texts} texts: cosine min {self.min_cosine:.4f}, "
            f"mean {self.mean_cosine:.4f}; recall@10 of {self.queries} queries over "
            f"{self.corpus} texts: mean {self.mean_recall_at_10:.3f}, min "
            f"{self.min_recall_at_10:.1f} ({self.seconds:.0f} s)"
        )


def quality_problem(report: QualityReport) -> str | None:
    """Why the int8 graph must not ship (None: it may), with the figures and the thresholds."""
    low = []  # `not >=`: a NaN (a graph that overflows) fails too
    if not report.min_cosine >= MIN_SENTENCE_COSINE:
        low.append(f"min cosine {report.min_cosine:.4f} < {MIN_SENTENCE_COSINE}")
    if not report.mean_recall_at_10 >= MIN_MEAN_RECALL_AT_10:
        low.append(f"mean recall@10 {report.mean_recall_at_10:.3f} < {MIN_MEAN_RECALL_AT_10}")
    if not low:
        return None
    return (
        f"the int8 graph of '{report.model}' is too far from fp32 ({'; '.join(low)}; "
        f"{report.describe()}): it is not shipped. Set onnxQuantization none to deploy fp32"
    )


def check_settings(model: str, read: Callable[[str], bytes | None]) -> CheckSettings:
    """The tokenizer, max_seq_length and Pooling modes from the repository's files.

    `read(path)` gives a file's bytes, None when the repository lacks it. A repository without
    tokenizer.json is refused: the check could not tokenize as the model does.
    """
    from container.sentence_embedding.model_files import pooling_modes

    modules_data = read(MODULES_FILE)
    modules = parse_modules(modules_data) if modules_data is not None else ()
    base = modules[0].path.strip("/") + "/" if modules and modules[0].path.strip("/") else ""
    tokenizer = read(base + TOKENIZER_FILE)
    if tokenizer is None:
        raise QuantizationRefused(
            f"onnxQuantization int8 needs the repository's {base}{TOKENIZER_FILE} (the fast "
            f"tokenizer) to check the int8 graph against fp32, and '{model}' has none: set "
            "onnxQuantization none",
            step="check-quantization",
            model=model,
            file=base + TOKENIZER_FILE,
        )
    modes: tuple[str, ...] = ("mean",)
    pooling = [item.path for item in modules if item.kind == "Pooling"]
    if pooling:
        config = _json(read, pooling[0].strip("/") + "/config.json")
        modes = pooling_modes(config)
    bert = _json(read, base + "sentence_bert_config.json")
    limit = int(bert.get("max_seq_length") or 0)
    if not limit:
        stated = int(_json(read, base + "tokenizer_config.json").get("model_max_length") or 0)
        limit = stated if 0 < stated < _NO_LIMIT else FALLBACK_MAX_TOKENS
    return CheckSettings(
        tokenizer.decode("utf-8"), limit, modes, bool(bert.get("do_lower_case", False))
    )


def _json(read: Callable[[str], bytes | None], path: str) -> dict[str, Any]:
    data = read(path)
    found = parse_json(path, data) if data is not None else None
    return found if isinstance(found, dict) else {}


def check_quantized(model: str, fp32: Path, int8: Path, settings: CheckSettings) -> QualityReport:
    """Embed the fixed texts with both graphs; the report, or QuantizationRefused below the bar."""
    import numpy as np

    started = time.monotonic()
    texts = fixed_texts()
    batches = list(token_batches(texts, settings))
    reference = sentence_vectors(fp32, batches, settings.pooling_modes, len(texts))
    quantized = sentence_vectors(int8, batches, settings.pooling_modes, len(texts))
    cosines = (reference * quantized).sum(axis=1)
    recalls = recall_at_k(reference, quantized)
    report = QualityReport(
        model=model,
        texts=len(texts),
        queries=QUERY_COUNT,
        corpus=len(texts) - QUERY_COUNT,
        min_cosine=float(cosines.min()),
        mean_cosine=float(cosines.mean()),
        mean_recall_at_10=float(np.mean(recalls)),
        min_recall_at_10=float(np.min(recalls)),
        seconds=time.monotonic() - started,
    )
    log.info("%s", report.describe())
    problem = quality_problem(report)
    if problem is not None:
        raise QuantizationRefused(problem, step="check-quantization", model=model)
    return report


def fixed_texts() -> list[str]:
    """Queries first, then the corpus and the long passages (the file's order)."""
    with gzip.open(TEXTS_FILE, "rt", encoding="utf-8") as handle:
        return handle.read().splitlines()


def token_batches(
    texts: list[str], settings: CheckSettings
) -> Iterator[tuple[list[int], dict[str, Any]]]:
    """(text positions, padded inputs) in batches of similar length, truncated as the model is."""
    import numpy as np
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(settings.tokenizer_json)
    tokenizer.enable_truncation(max_length=settings.max_seq_length)
    tokenizer.no_padding()
    pad = next((i for t in _PAD_TOKENS if (i := tokenizer.token_to_id(t)) is not None), 0)
    inputs = [text.lower() if settings.do_lower_case else text for text in texts]
    encodings = tokenizer.encode_batch(inputs)
    order = sorted(range(len(texts)), key=lambda i: (len(encodings[i].ids), i))
    for start in range(0, len(order), BATCH_SIZE):
        rows = order[start : start + BATCH_SIZE]
        length = max(len(encodings[i].ids) for i in rows)
        ids = np.full((len(rows), length), pad, dtype=np.int64)
        mask = np.zeros((len(rows), length), dtype=np.int64)
        types = np.zeros((len(rows), length), dtype=np.int64)
        for row, i in enumerate(rows):
            n = len(encodings[i].ids)
            ids[row, :n], mask[row, :n] = encodings[i].ids, 1
            types[row, :n] = encodings[i].type_ids
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        feeds["position_ids"] = np.broadcast_to(np.arange(length, dtype=np.int64), ids.shape).copy()
        yield rows, feeds


def sentence_vectors(
    graph: Path, batches: list[tuple[list[int], dict[str, Any]]], modes: tuple[str, ...], count: int
) -> Any:
    """Unit-length pooled vectors of every text, in the texts' order."""
    import numpy as np

    from container.sentence_embedding.pooling import pool, unit_length

    session = open_session(graph)
    vectors: Any = None
    for rows, batch in batches:
        tokens = np.asarray(run_tokens(session, batch), dtype=np.float32)
        pooled = pool(modes, tokens, batch["attention_mask"])
        if vectors is None:
            vectors = np.zeros((count, pooled.shape[1]), dtype=np.float32)
        vectors[rows] = pooled
    del session
    return unit_length(vectors)


def recall_at_k(reference: Any, quantized: Any, k: int = TOP_K) -> Any:
    """Per query: the share of the fp32 top-k over the corpus that the int8 top-k also holds."""
    import numpy as np

    def top(vectors: Any) -> Any:
        scores = vectors[:QUERY_COUNT] @ vectors[QUERY_COUNT:].T
        return np.argsort(-scores, axis=1, kind="stable")[:, :k]

    expected, found = top(reference), top(quantized)
    return np.array([len(set(a) & set(b)) / k for a, b in zip(expected, found, strict=True)])
