"""The int8 check's parts that need no model: the decision, recall@10, the settings, the texts."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from facts.onnx_quantization import MIN_MEAN_RECALL_AT_10, MIN_SENTENCE_COSINE
from loader.quantization_check import (
    FALLBACK_MAX_TOKENS,
    QUERY_COUNT,
    QualityReport,
    QuantizationRefused,
    check_settings,
    fixed_texts,
    quality_problem,
    recall_at_k,
    token_batches,
)
from tests.support.models import REFERENCE_MODEL_DIR

PASSING = QualityReport(
    model="org/name",
    texts=3140,
    queries=100,
    corpus=3040,
    min_cosine=0.979,
    mean_cosine=0.991,
    mean_recall_at_10=0.884,
    min_recall_at_10=0.6,
    seconds=20.0,
)


def reference_file(path: str) -> bytes | None:
    found = REFERENCE_MODEL_DIR / path
    return found.read_bytes() if found.is_file() else None


def test_figures_at_or_above_both_thresholds_pass() -> None:
    edge = replace(PASSING, min_cosine=MIN_SENTENCE_COSINE, mean_recall_at_10=MIN_MEAN_RECALL_AT_10)
    assert quality_problem(PASSING) is None
    assert quality_problem(edge) is None


def test_a_low_cosine_is_refused_naming_the_model_figure_threshold_and_way_out() -> None:
    problem = quality_problem(replace(PASSING, min_cosine=0.90))
    assert problem is not None
    assert "'org/name'" in problem
    assert f"min cosine 0.9000 < {MIN_SENTENCE_COSINE}" in problem
    assert "Set onnxQuantization none" in problem


def test_a_low_recall_is_refused() -> None:
    problem = quality_problem(replace(PASSING, mean_recall_at_10=0.5))
    assert problem is not None and f"mean recall@10 0.500 < {MIN_MEAN_RECALL_AT_10}" in problem


def test_a_nan_figure_is_refused() -> None:
    assert quality_problem(replace(PASSING, min_cosine=math.nan)) is not None


def test_the_report_carries_its_thresholds_as_json() -> None:
    recorded = json.loads(json.dumps(PASSING.as_dict()))
    assert recorded["min_cosine_threshold"] == MIN_SENTENCE_COSINE
    assert recorded["mean_recall_at_10_threshold"] == MIN_MEAN_RECALL_AT_10


def test_recall_counts_the_fp32_neighbours_the_int8_ranking_keeps() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(QUERY_COUNT + 50, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert recall_at_k(vectors, vectors) == pytest.approx(np.ones(QUERY_COUNT))
    shuffled = vectors.copy()
    shuffled[QUERY_COUNT:] = vectors[QUERY_COUNT:][::-1]  # every corpus text moved
    assert recall_at_k(vectors, shuffled).mean() < 0.5


def test_the_settings_follow_the_models_files() -> None:
    settings = check_settings("org/name", reference_file)
    assert (settings.max_seq_length, settings.pooling_modes) == (256, ("mean",))
    assert json.loads(settings.tokenizer_json)["model"]["type"] == "WordPiece"


def test_without_max_seq_length_the_tokenizers_own_limit_or_the_fallback_applies() -> None:
    def without(*names: str):
        return lambda path: None if path in names else reference_file(path)

    stated = check_settings("m", without("sentence_bert_config.json"))
    assert stated.max_seq_length == 512  # tokenizer_config.json's model_max_length
    neither = check_settings("m", without("sentence_bert_config.json", "tokenizer_config.json"))
    assert neither.max_seq_length == FALLBACK_MAX_TOKENS


def test_a_repository_without_tokenizer_json_is_refused() -> None:
    with pytest.raises(QuantizationRefused, match="needs the repository's tokenizer.json"):
        check_settings("org/name", lambda path: None)  # a repository of weights alone


def test_the_texts_are_fixed_and_long_ones_are_truncated_at_max_seq_length() -> None:
    texts = fixed_texts()
    assert len(texts) == 3140 and len(set(texts)) == len(texts)
    settings = check_settings("m", reference_file)
    longest = max(
        batch["attention_mask"].sum(axis=1).max() for _, batch in token_batches(texts, settings)
    )
    assert longest == settings.max_seq_length
