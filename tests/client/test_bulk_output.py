"""`embed file`'s outputs: readable at every moment, resumable, one model per output."""

from __future__ import annotations

import json
import struct
import sys

import pyarrow.parquet as pq
import pytest

from embedding_client.bulk_output import (
    ErrorLog,
    JsonlSink,
    OutputError,
    ParquetSink,
    Signature,
    errors_path,
    open_sink,
    recorded_options,
)
from facts.embedding_api import EmbeddingOptions

SIG = Signature("org/model", 3, recorded_options(EmbeddingOptions(normalize=True)))
OTHER = Signature("org/model", 3, recorded_options(EmbeddingOptions(normalize=False)))


def float32(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", value))[0]


VECTORS = [[float32(0.1), float32(-2.5e-8), float32(1 / 3)], [1.0, 0.0, float32(0.7)]]


def test_jsonl_lines_lead_with_the_id_and_keep_float32_values_exactly(tmp_path):
    sink = JsonlSink(tmp_path / "v.jsonl")
    sink.write(["a", "b"], VECTORS, SIG)
    sink.close()
    lines = (tmp_path / "v.jsonl").read_text().splitlines()
    assert lines[0].startswith(
        '{"id":"a","model":"org/model","dimensions":3,"options":{"normalize":true},"vector":['
    )
    read = [[float32(x) for x in json.loads(line)["vector"]] for line in lines]
    assert read == VECTORS  # 9 significant digits: each value parses back to the same float32


def test_jsonl_resume_reads_the_ids_and_cuts_a_line_a_hard_kill_left_incomplete(tmp_path):
    path = tmp_path / "v.jsonl"
    sink = JsonlSink(path)
    sink.write(["a", "b"], VECTORS, SIG)
    sink.close()
    with path.open("a") as handle:
        handle.write('{"id":"c","model":"org/mo')  # what a kill mid-write can leave
    assert list(JsonlSink(path).done_ids()) == ["a", "b"]
    assert path.read_text().endswith("]}\n")
    assert all(json.loads(line) for line in path.read_text().splitlines())


def test_jsonl_output_of_another_model_is_not_appended_to(tmp_path):
    path = tmp_path / "v.jsonl"
    first = JsonlSink(path)
    first.write(["a"], VECTORS[:1], SIG)
    first.close()
    again = JsonlSink(path)
    assert list(again.done_ids()) == ["a"]
    with pytest.raises(OutputError, match="holds vectors of org/model .3 dimensions.; this run"):
        again.write(["b"], [[1.0, 2.0]], Signature("org/model", 2, SIG.options))


def test_options_record_what_changes_a_vector_and_nothing_else():
    chosen = EmbeddingOptions(normalize=False, prompt_name="query", dimensions=64, truncate=False)
    assert json.loads(recorded_options(chosen)) == {"normalize": False, "prompt_name": "query"}
    assert recorded_options(EmbeddingOptions(encoding_format="base64")) == "{}"


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_resume_with_other_options_is_refused_naming_both(tmp_path, suffix):
    path = tmp_path / f"v{suffix}"
    first = open_sink(path)
    first.write(["a"], VECTORS[:1], SIG)
    first.close()
    again = open_sink(path)
    assert list(again.done_ids()) == ["a"]
    assert again.signature == SIG
    with pytest.raises(OutputError, match='options {"normalize":true}; this run asks for {"norm'):
        again.write(["b"], VECTORS[1:], OTHER)


def older_output(path):
    """Row "a" as the version before the options were recorded wrote it."""
    if path.suffix == ".jsonl":  # json.dumps's spaces, as a hand-edited file may have them too
        line = {"id": "a", "model": "org/model", "dimensions": 3, "vector": VECTORS[0]}
        path.write_text(json.dumps(line) + "\n")
        return
    sink = ParquetSink(path)
    sink.write(["a"], VECTORS[:1], SIG)
    sink.close()
    (part,) = path.glob("part-*.parquet")
    older = path / "part-00000000T000000-older-00001.parquet"  # before any later run's parts
    pq.write_table(pq.read_table(part).drop_columns(["options"]), older)
    part.unlink()


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_an_output_written_before_options_were_recorded_is_resumed_in_its_own_form(
    tmp_path, suffix
):
    path = tmp_path / f"v{suffix}"
    older_output(path)
    again = open_sink(path)
    assert list(again.done_ids()) == ["a"]
    assert again.signature == Signature("org/model", 3, None)
    again.write(["b"], VECTORS[1:], OTHER)  # nothing recorded to hold it to
    again.close()
    if suffix == ".jsonl":
        assert ["options" in json.loads(line) for line in path.read_text().splitlines()] == [
            False
        ] * 2
    else:  # read as one dataset, every row keeps the first part's columns
        table = pq.read_table(path)
        assert table.column_names == ["id", "vector", "model", "dimensions"]
        assert sorted(table.column("id").to_pylist()) == ["a", "b"]


def test_jsonl_output_that_this_command_did_not_write_is_refused(tmp_path):
    path = tmp_path / "v.jsonl"
    path.write_text("hello\n")
    with pytest.raises(OutputError, match="line 1 is not a vector line"):
        list(JsonlSink(path).done_ids())


def test_parquet_parts_read_back_as_one_dataset_with_the_documented_schema(tmp_path):
    path = tmp_path / "v.parquet"
    sink = ParquetSink(path, part_rows=2)
    sink.write(["a", "b"], VECTORS, SIG)  # a full part: written at once
    sink.write(["c"], VECTORS[:1], SIG)
    sink.close()
    assert len(list(path.glob("part-*.parquet"))) == 2
    table = pq.read_table(path)
    assert str(table.schema.field("vector").type) == "fixed_size_list<element: float>[3]"
    assert str(table.schema.field("dimensions").type) == "int32"
    rows = sorted(table.to_pylist(), key=lambda row: row["id"])
    assert [row["id"] for row in rows] == ["a", "b", "c"]
    assert rows[0]["vector"] == VECTORS[0] and rows[0]["model"] == "org/model"
    assert json.loads(rows[0]["options"]) == {"normalize": True}
    assert sorted(ParquetSink(path).done_ids()) == ["a", "b", "c"]


def test_parquet_part_left_half_written_is_invisible_to_readers_and_removed_on_resume(tmp_path):
    path = tmp_path / "v.parquet"
    sink = ParquetSink(path)
    sink.write(["a"], VECTORS[:1], SIG)
    sink.close()
    leftover = path / ".part-crashed-00001.parquet.tmp"
    leftover.write_bytes(b"PAR1 half a part")
    assert pq.read_table(path).num_rows == 1  # readers skip hidden files
    assert list(ParquetSink(path).done_ids()) == ["a"]
    assert not leftover.exists()


def test_parquet_output_path_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "v.parquet"
    path.write_bytes(b"not a directory")
    with pytest.raises(OutputError, match="is a file; Parquet output is a directory"):
        list(ParquetSink(path).done_ids())


def test_parquet_directory_with_files_of_others_is_refused(tmp_path):
    path = tmp_path / "v.parquet"
    path.mkdir()
    (path / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="did not write .notes.txt"):
        list(ParquetSink(path).done_ids())


def test_parquet_resume_refuses_vectors_of_another_size(tmp_path):
    path = tmp_path / "v.parquet"
    sink = ParquetSink(path)
    sink.write(["a"], VECTORS[:1], SIG)
    sink.close()
    again = ParquetSink(path)
    list(again.done_ids())
    with pytest.raises(OutputError, match="write to another --out"):
        again.write(["b"], [[1.0]], Signature("org/model", 1, SIG.options))


def test_output_format_follows_the_extension(tmp_path):
    assert isinstance(open_sink(tmp_path / "v.jsonl"), JsonlSink)
    assert isinstance(open_sink(tmp_path / "v.parquet"), ParquetSink)
    with pytest.raises(OutputError, match=r"expected one of \.jsonl, \.parquet"):
        open_sink(tmp_path / "v.csv")


def test_parquet_without_pyarrow_names_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(OutputError, match=r"pip install 'pyarrow>=14'.*or write --out FILE.jsonl"):
        open_sink(tmp_path / "v.parquet")


def test_error_file_lists_this_runs_failures_and_goes_when_a_run_has_none(tmp_path):
    path = errors_path(tmp_path / "v.parquet")
    assert path.name == "v.parquet.errors.jsonl"
    first = ErrorLog(path)
    first.add("a", 3, "empty text")
    first.close()
    assert json.loads(path.read_text()) == {"id": "a", "position": 3, "error": "empty text"}
    ErrorLog(path).close()
    assert not path.exists()


def test_parquet_resume_names_a_part_whose_data_is_damaged_behind_a_whole_footer(tmp_path):
    path = tmp_path / "v.parquet"
    sink = ParquetSink(path)
    sink.write([f"id-{i}" for i in range(2000)], [[float(i)] * 3 for i in range(2000)], SIG)
    sink.close()
    part = next(path.glob("*.parquet"))
    data = bytearray(part.read_bytes())
    data[8:4096] = b"\xff" * (4096 - 8)  # the first pages, after the magic; the footer stays
    part.write_bytes(bytes(data))
    with pytest.raises(OutputError, match=r"not a readable Parquet file"):
        list(ParquetSink(path).done_ids())
