"""Long texts are cut before tokenizing, and truncation then keeps exactly the tokens it kept.

Three kinds of fast tokenizer: the reference model's WordPiece (BERT), a byte-level BPE with
RoBERTa's trimmed offsets, and a SentencePiece Unigram (Metaspace), the last two trained here on
this repository's docs. Texts are drawn (Hypothesis) from pieces that make tokenizers' word
splits hard: whitespace runs, punctuation runs, CJK, combining marks, contractions, characters
the normalizer drops, words longer than WordPiece reads.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from facts.embedding_api import EmbeddingOptions, InputError
from tests.support.models import (
    REFERENCE_MODEL_DIR,
    REPO_ROOT,
    container_module,
)
from tests.support.tokenizers import PIECES, byte_level_bpe, sentencepiece_unigram

cut = container_module("cut")


@pytest.fixture(scope="module", params=["wordpiece", "byte-level-bpe", "unigram"])
def tokenizer(request):
    if request.param == "wordpiece":
        return AutoTokenizer.from_pretrained(str(REFERENCE_MODEL_DIR))
    return byte_level_bpe() if request.param == "byte-level-bpe" else sentencepiece_unigram()


def kept_ids(tokenizer, text: str, max_length: int, side: str) -> list[int]:
    """The ids the encoder's tokenizer call keeps from `text` (as EmbeddingModel.embed calls it)."""
    tokenizer.truncation_side = side
    return tokenizer([text], truncation="longest_first", max_length=max_length)["input_ids"][0]


# Long enough to be cut at every max_length drawn (its window is 8 × max_length characters).
TEXTS = st.lists(st.sampled_from(PIECES) | st.text(max_size=6), min_size=150, max_size=600).map(
    "".join
)


@settings(
    max_examples=120,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    text=TEXTS,
    max_length=st.sampled_from([8, 16, 40]),
    side=st.sampled_from(["right", "left"]),
    # Windows as short as the limit put the cut next to the last token truncation keeps.
    chars_per_token=st.sampled_from([1, 2, cut.WINDOW_CHARS_PER_TOKEN]),
)
def test_a_cut_text_keeps_exactly_the_tokens_of_the_whole_text(
    tokenizer, text, max_length, side, chars_per_token
):
    part = cut.cut_text(tokenizer, text, max_length, side, chars_per_token)
    assert part == text or len(part) < len(text)
    assert text.startswith(part) if side == "right" else text.endswith(part)
    assert kept_ids(tokenizer, part, max_length, side) == kept_ids(
        tokenizer, text, max_length, side
    )


@pytest.mark.parametrize("side", ["right", "left"])
def test_a_long_prose_text_is_cut_to_its_window(tokenizer, side):
    text = (REPO_ROOT / "README.md").read_text() * 20
    part = cut.cut_text(tokenizer, text, 64, side)
    assert len(part) <= 64 * cut.WINDOW_CHARS_PER_TOKEN
    assert kept_ids(tokenizer, part, 64, side) == kept_ids(tokenizer, text, 64, side)


def test_a_text_with_no_word_split_within_the_windows_is_read_whole(tokenizer):
    text = "x" * (64 * cut.WINDOW_CHARS_PER_TOKEN * cut.WINDOW_GROWTH**cut.MAX_WINDOWS)
    assert cut.cut_text(tokenizer, text, 64, "right") == text


# ---------------------------------------------------------------------------------------------
# Through the encoder: the same usage and vectors, and the tokenizer never reads the whole text.


def characters_read(model, monkeypatch) -> list[int]:
    """The length of every text `model`'s tokenizers are handed from now on (filled as called)."""
    read: list[int] = []
    original = type(model.tokenizer).__call__
    encode = model.batch_tokenizer.encode

    def recording(self, texts, *args, **kwargs):
        read.extend(len(t) for t in ([texts] if isinstance(texts, str) else texts))
        return original(self, texts, *args, **kwargs)

    def recording_encode(texts, side):
        read.extend(len(t) for t in texts)
        return encode(texts, side)

    monkeypatch.setattr(type(model.tokenizer), "__call__", recording)
    monkeypatch.setattr(model.batch_tokenizer, "encode", recording_encode)
    return read


@pytest.mark.parametrize("side", ["right", "left"])
def test_a_1_mb_text_gives_the_whole_texts_usage_and_vector_reading_only_its_window(
    loaded, monkeypatch, side
):
    # Ends on a word: the encoder reads a text without its trailing white space.
    text = ((REPO_ROOT / "README.md").read_text() * 200)[:1_000_000].rstrip()
    options = EmbeddingOptions(truncation_direction=side)
    read = characters_read(loaded, monkeypatch)
    vectors, tokens = loaded.embed([text, "short"], options)
    limit = loaded.settings.max_seq_length
    assert max(read) <= limit * cut.WINDOW_CHARS_PER_TOKEN
    monkeypatch.setattr(cut, "WINDOW_CHARS_PER_TOKEN", 10**9)  # no window shorter than the text
    read.clear()
    whole_vectors, whole_tokens = loaded.embed([text, "short"], options)
    assert max(read) == len(text)
    assert tokens == whole_tokens
    np.testing.assert_allclose(vectors, whole_vectors, atol=1e-5)


def test_with_truncate_false_a_1_mb_text_is_refused_reading_only_its_window(loaded, monkeypatch):
    text = ((REPO_ROOT / "README.md").read_text() * 60)[:1_000_000]
    read = characters_read(loaded, monkeypatch)
    with pytest.raises(InputError) as raised:
        loaded.embed(["short", text], EmbeddingOptions(truncate=False))
    assert str(raised.value).startswith("inputs [1] are longer than the max_seq_length of 256")
    assert "longest: over " in str(raised.value)

    assert max(read) <= loaded.settings.max_seq_length * cut.WINDOW_CHARS_PER_TOKEN


def test_with_truncate_false_more_than_20_long_texts_are_counted(loaded):
    with pytest.raises(InputError) as raised:
        loaded.embed(["word " * 300] * 23, EmbeddingOptions(truncate=False))
    assert str(raised.value).startswith(f"inputs {list(range(20))} and 3 more are longer")
