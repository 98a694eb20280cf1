"""The direct `tokenizers` call gives the ids, masks and type ids of transformers' wrapper.

As the encoder called the wrapper before: `tokenizer(texts, padding=True,
truncation="longest_first", max_length=…)`, on a WordPiece (the reference model's), a byte-level
BPE and a SentencePiece Unigram; texts past the limit from either side, prompts, empty-ish
texts, padding on either side.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from tests.support.models import REFERENCE_MODEL_DIR, container_module
from tests.support.tokenizers import PIECES, byte_level_bpe, sentencepiece_unigram

tokenization = container_module("tokenization")


def reference_tokenizer(kind: str, padding_side: str):
    if kind == "wordpiece":
        tokenizer = AutoTokenizer.from_pretrained(str(REFERENCE_MODEL_DIR))
    else:
        tokenizer = byte_level_bpe() if kind == "byte-level-bpe" else sentencepiece_unigram()
    tokenizer.padding_side = padding_side
    return tokenizer


@pytest.fixture(
    scope="module",
    params=[
        ("wordpiece", "right"),
        ("wordpiece", "left"),
        ("byte-level-bpe", "right"),
        ("unigram", "left"),
    ],
    ids=lambda param: "-".join(param),
)
def tokenizers_pair(request):
    """(transformers' tokenizer, the BatchTokenizer made from it, as the encoder holds both)."""
    kind, padding_side = request.param
    wrapper = reference_tokenizer(kind, padding_side)
    return wrapper, tokenization.BatchTokenizer(wrapper, 24)


def wrapper_features(wrapper, texts: list[str], side: str) -> dict[str, np.ndarray]:
    wrapper.truncation_side = side
    features = wrapper(
        texts, padding=True, truncation="longest_first", max_length=24, return_tensors="np"
    )
    return dict(features)


def assert_same_features(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> None:
    assert sorted(ours) == sorted(theirs)
    for name, array in theirs.items():
        assert ours[name].dtype == np.int64, name
        np.testing.assert_array_equal(ours[name], array, err_msg=name)


TEXT = st.lists(st.sampled_from(PIECES) | st.text(max_size=6), max_size=40).map("".join)


@settings(
    max_examples=80,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    texts=st.lists(TEXT, min_size=1, max_size=6),
    side=st.sampled_from(["right", "left"]),
    prompt=st.sampled_from(["", "query: ", "Represent this sentence for searching: "]),
)
def test_drawn_batches_give_the_wrappers_ids_masks_and_type_ids(
    tokenizers_pair, texts, side, prompt
):
    wrapper, ours = tokenizers_pair
    batch = [prompt + text for text in texts]
    assert_same_features(ours.encode(batch, side), wrapper_features(wrapper, batch, side))


@pytest.mark.parametrize("side", ["right", "left"])
def test_texts_past_the_limit_empty_and_blank_ones_are_read_as_the_wrapper_reads_them(
    tokenizers_pair, side
):
    wrapper, ours = tokenizers_pair
    texts = ["", " ", "\x00", "word " * 100, "短い文 " * 30, "A man is eating food."]
    features = ours.encode(texts, side)
    assert features["input_ids"].shape[1] == 24
    assert_same_features(features, wrapper_features(wrapper, texts, side))


@pytest.mark.parametrize("side", ["right", "left"])
def test_one_text_alone_is_read_as_the_wrapper_reads_it(tokenizers_pair, side):
    wrapper, ours = tokenizers_pair  # one text takes `encode`, not the batch call
    for text in ["", "\x00", "word " * 100, "短い文 " * 30, "A man is eating food."]:
        assert_same_features(ours.encode([text], side), wrapper_features(wrapper, [text], side))


def test_the_truncation_side_can_change_between_calls(tokenizers_pair):
    wrapper, ours = tokenizers_pair
    texts = ["one two three four five six seven eight nine ten " * 5, "short"]
    for side in ("left", "right", "left"):
        assert_same_features(ours.encode(texts, side), wrapper_features(wrapper, texts, side))


def test_the_wrappers_own_state_does_not_leak_into_the_direct_call():
    # cut.py calls the wrapper without truncation or padding, which resets its backend's.
    wrapper = reference_tokenizer("wordpiece", "right")
    ours = tokenization.BatchTokenizer(wrapper, 24)
    texts = ["word " * 100, "short"]
    expected = wrapper_features(wrapper, texts, "right")
    ours.encode(texts, "right")
    wrapper(texts, add_special_tokens=False, return_offsets_mapping=True)
    assert_same_features(ours.encode(texts, "right"), expected)


def test_a_tokenizer_without_a_padding_token_is_refused_by_the_wrapper_as_before():
    wrapper = byte_level_bpe()
    wrapper.pad_token = None
    ours = tokenization.BatchTokenizer(wrapper, 24)
    with pytest.raises(ValueError, match="padding token"):
        ours.encode(["one text", "and another one"], "right")
