"""Fast tokenizers of the kinds embedding models use, trained here on this repository's README.

A byte-level BPE with RoBERTa's trimmed offsets and a SentencePiece Unigram (Metaspace); the
reference model brings a WordPiece (BERT). PIECES make tokenizers' word splits hard: whitespace
runs, punctuation runs, CJK, combining marks, contractions, characters the normalizer drops,
words longer than WordPiece reads.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from tokenizers.processors import RobertaProcessing, TemplateProcessing
from transformers import PreTrainedTokenizerFast

from tests.support.models import REPO_ROOT

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
