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
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from tokenizers.processors import RobertaProcessing, TemplateProcessing
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from facts.embedding_api import EmbeddingOptions, InputError
from tests.support.models import (
    REFERENCE_MODEL_DIR,
    REPO_ROOT,
    container_module,
)

cut = container_module("cut")
SPECIALS = ["<s>", "</s>", "<pad>", "<unk>"]
PIECES = [
    "word", "the", "Tokenization", " ", "  ", "\n", "\t", ".", "...", "?!", "'s", "n't",
    "字", "日本語", "é", "e\u0301", "\u0301", "\u200b", "\x00", "123", "4.5", "_", "-",
    "x" * 120, "Ünïcödé", "😀", "ﷺ", "  \n ",
]  # fmt: skip


def _corpus() -> list[str]:
    return [line for line in (REPO_ROOT / "README.md").read_text().splitlines() if line.strip()]


def byte_level_bpe() -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=SPECIALS, initial_alphabet=alphabet
    )
    tokenizer.train_from_iterator(_corpus(), trainer)
    ids = {name: tokenizer.token_to_id(name) for name in SPECIALS}
    tokenizer.post_processor = RobertaProcessing(
        ("</s>", ids["</s>"]), ("<s>", ids["<s>"]), trim_offsets=True
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )


def sentencepiece_unigram() -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=600, special_tokens=SPECIALS, unk_token="<unk>")
    tokenizer.train_from_iterator(_corpus(), trainer)
    eos = tokenizer.token_to_id("</s>")
    tokenizer.post_processor = TemplateProcessing(single="$A </s>", special_tokens=[("</s>", eos)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )


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


def characters_read(tokenizer, monkeypatch) -> list[int]:
    """The length of every text `tokenizer` is handed from now on (filled as it is called)."""
    read: list[int] = []
    original = type(tokenizer).__call__

    def recording(self, texts, *args, **kwargs):
        read.extend(len(t) for t in ([texts] if isinstance(texts, str) else texts))
        return original(self, texts, *args, **kwargs)

    monkeypatch.setattr(type(tokenizer), "__call__", recording)
    return read


@pytest.mark.parametrize("side", ["right", "left"])
def test_a_1_mb_text_gives_the_whole_texts_usage_and_vector_reading_only_its_window(
    loaded, monkeypatch, side
):
    # Ends on a word: the encoder reads a text without its trailing white space.
    text = ((REPO_ROOT / "README.md").read_text() * 200)[:1_000_000].rstrip()
    options = EmbeddingOptions(truncation_direction=side)
    read = characters_read(loaded.tokenizer, monkeypatch)
    vectors, tokens = loaded.embed([text, "short"], options)
    limit = loaded.settings.max_seq_length
    assert max(read) <= limit * cut.WINDOW_CHARS_PER_TOKEN
    monkeypatch.setattr(cut, "WINDOW_CHARS_PER_TOKEN", 10**9)  # no window shorter than the text
    read.clear()
    whole_vectors, whole_tokens = loaded.embed([text, "short"], options)
    assert max(read) == len(text)
    assert tokens == whole_tokens
    np.testing.assert_allclose(vectors.numpy(), whole_vectors.numpy(), atol=1e-5)


def test_with_truncate_false_a_1_mb_text_is_refused_reading_only_its_window(loaded, monkeypatch):
    text = ((REPO_ROOT / "README.md").read_text() * 60)[:1_000_000]
    read = characters_read(loaded.tokenizer, monkeypatch)
    with pytest.raises(InputError) as raised:
        loaded.embed(["short", text], EmbeddingOptions(truncate=False))
    assert str(raised.value).startswith("inputs [1] are longer than the max_seq_length of 256")
    assert "longest: over " in str(raised.value)
    assert max(read) <= loaded.settings.max_seq_length * cut.WINDOW_CHARS_PER_TOKEN
