"""`embed file`'s input: a corpus streamed one record at a time (JSONL, CSV, Parquet or text).

A record that cannot be embedded comes out as a `Document` with a `problem`, for the error file.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from facts.embedding_api import non_utf8_at

FORMATS = ("jsonl", "csv", "parquet", "text")
SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".txt": "text",
    ".text": "text",
}
# The longest CSV field read: a 4 MB request holds no longer text.
MAX_CSV_FIELD_CHARS = 4_000_000
PYARROW_INSTALL = "pip install 'pyarrow>=14' (or: pip install -e '.[bulk]')"


class InputFormatError(Exception):
    """The input as a whole cannot be read (unknown format, missing columns); nothing was sent."""


@dataclass(frozen=True)
class Document:
    """One record of the corpus; `problem` says why it cannot be embedded (None: it can)."""

    id: str | None
    text: str | None
    position: int  # line number (JSONL, text) or data row number (CSV, Parquet), from 1
    problem: str | None = None


def input_format(path: Path, requested: str | None = None) -> str:
    """The format named by `--input-format`, else by the file's extension."""
    if requested:
        if requested not in FORMATS:
            raise InputFormatError(f"--input-format {requested!r}: expected one of {FORMATS}")
        return requested
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise InputFormatError(
            f"{path}: cannot tell the format from {path.suffix or 'no extension'!r}; use one of "
            f"{', '.join(SUFFIXES)} or pass --input-format {{{','.join(FORMATS)}}}"
        )
    return fmt


def import_pyarrow_parquet() -> Any:
    """`pyarrow.parquet`, or an error naming the command that installs it."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputFormatError(
            f"Parquet needs pyarrow, which is not installed: {PYARROW_INSTALL}"
        ) from None
    return pq


def _identifier(value: Any) -> str | None:
    """A record's id as text: strings as they are, integers in decimal; anything else is None."""
    if isinstance(value, str) and value != "":
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _kind(value: Any) -> str:
    """How a message names a field's wrong value: "no", "a float as its", "an int as its"."""
    if value is None:
        return "no"
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name} as its"


def _document(record: dict, position: int, id_field: str, text_field: str) -> Document:
    raw_id = record.get(id_field)
    identifier = _identifier(raw_id)
    if identifier is None:
        what = "an empty" if raw_id == "" else _kind(raw_id)
        return Document(
            None,
            None,
            position,
            f"record has {what} {id_field!r}; ids are non-empty strings or integers",
        )
    text = record.get(text_field)
    if not isinstance(text, str):
        what = _kind(text)
        return Document(
            identifier, None, position, f"record has {what} {text_field!r}; texts are strings"
        )
    for name, value in ((id_field, identifier), (text_field, text)):
        if non_utf8_at(value) is not None:
            # A JSON escape such as "\ud83d" alone (an emoji cut in half): no UTF-8 for it.
            return Document(
                identifier if name == text_field else None,
                None,
                position,
                f"record's {name!r} holds an unpaired surrogate (half an emoji?): not UTF-8 text",
            )
    return Document(identifier, text, position)


def _lines(path: Path) -> Iterator[tuple[int, str | None]]:
    """(line number, text without its line break) per line; None for a line that is not UTF-8."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)  # as Excel and Notepad write UTF-8
            try:
                yield number, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                yield number, None


def _read_jsonl(path: Path, id_field: str, text_field: str) -> Iterator[Document]:
    for number, line in _lines(path):
        if line is None:
            yield Document(None, None, number, "line is not UTF-8")
            continue
        if not line.strip():
            continue  # blank lines separate nothing in JSONL
        try:
            record = json.loads(line)
        except ValueError as error:
            yield Document(None, None, number, f"line is not JSON: {error}")
            continue
        if not isinstance(record, dict):
            yield Document(None, None, number, "line is not a JSON object")
            continue
        yield _document(record, number, id_field, text_field)


def _read_text(path: Path) -> Iterator[Document]:
    for number, line in _lines(path):
        if line is None:
            yield Document(str(number), None, number, "line is not UTF-8")
        elif line.strip():  # a blank line is no document (the ids stay line numbers)
            yield Document(str(number), line, number)


def _not_utf8(path: Path, error: UnicodeDecodeError) -> InputFormatError:
    # Text is decoded in chunks, and a CSV reader cannot resume after bad bytes: stop here.
    return InputFormatError(
        f"{path} is not UTF-8 ({error.reason}): re-encode it as UTF-8, then rerun (what is "
        "done stays done)"
    )


def _open_csv(path: Path, errors: str = "strict") -> TextIO:
    """The CSV as text: a leading BOM dropped, and fields as long as a request can carry."""
    # The csv module's default limit is 128 KiB a field, far below one 4 MB request.
    csv.field_size_limit(max(csv.field_size_limit(), MAX_CSV_FIELD_CHARS))
    return path.open(newline="", encoding="utf-8-sig", errors=errors)


def _read_csv(path: Path, id_field: str, text_field: str) -> Iterator[Document]:
    handle = _open_csv(path)
    reader = csv.DictReader(handle)
    try:
        columns = reader.fieldnames or []
    except UnicodeDecodeError as error:
        handle.close()
        raise _not_utf8(path, error) from None
    missing = [name for name in (id_field, text_field) if name not in columns]
    if missing:
        handle.close()
        raise InputFormatError(
            f"{path}: no column {missing[0]!r}; the header has {columns}: "
            "pass --id-field/--text-field"
        )

    def rows() -> Iterator[Document]:
        with handle:
            number = 0
            try:
                for number, row in enumerate(reader, start=1):
                    yield _document(row, number, id_field, text_field)
            except UnicodeDecodeError as error:
                raise _not_utf8(path, error) from None
            except csv.Error as error:
                raise InputFormatError(
                    f"{path}, data row {number + 1}: not CSV ({error}); what is done stays done"
                ) from None

    return rows()


# What pyarrow raises for a file that is not (or no longer) Parquet: ArrowIOError is an OSError,
# ArrowInvalid a ValueError.
PARQUET_ERRORS = (OSError, ValueError)


def unreadable_parquet(path: Path, problem: Exception) -> str:
    """The one message for a Parquet file pyarrow cannot read, input or output."""
    return f"{path}: not a readable Parquet file ({problem})"


def open_parquet(path: Path) -> Any:
    """`pyarrow.parquet.ParquetFile(path)`; a file that is not Parquet is InputFormatError."""
    pq = import_pyarrow_parquet()
    try:
        return pq.ParquetFile(path)
    except PARQUET_ERRORS as problem:
        raise InputFormatError(unreadable_parquet(path, problem)) from None


def _read_parquet(path: Path, id_field: str, text_field: str) -> Iterator[Document]:
    parquet = open_parquet(path)
    columns = parquet.schema_arrow.names
    missing = [name for name in (id_field, text_field) if name not in columns]
    if missing:
        raise InputFormatError(
            f"{path}: no column {missing[0]!r}; it has {columns}: pass --id-field/--text-field"
        )

    def rows() -> Iterator[Document]:
        number = 0
        batches = parquet.iter_batches(columns=[id_field, text_field], batch_size=4096)
        while True:
            try:
                batch = next(batches, None)
            except PARQUET_ERRORS as problem:  # a damaged row group, past the footer
                raise InputFormatError(
                    f"{path}, after row {number}: not readable Parquet ({problem}); what is "
                    "done stays done"
                ) from None
            if batch is None:
                return
            for row in batch.to_pylist():
                number += 1
                yield _document(row, number, id_field, text_field)

    return rows()


def read_documents(
    path: Path, fmt: str, *, id_field: str = "id", text_field: str = "text"
) -> Iterator[Document]:
    """The corpus's records in file order, streamed; a missing column fails here, at once."""
    if not path.is_file():
        raise InputFormatError(f"{path}: no such file")
    if fmt == "jsonl":
        return _read_jsonl(path, id_field, text_field)
    if fmt == "csv":
        return _read_csv(path, id_field, text_field)
    if fmt == "parquet":
        return _read_parquet(path, id_field, text_field)
    if fmt == "text":
        return _read_text(path)
    raise InputFormatError(f"unknown input format {fmt!r}; expected one of {FORMATS}")


def count_records(path: Path, fmt: str) -> int | None:
    """How many records the corpus holds (for the progress bar's ETA), in one streaming pass."""
    if fmt == "parquet":
        return open_parquet(path).metadata.num_rows
    if fmt == "csv":
        with _open_csv(path, errors="replace") as handle:
            try:
                return max(0, sum(1 for _ in csv.reader(handle)) - 1)
            except csv.Error:
                return None  # no ETA; the run itself reports the broken line
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())
