"""`embed file`'s output: vectors written so that a rerun can skip what is done.

`OUT.jsonl` (whole lines, flushed; a torn last line is cut off on resume) or `OUT.parquet` (part
files renamed into place when complete), and `OUT.errors.jsonl` beside it. Every id is written
once: the run reads the ids already in OUT first. Layout: docs/bulk.md.
"""

from __future__ import annotations

import array
import itertools
import json
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from embedding_client.bulk_input import PARQUET_ERRORS, PYARROW_INSTALL, unreadable_parquet
from facts.embedding_api import EmbeddingOptions, float_rows

OUTPUT_FORMATS = {".jsonl": "jsonl", ".parquet": "parquet"}
PART_ROWS = 10_000
PART_SECONDS = 60.0
PART_PATTERN = "part-*.parquet"
TEMPORARY_PREFIX = ".part-"
# The columns of every Parquet part, in the order ParquetSink._table writes them.
PARQUET_COLUMNS = ("id", "vector", "model", "dimensions", "options")
# Parts written before the options were recorded have every column but that one.
OPTIONAL_COLUMNS = ("options",)
# The options that change a vector, besides its size: a resume with other ones would mix vectors.
VECTOR_OPTIONS = ("normalize", "prompt_name", "prompt", "truncation_direction")


class OutputError(Exception):
    """The output cannot be written or resumed (wrong kind of path, another model's vectors)."""


@dataclass(frozen=True)
class Signature:
    """What every vector of one output shares."""

    model: str
    dimensions: int
    # recorded_options(): the options the vectors were made with; None in an older output.
    options: str | None = None


def recorded_options(options: EmbeddingOptions) -> str:
    """The VECTOR_OPTIONS set away from their defaults, as the JSON object the output records."""
    chosen = {
        name: getattr(options, name)
        for name in VECTOR_OPTIONS
        if getattr(options, name) != getattr(EmbeddingOptions, name)
    }
    return _one_form(chosen)


def _read_options(value: Any) -> str | None:
    """A recorded options object (a JSONL field, or a Parquet cell's JSON text) in its one form."""
    if value is None:
        return None
    chosen = json.loads(value) if isinstance(value, str) else value
    if not isinstance(chosen, dict):
        raise ValueError("options is not a JSON object")
    return _one_form(chosen)


def _one_form(chosen: dict[str, Any]) -> str:
    """Compact JSON with sorted keys: equal options compare equal as text."""
    return json.dumps(chosen, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class VectorSink(Protocol):
    """Where the vectors go; `write` is called from one thread only."""

    path: Path

    @property
    def signature(self) -> Signature | None:
        """What the vectors already in the output share (known once `done_ids` was read)."""
        ...

    def done_ids(self) -> Iterator[str]:
        """Ids already in the output (after repairing what a crash left)."""
        ...

    def open(self) -> None:
        """Be ready to write: fails, before anything is sent, where the output cannot be."""
        ...

    def write(self, ids: Sequence[str], vectors: Sequence[Sequence[float]], sig: Signature) -> None:
        """Add rows; refuses vectors of another model or size than those already written."""
        ...

    def close(self) -> None:
        """Make everything written so far durable and readable."""
        ...


def output_format(path: Path) -> str:
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise OutputError(
            f"--out {path}: the extension decides the format; expected one of "
            f"{', '.join(OUTPUT_FORMATS)}"
        )
    return fmt


def errors_path(path: Path) -> Path:
    """Where the documents that could not be embedded are listed."""
    return path.with_name(path.name + ".errors.jsonl")


def open_sink(path: Path, *, part_rows: int = PART_ROWS) -> VectorSink:
    """The sink for `path`'s format (by extension)."""
    if output_format(path) == "parquet":
        return ParquetSink(path, part_rows=part_rows)
    return JsonlSink(path)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def check_signature(existing: Signature | None, sig: Signature, path: Path) -> None:
    """Refuse to add vectors of another model, size or options to those already written."""
    if existing is None:
        return
    if (existing.model, existing.dimensions) != (sig.model, sig.dimensions):
        raise OutputError(
            f"{path} holds vectors of {existing.model} ({existing.dimensions} dimensions); this "
            f"run gives {sig.model} ({sig.dimensions} dimensions): write to another --out"
        )
    check_options(existing, sig.options, path)


def check_options(existing: Signature | None, options: str | None, path: Path) -> None:
    """Refuse other options than those the output records (known before any request is sent,
    whatever the target states about its model)."""
    if existing is None or None in (existing.options, options) or existing.options == options:
        return
    raise OutputError(
        f"{path} holds vectors made with the options {existing.options}; this run asks for "
        f"{options}: resume with the same --no-normalize, --prompt and --prompt-name, "
        "or write to another --out"
    )


def continued(existing: Signature | None, sig: Signature) -> Signature:
    """What the next rows record: an output begun before the options were recorded keeps its
    form (a Parquet dataset read as one takes its first part's columns)."""
    if existing is not None and existing.options is None:
        return replace(sig, options=None)
    return sig


class JsonlSink:
    """Whole lines appended per batch, flushed and fsynced; the id leads every line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: Any = None
        self._signature: Signature | None = None

    def done_ids(self) -> Iterator[str]:
        if self.path.is_dir():
            raise OutputError(f"--out {self.path} is a directory; a .jsonl output is one file")
        if not self.path.exists():
            return
        self._cut_incomplete_line()
        decoder = json.JSONDecoder()
        with self.path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    if line.startswith('{"id":"'):  # what this sink writes: read the id only
                        identifier, _ = decoder.raw_decode(line, 6)
                    else:
                        identifier = json.loads(line)["id"]
                    if self._signature is None:
                        record = json.loads(line)
                        self._signature = Signature(
                            str(record["model"]),
                            int(record["dimensions"]),
                            _read_options(record.get("options")),
                        )
                except (ValueError, KeyError, TypeError):
                    raise OutputError(
                        f"{self.path} line {number} is not a vector line this command wrote; "
                        "write to another --out"
                    ) from None
                yield str(identifier)

    @property
    def signature(self) -> Signature | None:
        return self._signature

    def _cut_incomplete_line(self) -> None:
        """Drop a last line without its line break: a write cut short by a hard kill."""
        with self.path.open("rb+") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size == 0:
                return
            handle.seek(size - 1)
            if handle.read(1) == b"\n":
                return
            position = size
            while position > 0:
                step = min(65536, position)
                handle.seek(position - step)
                chunk = handle.read(step)
                newline = chunk.rfind(b"\n")
                if newline >= 0:
                    position = position - step + newline + 1
                    break
                position -= step
            handle.truncate(position)

    def open(self) -> None:
        """Open the file to append now: a folder that is missing fails before anything is sent."""
        if self._handle is None:
            self._handle = self.path.open("a", encoding="utf-8")

    def write(self, ids: Sequence[str], vectors: Sequence[Sequence[float]], sig: Signature) -> None:
        check_signature(self._signature, sig, self.path)
        self._signature = sig = continued(self._signature, sig)
        self.open()
        head = f',"model":{json.dumps(sig.model)},"dimensions":{sig.dimensions},'
        if sig.options is not None:
            head += f'"options":{sig.options},'
        head += '"vector":'
        lines = [
            '{"id":' + json.dumps(identifier, ensure_ascii=False) + head + row + "}\n"
            for identifier, row in zip(ids, float_rows(vectors), strict=True)
        ]
        self._handle.write("".join(lines))
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _import_pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise OutputError(
            f"Parquet output needs pyarrow, which is not installed: {PYARROW_INSTALL}; "
            "or write --out FILE.jsonl"
        ) from None
    return pa, pq


class ParquetSink:
    """A dataset directory of part files, each renamed into place once complete."""

    def __init__(self, path: Path, *, part_rows: int = PART_ROWS) -> None:
        self.path = path
        self._pa, self._pq = _import_pyarrow()
        self._part_rows = part_rows
        self._run = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        self._parts = 0
        self._ids: list[str] = []
        # float32, 4 bytes a value: Python floats in lists would take about 8 times as much.
        self._values = array.array("f")
        self._since = time.monotonic()
        self._signature: Signature | None = None

    def _prepare_directory(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise OutputError(
                f"--out {self.path} is a file; Parquet output is a directory of part files "
                "(docs/bulk.md): choose a path that does not exist yet"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        for leftover in self.path.glob(TEMPORARY_PREFIX + "*"):
            leftover.unlink()  # a part a crash left half-written: its rows were never done
        strangers = sorted(
            entry.name
            for entry in self.path.iterdir()
            if not (entry.is_file() and entry.match(PART_PATTERN))
        )
        if strangers:
            raise OutputError(
                f"--out {self.path} holds files this command did not write ({strangers[0]}, ...); "
                "choose another --out"
            )

    def done_ids(self) -> Iterator[str]:
        self._prepare_directory()
        for part in sorted(self.path.glob(PART_PATTERN)):
            try:
                yield from self._part_ids(part)
            except PARQUET_ERRORS as problem:
                raise OutputError(unreadable_parquet(part, problem)) from None

    @property
    def signature(self) -> Signature | None:
        return self._signature

    def open(self) -> None:
        """Nothing to open: the directory was made when the done ids were read."""

    def _part_ids(self, part: Path) -> Iterator[str]:
        parquet = self._pq.ParquetFile(part)
        columns = set(parquet.schema_arrow.names)
        if not set(PARQUET_COLUMNS) - set(OPTIONAL_COLUMNS) <= columns:
            raise OutputError(
                f"{part} is not a part this command wrote (its columns: {sorted(columns)}); "
                "write to another --out"
            )
        if self._signature is None and parquet.metadata.num_rows:
            read = [name for name in PARQUET_COLUMNS[2:] if name in columns]
            row = next(parquet.iter_batches(batch_size=1, columns=read)).to_pylist()[0]
            options = _read_options(row.get("options"))
            self._signature = Signature(row["model"], row["dimensions"], options)
        for batch in parquet.iter_batches(columns=["id"], batch_size=65536):
            yield from batch.column(0).to_pylist()

    def write(self, ids: Sequence[str], vectors: Sequence[Sequence[float]], sig: Signature) -> None:
        check_signature(self._signature, sig, self.path)
        self._signature = continued(self._signature, sig)
        self._ids.extend(ids)
        self._values.extend(itertools.chain.from_iterable(vectors))
        if len(self._ids) >= self._part_rows or time.monotonic() - self._since >= PART_SECONDS:
            self._write_part()

    def _table(self, ids: list[str], flat: array.array) -> Any:
        pa = self._pa
        assert self._signature is not None
        dimensions = self._signature.dimensions
        count = len(ids)
        values = pa.Array.from_buffers(pa.float32(), count * dimensions, [None, pa.py_buffer(flat)])
        columns = (
            pa.array(ids, type=pa.string()),
            pa.FixedSizeListArray.from_arrays(values, dimensions),
            pa.array([self._signature.model] * count, type=pa.string()),
            pa.array([dimensions] * count, type=pa.int32()),
            pa.array([self._signature.options] * count, type=pa.string()),
        )
        table = dict(zip(PARQUET_COLUMNS, columns, strict=True))
        if self._signature.options is None:  # continued() keeps an older dataset's columns
            del table["options"]
        return pa.table(table)

    def _write_part(self) -> None:
        self._since = time.monotonic()
        if not self._ids:
            return
        # Taken out of the buffer first: whatever interrupts this, no row is written twice.
        ids, flat = self._ids, self._values
        self._ids, self._values = [], array.array("f")
        self.path.mkdir(parents=True, exist_ok=True)
        self._parts += 1
        name = f"part-{self._run}-{self._parts:05d}.parquet"
        temporary = self.path / (TEMPORARY_PREFIX + name + ".tmp")
        with temporary.open("wb") as handle:
            self._pq.write_table(self._table(ids, flat), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path / name)
        _fsync_directory(self.path)

    def close(self) -> None:
        self._write_part()


class ErrorLog:
    """`OUT.errors.jsonl`: the documents this run could not embed, one JSON line each."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._handle: Any = None

    def add(self, identifier: str | None, position: int, error: str) -> None:
        if self._handle is None:
            self._handle = self.path.open("w", encoding="utf-8")
        record = {"id": identifier, "position": position, "error": error}
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._handle.flush()
        self.count += 1

    def close(self) -> None:
        """Close; a run without failures removes the previous run's list."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        elif self.path.exists():
            self.path.unlink()
