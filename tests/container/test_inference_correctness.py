"""code/inference.py gives the vectors sentence-transformers gives, for every pooling it reads.

Reference: `SentenceTransformer(model_dir).encode(..., normalize_embeddings=True)` on the same
folder, real PyTorch on CPU; cosine similarity ≥ 0.9999 for every sentence.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from tests.support.models import (
    DIMENSIONS,
    MAX_SEQ_LENGTH,
    REFERENCE_MODEL_DIR,
    container_module,
    copy_model,
    recorded_forward_shapes,
    with_pooling,
)

MIN_COSINE = 0.9999
SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "  Leading and trailing spaces are ignored.  ",
    "Ein Mann isst Essen.",
    "短い文",
    "x",
]
LONG_TEXT = " ".join(f"word{index} and some filler" for index in range(400))  # ≫ 256 tokens


@pytest.fixture(scope="module")
def reference() -> SentenceTransformer:
    return SentenceTransformer(str(REFERENCE_MODEL_DIR), device="cpu")


def embed(inference, loaded, inputs, **parameters) -> np.ndarray:
    """Through the toolkit hooks, exactly as the DLC calls them (JSON text in, JSON text out)."""
    body = json.dumps({"inputs": inputs, "parameters": parameters})
    request = inference.input_fn(body, "application/json")
    response = json.loads(inference.output_fn(inference.predict_fn(request, loaded), "*/*"))
    return np.asarray(response["embeddings"], dtype=np.float64)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.atleast_2d(a)
    b = np.atleast_2d(b)
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_single_sentence_matches_sentence_transformers(inference, loaded, reference):
    ours = embed(inference, loaded, SENTENCES[0])
    theirs = reference.encode([SENTENCES[0]], normalize_embeddings=True)
    assert ours.shape == (1, DIMENSIONS)
    assert cosines(ours, theirs).min() >= MIN_COSINE


def test_batch_matches_sentence_transformers_sentence_by_sentence(inference, loaded, reference):
    ours = embed(inference, loaded, SENTENCES)
    theirs = reference.encode(SENTENCES, normalize_embeddings=True)
    assert ours.shape == (len(SENTENCES), DIMENSIONS)
    assert cosines(ours, theirs).min() >= MIN_COSINE


def test_text_longer_than_max_seq_length_is_truncated_like_sentence_transformers(
    inference, loaded, reference
):
    assert len(reference.tokenizer(LONG_TEXT)["input_ids"]) > MAX_SEQ_LENGTH
    ours = embed(inference, loaded, [LONG_TEXT, SENTENCES[1]])
    theirs = reference.encode([LONG_TEXT, SENTENCES[1]], normalize_embeddings=True)
    assert cosines(ours, theirs).min() >= MIN_COSINE


def test_batch_larger_than_one_forward_pass_keeps_request_order(inference, loaded, reference):
    texts = [f"sentence number {i} " + "padding " * (i % 7) for i in range(70)] + [LONG_TEXT]
    assert len(texts) > container_module("encoder").ENCODE_BATCH_SIZE * 2
    ours = embed(inference, loaded, texts)
    theirs = reference.encode(texts, normalize_embeddings=True)
    assert cosines(ours, theirs).min() >= MIN_COSINE


def test_a_left_padding_tokenizer_keeps_the_batch_in_one_forward_pass(
    inference, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Trimming left padding would move the real tokens to other positions, changing the vectors.
    folder = copy_model(tmp_path / "model")
    config_path = folder / "tokenizer_config.json"
    config_path.write_text(
        json.dumps(json.loads(config_path.read_text()) | {"padding_side": "left"})
    )
    left_padded = inference.model_fn(str(folder))
    shapes = recorded_forward_shapes(left_padded.engine, monkeypatch)
    texts = [LONG_TEXT, *SENTENCES]
    ours = embed(inference, left_padded, texts)
    assert shapes == [(len(texts), MAX_SEQ_LENGTH)]
    # The same folder through sentence-transformers pads left too (BERT then reads other positions).
    theirs = SentenceTransformer(str(folder), device="cpu").encode(texts, normalize_embeddings=True)
    assert cosines(ours, theirs).min() >= MIN_COSINE


def test_vectors_are_unit_length_because_the_model_has_a_normalize_module(inference, loaded):
    norms = np.linalg.norm(embed(inference, loaded, SENTENCES), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-6)


def test_normalize_false_returns_the_raw_pooled_vectors(inference, loaded, reference):
    ours = embed(inference, loaded, SENTENCES[:3], normalize=False)
    theirs = reference.encode(SENTENCES[:3], normalize_embeddings=False)
    assert not np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-3)
    # The reference folder has a Normalize module, so sentence-transformers' own output is
    # normalized; the raw vectors point the same way and differ only in length.
    assert cosines(ours, theirs).min() >= MIN_COSINE


def test_response_reports_dimensions_and_model_id(inference, loaded, monkeypatch):
    monkeypatch.setenv("EMBEDDING_MODEL_ID", "org/served-name")
    model = inference.model_fn(str(REFERENCE_MODEL_DIR))
    request = inference.input_fn('{"inputs": "hello"}', "application/json")
    body = inference.output_fn(inference.predict_fn(request, model), "application/json")
    answer = json.loads(body)
    assert (answer["dimensions"], answer["model"]) == (DIMENSIONS, "org/served-name")


@pytest.mark.parametrize(
    ("pooling", "mode"),
    [
        ({"word_embedding_dimension": DIMENSIONS, "pooling_mode_cls_token": True}, "cls"),
        ({"word_embedding_dimension": DIMENSIONS, "pooling_mode_max_tokens": True}, "max"),
        ({"word_embedding_dimension": DIMENSIONS, "pooling_mode_lasttoken": True}, "lasttoken"),
        (
            {"word_embedding_dimension": DIMENSIONS, "pooling_mode_mean_sqrt_len_tokens": True},
            "mean_sqrt_len_tokens",
        ),
        ({"embedding_dimension": DIMENSIONS, "pooling_mode": "weightedmean"}, "weightedmean"),
    ],
    ids=["cls", "max", "lasttoken", "mean_sqrt_len", "weightedmean-new-format"],
)
def test_other_pooling_modes_match_sentence_transformers_on_a_modified_copy(
    inference, tmp_path: Path, pooling: dict, mode: str
):
    folder = with_pooling(tmp_path / "model", pooling)
    model = inference.model_fn(str(folder))
    assert model.settings.pooling_modes == (mode,)
    texts = [SENTENCES[0], SENTENCES[2], LONG_TEXT]
    ours = embed(inference, model, texts)
    theirs = SentenceTransformer(str(folder), device="cpu").encode(texts, normalize_embeddings=True)
    assert cosines(ours, theirs).min() >= MIN_COSINE


def test_several_pooling_modes_are_concatenated_in_sentence_transformers_order(
    inference, tmp_path: Path
):
    pooling = {
        "word_embedding_dimension": DIMENSIONS,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_cls_token": True,
    }
    folder = with_pooling(tmp_path / "model", pooling)
    model = inference.model_fn(str(folder))
    ours = embed(inference, model, SENTENCES[:3])
    theirs = SentenceTransformer(str(folder), device="cpu").encode(
        SENTENCES[:3], normalize_embeddings=True
    )
    assert ours.shape == (3, 2 * DIMENSIONS)
    assert cosines(ours, theirs).min() >= MIN_COSINE


def test_folder_without_sentence_transformers_files_defaults_to_normalized_mean_pooling(
    inference, tmp_path: Path, reference
):
    folder = copy_model(tmp_path / "model")
    for name in ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json"):
        (folder / name).unlink()
    model = inference.model_fn(str(folder))
    assert (model.settings.pooling_modes, model.settings.normalize) == (("mean",), True)
    ours = embed(inference, model, SENTENCES[:3])
    # all-MiniLM-L6-v2 is itself mean pooling + normalize, so the default reproduces it.
    theirs = reference.encode(SENTENCES[:3], normalize_embeddings=True)
    assert cosines(ours, theirs).min() >= MIN_COSINE
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-6)


def test_modules_without_normalize_module_return_unnormalized_vectors_by_default(
    inference, tmp_path: Path
):
    folder = copy_model(tmp_path / "model")
    modules = json.loads((folder / "modules.json").read_text())
    (folder / "modules.json").write_text(
        json.dumps([m for m in modules if "Normalize" not in m["type"]])
    )
    model = inference.model_fn(str(folder))
    norms = np.linalg.norm(embed(inference, model, SENTENCES[:3]), axis=1)
    assert model.settings.normalize is False
    assert not np.allclose(norms, 1.0, atol=1e-3)
