"""`embed file`'s readers: every format streamed into documents, problems named per record."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from embedding_client.bulk_input import (
    Document,
    InputFormatError,
    count_records,
    input_format,
    read_documents,
)


def write_jsonl(path: Path, lines: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def test_jsonl_records_become_documents_with_their_line_numbers(tmp_path):
    path = write_jsonl(
        tmp_path / "c.jsonl", [{"id": "a", "text": "one"}, "", {"id": 7, "text": "two"}]
    )
    assert list(read_documents(path, "jsonl")) == [
        Document("a", "one", 1),
        Document("7", "two", 3),  # integer ids become their decimal text; blank lines are skipped
    ]


def test_jsonl_fields_are_chosen_by_the_caller(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [{"doc": "x1", "body": "hello", "text": "no"}])
    documents = list(read_documents(path, "jsonl", id_field="doc", text_field="body"))
    assert documents == [Document("x1", "hello", 1)]


def test_jsonl_records_that_cannot_be_embedded_carry_their_problem(tmp_path):
    path = write_jsonl(
        tmp_path / "c.jsonl",
        [
            {"text": "no id"},
            {"id": True, "text": "a boolean id"},
            {"id": "b"},
            {"id": "c", "text": 3},
            {"id": "", "text": "an empty id"},
            "{not json",
            "[1, 2]",
        ],
    )
    problems = [(d.position, d.id, d.problem) for d in read_documents(path, "jsonl")]
    ids = "ids are non-empty strings or integers"
    assert problems[0] == (1, None, f"record has no 'id'; {ids}")
    assert problems[1] == (2, None, f"record has a bool as its 'id'; {ids}")
    assert problems[2] == (3, "b", "record has no 'text'; texts are strings")
    assert problems[3] == (4, "c", "record has an int as its 'text'; texts are strings")
    assert problems[4] == (5, None, f"record has an empty 'id'; {ids}")
    assert problems[5][2].startswith("line is not JSON")
    assert problems[6][2] == "line is not a JSON object"


def test_a_line_that_is_not_utf8_is_a_problem_of_that_line_only(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_bytes(b'{"id": "a", "text": "fine"}\n\xff\xfe\n{"id": "b", "text": "fine"}\n')
    documents = list(read_documents(path, "jsonl"))
    assert [d.problem for d in documents] == [None, "line is not UTF-8", None]


def test_csv_rows_are_documents_and_quoted_newlines_stay_in_the_text(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text('id,text,other\n1,"first, with comma",x\n2,"two\nlines",y\n')
    assert list(read_documents(path, "csv")) == [
        Document("1", "first, with comma", 1),
        Document("2", "two\nlines", 2),
    ]
    assert count_records(path, "csv") == 2


def test_csv_without_the_id_column_fails_before_reading_naming_the_columns(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("key,text\n1,a\n")
    with pytest.raises(InputFormatError, match=r"no column 'id'; the header has \['key', 'text'\]"):
        read_documents(path, "csv")


def test_parquet_is_streamed_by_row_groups(tmp_path):
    path = tmp_path / "c.parquet"
    table = pa.table({"id": [f"p{i}" for i in range(10)], "text": [f"t {i}" for i in range(10)]})
    pq.write_table(table, path, row_group_size=3)
    documents = list(read_documents(path, "parquet"))
    assert [d.id for d in documents] == [f"p{i}" for i in range(10)]
    assert documents[9] == Document("p9", "t 9", 10)
    assert count_records(path, "parquet") == 10


def test_parquet_without_the_text_column_fails_naming_the_columns(tmp_path):
    path = tmp_path / "c.parquet"
    pq.write_table(pa.table({"id": ["a"], "body": ["b"]}), path)
    with pytest.raises(InputFormatError, match="no column 'text'"):
        read_documents(path, "parquet")


def test_plain_text_ids_are_line_numbers_and_blank_lines_are_no_documents(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("first\n\n  \nfourth\r\n")
    assert list(read_documents(path, "text")) == [
        Document("1", "first", 1),
        Document("4", "fourth", 4),
    ]
    assert count_records(path, "text") == 2


def test_a_utf8_bom_is_not_part_of_the_first_field(tmp_path):
    csv_path = tmp_path / "excel.csv"
    csv_path.write_bytes(b"\xef\xbb\xbfid,text\r\n1,caf\xc3\xa9\r\n")
    assert list(read_documents(csv_path, "csv")) == [Document("1", "café", 1)]
    assert count_records(csv_path, "csv") == 1
    jsonl_path = tmp_path / "notepad.jsonl"
    jsonl_path.write_bytes(b'\xef\xbb\xbf{"id": "a", "text": "one"}\n')
    assert list(read_documents(jsonl_path, "jsonl")) == [Document("a", "one", 1)]
    text_path = tmp_path / "notepad.txt"
    text_path.write_bytes(b"\xef\xbb\xbffirst\n")
    assert list(read_documents(text_path, "text")) == [Document("1", "first", 1)]


def test_an_unpaired_surrogate_is_a_problem_of_that_record_only(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(
        '{"id": "a", "text": "cut emoji \\ud83d"}\n'
        '{"id": "b\\udc00", "text": "fine"}\n'
        '{"id": "c", "text": "whole emoji \\ud83d\\ude00"}\n'
    )
    documents = list(read_documents(path, "jsonl"))
    assert [(d.id, d.text) for d in documents] == [
        ("a", None),
        (None, None),
        ("c", "whole emoji 😀"),
    ]
    assert "'text' holds an unpaired surrogate" in documents[0].problem
    assert "'id' holds an unpaired surrogate" in documents[1].problem
    assert documents[2].problem is None


def test_a_csv_field_as_long_as_a_request_can_carry_is_read(tmp_path):
    path = tmp_path / "long.csv"
    long_text = "word " * 60_000  # 300,000 characters: over the csv module's default 131,072
    path.write_text(f'id,text\n1,"{long_text}"\n2,short\n')
    assert [d.text for d in read_documents(path, "csv")] == [long_text, "short"]
    assert count_records(path, "csv") == 2


def test_a_csv_field_no_request_could_carry_stops_the_reading_naming_the_line(tmp_path):
    path = tmp_path / "huge.csv"
    path.write_text(f"id,text\n1,fine\n2,{'x' * 4_000_001}\n")
    with pytest.raises(InputFormatError, match=r"huge.csv, data row 2: not CSV \(field larger"):
        list(read_documents(path, "csv"))
    assert count_records(path, "csv") is None  # no ETA, and the run names the line


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.jsonl", "jsonl"), ("a.NDJSON", "jsonl"), ("a.csv", "csv"), ("a.parquet", "parquet")],
)
def test_format_follows_the_extension(name, fmt):
    assert input_format(Path(name)) == fmt


def test_unknown_extension_names_the_known_ones_and_the_option():
    with pytest.raises(InputFormatError, match=r"\.jsonl.*--input-format"):
        input_format(Path("corpus.json"))
    assert input_format(Path("corpus.json"), "jsonl") == "jsonl"


def test_missing_input_file_is_named(tmp_path):
    with pytest.raises(InputFormatError, match="no such file"):
        read_documents(tmp_path / "absent.jsonl", "jsonl")


def test_csv_bytes_that_are_not_utf8_stop_the_reading_with_what_to_do(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(b"id,text\n1,fine\n" + b"2,ok\n" * 5000 + b"3,\xff\xfe broken\n")
    with pytest.raises(InputFormatError, match=r"is not UTF-8 .*re-encode it as UTF-8"):
        list(read_documents(path, "csv"))
