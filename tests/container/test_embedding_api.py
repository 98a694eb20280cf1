"""The embedding API through inference.py's hooks, against sentence-transformers on the same folder.

Prompts (named, literal, the model's default, the stack's default, excluded from pooling),
Matryoshka dimensions, base64, token usage, truncation side, the OpenAI shape, info requests and
JSON lines, each compared with `SentenceTransformer.encode` where it computes the same thing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from facts.embedding_api import InputError, decode_vector
from tests.support.models import DIMENSIONS, REFERENCE_MODEL_DIR, copy_model

SENTENCES = ["A man is eating food.", "The girl is carrying a baby.", "Stocks fell sharply."]
PROMPTS = {"query": "query: ", "passage": "passage: ", "search": "Represent this for search: "}
MIN_COSINE = 0.9999


def cosines(ours, theirs) -> np.ndarray:
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    return (ours * theirs).sum(axis=1) / (
        np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1)
    )


def with_prompts(destination: Path, default: str | None = None, include: bool = True) -> Path:
    """The reference model with prompts in config_sentence_transformers.json (as E5/BGE ship)."""
    folder = copy_model(destination)
    config_path = folder / "config_sentence_transformers.json"
    config = json.loads(config_path.read_text())
    config["prompts"] = PROMPTS
    config["default_prompt_name"] = default
    config_path.write_text(json.dumps(config))
    if not include:
        pooling = folder / "1_Pooling" / "config.json"
        pooling.write_text(json.dumps(json.loads(pooling.read_text()) | {"include_prompt": False}))
    return folder


@pytest.fixture(scope="module")
def prompted(tmp_path_factory) -> Path:
    return with_prompts(tmp_path_factory.mktemp("prompted") / "model")


@pytest.fixture(scope="module")
def prompted_model(inference, prompted):
    return inference.model_fn(str(prompted))


@pytest.fixture(scope="module")
def reference_model(inference):
    return inference.model_fn(str(REFERENCE_MODEL_DIR))


@pytest.fixture(scope="module")
def reference():
    return SentenceTransformer(str(REFERENCE_MODEL_DIR), device="cpu")


def answer(inference, model, document, content_type="application/json"):
    body = document if isinstance(document, (str, bytes)) else json.dumps(document)
    request = inference.input_fn(body, content_type)
    accept = "application/jsonlines" if content_type == "application/jsonlines" else None
    return inference.output_fn(inference.predict_fn(request, model), accept)


def vectors(inference, model, texts, **parameters):
    document = json.loads(answer(inference, model, {"inputs": texts, "parameters": parameters}))
    return [decode_vector(value, "vector") for value in document["embeddings"]], document


def refused(inference, model, document) -> InputError:
    with pytest.raises(InputError) as raised:
        answer(inference, model, document)
    return raised.value


# --- prompts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PROMPTS))
def test_prompt_name_equals_sentence_transformers_prompt_name(
    inference, prompted, prompted_model, name
):
    ours, _ = vectors(inference, prompted_model, SENTENCES, prompt_name=name)
    theirs = SentenceTransformer(str(prompted), device="cpu").encode(SENTENCES, prompt_name=name)
    assert cosines(ours, theirs).min() >= MIN_COSINE


def test_literal_prompt_equals_sentence_transformers_prompt(inference, reference_model, reference):
    ours, _ = vectors(inference, reference_model, SENTENCES, prompt="Represent this sentence: ")
    theirs = reference.encode(SENTENCES, prompt="Represent this sentence: ")
    assert cosines(ours, theirs).min() >= MIN_COSINE


def test_prompts_change_the_vectors(inference, prompted_model):
    plain, _ = vectors(inference, prompted_model, SENTENCES)
    queried, _ = vectors(inference, prompted_model, SENTENCES, prompt_name="search")
    assert cosines(plain, queried).max() < 0.999


def test_unknown_prompt_name_is_a_400_listing_the_models_prompts(inference, prompted_model):
    error = refused(
        inference, prompted_model, {"inputs": "a", "parameters": {"prompt_name": "question"}}
    )
    assert error.status == 400
    assert "'question'" in str(error) and "['passage', 'query', 'search']" in str(error)


def test_an_empty_prompt_name_is_a_name_not_the_default_prompt(inference, prompted_model):
    error = refused(inference, prompted_model, {"inputs": "a", "parameters": {"prompt_name": ""}})
    assert error.status == 400 and "prompt_name '' is not one of this model's prompts" in str(error)


def test_a_models_empty_prompt_is_used_as_sentence_transformers_uses_it(inference, tmp_path):
    folder = with_prompts(tmp_path / "model", default="query")
    config_path = folder / "config_sentence_transformers.json"
    config = json.loads(config_path.read_text())
    config["prompts"][""] = ""
    config_path.write_text(json.dumps(config))
    ours, _ = vectors(inference, inference.model_fn(str(folder)), SENTENCES, prompt_name="")
    theirs = SentenceTransformer(str(folder), device="cpu").encode(SENTENCES, prompt_name="")
    assert cosines(ours, theirs).min() >= MIN_COSINE


def test_a_long_prompt_with_truncate_false_is_counted_in_the_refusal(inference, reference_model):
    prompt = "represent " * 250  # 250 tokens of the model's 256
    parameters = {"prompt": prompt, "truncate": False}
    error = refused(inference, reference_model, {"inputs": "a b c d e f", "parameters": parameters})
    assert error.status == 400
    assert "longest: 258, with the prompt's 250 tokens)" in str(error)


def test_a_prompt_as_long_as_the_limit_is_named_as_the_reason(inference, reference_model):
    parameters = {"prompt": "Represent " * 4000, "truncate": False}  # lower-cased: 1 token each
    error = refused(inference, reference_model, {"inputs": ["a", "b"], "parameters": parameters})
    assert error.status == 400
    expected = r"the prompt is over \d+ tokens, as long as the max_seq_length of 256 or longer"
    assert re.match(expected, str(error))


def test_prompt_and_prompt_name_together_are_a_400(inference, prompted_model):
    document = {"inputs": "a", "parameters": {"prompt_name": "query", "prompt": "q: "}}
    assert "not both" in str(refused(inference, prompted_model, document))


def test_the_models_default_prompt_applies_as_in_sentence_transformers(inference, tmp_path):
    folder = with_prompts(tmp_path / "model", default="query")
    ours, _ = vectors(inference, inference.model_fn(str(folder)), SENTENCES)
    theirs = SentenceTransformer(str(folder), device="cpu").encode(SENTENCES)
    assert cosines(ours, theirs).min() >= MIN_COSINE


def test_the_stacks_default_prompt_name_applies_when_a_request_names_none(
    inference, prompted, monkeypatch
):
    monkeypatch.setenv("EMBEDDING_DEFAULT_PROMPT_NAME", "passage")
    ours, _ = vectors(inference, inference.model_fn(str(prompted)), SENTENCES)
    theirs = SentenceTransformer(str(prompted), device="cpu").encode(
        SENTENCES, prompt_name="passage"
    )
    assert cosines(ours, theirs).min() >= MIN_COSINE


def test_a_stack_default_prompt_the_model_lacks_fails_the_load_naming_them(
    inference, prompted, monkeypatch
):
    monkeypatch.setenv("EMBEDDING_DEFAULT_PROMPT_NAME", "question")
    with pytest.raises(ValueError, match=r"'question'.*\['passage', 'query', 'search'\]"):
        inference.model_fn(str(prompted))


def test_prompt_excluded_from_pooling_when_the_model_says_so(inference, tmp_path):
    folder = with_prompts(tmp_path / "model", include=False)
    ours, _ = vectors(inference, inference.model_fn(str(folder)), SENTENCES, prompt_name="search")
    theirs = SentenceTransformer(str(folder), device="cpu").encode(SENTENCES, prompt_name="search")
    assert cosines(ours, theirs).min() >= MIN_COSINE


def test_prompt_tokens_count_in_usage(inference, prompted_model, prompted):
    _, plain = vectors(inference, prompted_model, ["hello world"])
    _, queried = vectors(inference, prompted_model, ["hello world"], prompt_name="search")
    tokenizer = SentenceTransformer(str(prompted), device="cpu").tokenizer
    expected = len(tokenizer(PROMPTS["search"] + "hello world")["input_ids"])
    assert queried["usage"] == {"prompt_tokens": expected, "total_tokens": expected}
    assert queried["usage"]["prompt_tokens"] > plain["usage"]["prompt_tokens"]


# --- dimensions, normalization, encodings --------------------------------------------------------


@pytest.mark.parametrize("dimensions", [64, 256])
def test_dimensions_equal_sentence_transformers_truncate_dim(
    inference, reference_model, reference, dimensions
):
    ours, document = vectors(inference, reference_model, SENTENCES, dimensions=dimensions)
    theirs = reference.encode(SENTENCES, truncate_dim=dimensions, normalize_embeddings=True)
    assert document["dimensions"] == dimensions
    assert np.asarray(ours).shape == (len(SENTENCES), dimensions)
    assert cosines(ours, theirs).min() >= MIN_COSINE
    # Truncated, then normalized: unit vectors again.
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_dimensions_without_normalize_stay_the_leading_values(inference, reference_model):
    whole, _ = vectors(inference, reference_model, SENTENCES, normalize=False)
    cut, _ = vectors(inference, reference_model, SENTENCES, normalize=False, dimensions=64)
    assert np.array_equal(np.asarray(whole, dtype=np.float32)[:, :64], np.float32(cut))


@pytest.mark.parametrize("dimensions", [0, DIMENSIONS + 1])
def test_dimensions_out_of_range_are_a_400_giving_the_range(inference, reference_model, dimensions):
    document = {"inputs": "a", "parameters": {"dimensions": dimensions}}
    error = refused(inference, reference_model, document)
    assert error.status == 400
    assert f"1 to {DIMENSIONS}" in str(error) or "positive integer" in str(error)


def test_base64_decodes_to_the_float_response_bit_for_bit(inference, reference_model):
    floats, _ = vectors(inference, reference_model, SENTENCES)
    packed, document = vectors(inference, reference_model, SENTENCES, encoding_format="base64")
    assert all(isinstance(value, str) for value in document["embeddings"])
    assert np.array_equal(np.float32(floats), np.float32(packed))


def test_usage_counts_tokens_after_truncation(inference, reference_model, reference):
    long_text = "word " * 400
    _, document = vectors(inference, reference_model, ["short text", long_text])
    short = len(reference.tokenizer("short text")["input_ids"])
    assert document["usage"]["prompt_tokens"] == short + 256  # the long one cut at 256


def test_left_truncation_keeps_the_end_of_a_long_text(inference, reference_model, reference):
    text = "alpha " * 300 + "the final words of the text"
    ours, _ = vectors(inference, reference_model, [text], truncation_direction="left")
    tail = reference.tokenizer.convert_tokens_to_string(reference.tokenizer.tokenize(text)[-254:])
    theirs = reference.encode([tail])
    right, _ = vectors(inference, reference_model, [text])
    assert cosines(ours, theirs).min() >= 0.999
    assert cosines(ours, right).min() < 0.99


def test_truncation_direction_other_than_left_or_right_is_a_400(inference, reference_model):
    document = {"inputs": "a", "parameters": {"truncation_direction": "middle"}}
    assert "['right', 'left']" in str(refused(inference, reference_model, document))


# --- shapes -------------------------------------------------------------------------------------


def test_openai_request_gets_openai_response_with_the_same_vectors(inference, reference_model):
    native, _ = vectors(inference, reference_model, SENTENCES)
    document = json.loads(
        answer(inference, reference_model, {"input": SENTENCES, "model": "anything"})
    )
    assert document["object"] == "list"
    assert [item["index"] for item in document["data"]] == [0, 1, 2]
    assert {item["object"] for item in document["data"]} == {"embedding"}
    assert document["model"] == reference_model.model_id
    assert document["usage"]["prompt_tokens"] == document["usage"]["total_tokens"] > 0
    ours = [item["embedding"] for item in document["data"]]
    assert np.array_equal(np.float32(ours), np.float32(native))


def test_openai_token_id_input_is_refused_saying_why(inference, reference_model):
    error = refused(inference, reference_model, {"input": [[101, 7592, 102]], "model": "m"})
    assert error.status == 400 and "token ids" in str(error) and "tiktoken" in str(error)


def test_openai_unknown_keys_are_refused_listing_the_allowed_ones(inference, reference_model):
    error = refused(inference, reference_model, {"input": "a", "model": "m", "stream": True})
    assert "['stream']" in str(error) and "'encoding_format'" in str(error)


def test_info_states_the_model_and_its_limits(inference, prompted_model):
    info = json.loads(answer(inference, prompted_model, {"info": True}))
    assert info["dimensions"] == DIMENSIONS
    assert info["prompts"] == PROMPTS
    assert info["max_request_bytes"] == 4_000_000
    limits = info["max_texts_per_request"]
    assert limits["base64"] > limits["float"] >= 1


def test_json_lines_answer_one_line_per_input_line_in_order(inference, reference_model):
    lines = [
        json.dumps("A man is eating food."),
        json.dumps({"inputs": "The girl is carrying a baby.", "id": 7}),
        json.dumps("Stocks fell sharply."),
    ]
    body = answer(inference, reference_model, "\n".join(lines) + "\n", "application/jsonlines")
    answered = [json.loads(line) for line in body.splitlines()]
    assert len(answered) == 3 and all(set(line) == {"embedding"} for line in answered)
    native, _ = vectors(inference, reference_model, SENTENCES)
    assert np.array_equal(np.float32([line["embedding"] for line in answered]), np.float32(native))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"id": 1}\n', 'line 1 must be a JSON string or an object with an "inputs" string'),
        ('"a"\n{nope\n', "line 2 is not valid JSON"),
        ("\n\n", "holds no JSON lines"),
    ],
)
def test_bad_json_lines_are_a_400_naming_the_line(inference, reference_model, body, message):
    with pytest.raises(InputError, match=message):
        inference.input_fn(body, "application/jsonlines")


def test_a_base64_batch_at_the_stated_limit_fits_one_4_mb_response(inference, reference_model):
    limit = reference_model.max_texts_per_request(DIMENSIONS, "base64")
    assert limit > reference_model.max_texts_per_request(DIMENSIONS, "float")
    texts = [f"short text number {index}" for index in range(limit)]
    document = {"inputs": texts, "parameters": {"encoding_format": "base64"}}
    body = answer(inference, reference_model, document)
    assert len(body.encode("utf-8")) <= 4_000_000
    assert len(json.loads(body)["embeddings"]) == limit


def test_the_stacks_max_seq_length_truncates_as_sentence_transformers_does(inference, monkeypatch):
    monkeypatch.setenv("EMBEDDING_MAX_SEQ_LENGTH", "16")
    loaded = inference.model_fn(str(REFERENCE_MODEL_DIR))
    assert loaded.settings.max_seq_length == 16
    long_texts = [" ".join(["embedding"] * 100), SENTENCES[0]]
    ours, document = vectors(inference, loaded, long_texts)
    reference = SentenceTransformer(str(REFERENCE_MODEL_DIR), device="cpu")
    reference.max_seq_length = 16
    assert cosines(ours, reference.encode(long_texts)).min() >= MIN_COSINE
    assert document["usage"]["prompt_tokens"] == 16 + len(
        reference.tokenize([SENTENCES[0]])["input_ids"][0]
    )


def test_a_max_seq_length_never_raises_the_models_own_limit(inference, monkeypatch):
    monkeypatch.setenv("EMBEDDING_MAX_SEQ_LENGTH", "100000")
    assert inference.model_fn(str(REFERENCE_MODEL_DIR)).settings.max_seq_length == 256


def test_a_bad_max_seq_length_fails_the_load_naming_the_variable(inference, monkeypatch):
    monkeypatch.setenv("EMBEDDING_MAX_SEQ_LENGTH", "zero")
    with pytest.raises(ValueError, match="EMBEDDING_MAX_SEQ_LENGTH must be a positive integer"):
        inference.model_fn(str(REFERENCE_MODEL_DIR))
