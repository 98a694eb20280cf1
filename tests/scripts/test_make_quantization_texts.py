"""The int8 check's committed texts are what the script makes from its named source."""

from __future__ import annotations

from pathlib import Path

from loader.quantization_check import QUERY_COUNT, TEXTS_FILE
from scripts.make_quantization_texts import CORPUS_COUNT, PASSAGE_COUNT, write


def test_the_committed_texts_are_the_scripts_output_byte_for_byte(tmp_path: Path) -> None:
    count = write(tmp_path / "texts.txt.gz")
    assert count == QUERY_COUNT + CORPUS_COUNT + PASSAGE_COUNT
    assert (tmp_path / "texts.txt.gz").read_bytes() == TEXTS_FILE.read_bytes()
