"""Long texts cut before tokenizing, to what truncation keeps: work bounded by the token limit.

A tokenizer reads a whole text before it truncates it: one 3.9 MB text took 5.6–13 s, against
0.03 s for a text at the limit, on an endpoint billed by the millisecond. So a text longer than a
window of `max_length × WINDOW_CHARS_PER_TOKEN` characters is cut first, and only where the cut
cannot change the tokens truncation keeps:

- the window (the text's start, or with `truncation_direction: left` its end) is tokenized with
  offsets; its word ids are the tokenizer's own pre-tokens (BERT's words and punctuation, the
  byte-level BPE's regex pieces, SentencePiece's ▁-words), which each become tokens on their own;
- the pre-token at the cut may continue past it, and the one next to it may be read differently
  without its neighbour, so the cut keeps the one next to it but counts only pre-tokens further
  in;
- the cut is made only when those hold at least `max_length` tokens: truncation then keeps
  tokens of whole pre-tokens only, the same as from the whole text. Else the window grows, and
  after MAX_WINDOWS the text is read whole, as before (a megabyte with no pre-token split in it).

Texts within the window are not touched. A slow (Python) tokenizer, which has no offsets, reads
every text whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Characters per token the first window allows for: English prose takes about 4-5 a token, CJK
# and punctuation 1. Only speed depends on it; a window short of tokens grows 4 times over.
WINDOW_CHARS_PER_TOKEN = 8
WINDOW_GROWTH = 4
MAX_WINDOWS = 3


def cut_texts(tokenizer: Any, texts: Sequence[str], max_length: int, side: str) -> list[str]:
    """`texts`, each cut to a part whose truncated tokens are the whole text's (see above)."""
    if not getattr(tokenizer, "is_fast", False):
        return list(texts)
    return [cut_text(tokenizer, text, max_length, side) for text in texts]


def cut_text(
    tokenizer: Any, text: str, max_length: int, side: str, chars_per_token: int | None = None
) -> str:
    """`text`'s start (side "right") or end ("left") that truncation reads alike; else `text`."""
    window = max_length * (chars_per_token or WINDOW_CHARS_PER_TOKEN)
    for _ in range(MAX_WINDOWS):
        if len(text) <= window:
            break
        piece = text[:window] if side == "right" else text[len(text) - window :]
        encoding = tokenizer(
            piece, add_special_tokens=False, return_offsets_mapping=True, verbose=False
        )
        if side == "right":
            cut = _end_of_whole_words(encoding, max_length)
            if cut is not None:
                return piece[:cut]
        else:
            cut = _start_of_whole_words(encoding, max_length)
            if cut is not None:
                return piece[cut:]
        window *= WINDOW_GROWTH
    return text


def _word_starts(words: list[Any]) -> list[int]:
    """Index of the first token of each pre-token, in order."""
    return [index for index, word in enumerate(words) if index == 0 or word != words[index - 1]]


def _end_of_whole_words(encoding: Any, max_length: int) -> int | None:
    """Where the window's last pre-token starts, when `max_length` tokens precede the one before.

    The last pre-token may go on past the window; the one before it may read differently without
    it (a byte-level BPE's whitespace run): only tokens before those two count.
    """
    starts = _word_starts(encoding.word_ids())
    if len(starts) < 3 or starts[-2] < max_length:
        return None
    return encoding["offset_mapping"][starts[-1]][0]


def _start_of_whole_words(encoding: Any, max_length: int) -> int | None:
    """Where the window's second pre-token starts, when `max_length` tokens follow the third's.

    The first pre-token may have begun before the window; the second may read differently
    without the first (a byte-level BPE's leading space): only tokens from the third on count.
    """
    starts = _word_starts(encoding.word_ids())
    if len(starts) < 3 or len(encoding["input_ids"]) - starts[2] < max_length:
        return None
    return encoding["offset_mapping"][starts[1]][0]
