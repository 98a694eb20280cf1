"""Request bodies read alike by orjson (ONNX archives) and the standard library (torch archives).

orjson reads what it accepts as the standard library does; whatever it refuses is read again by
the standard library, so what is accepted and the messages of what is refused stay the same.
"""

from __future__ import annotations

import pytest

import facts.embedding_api as api
from facts.embedding_api import JSON_CONTENT_TYPE, InputError, parse_body

LIMIT = 6_000_000

ACCEPTED = [
    b'{"inputs": "one text"}',
    b'{"inputs": ["a", "b"], "parameters": {"dimensions": 64, "normalize": false}}',
    b'{"input": ["caf\\u00e9", "\xe2\x98\x83"], "encoding_format": "base64", "model": "x"}',
    b'{"inputs": "first", "inputs": ["second wins"]}',
    b' \n{"info": true}\t',
]
REFUSED = [
    b'{"inputs": "x", "parameters": {"dimensions": NaN}}',  # orjson refuses NaN; json reads it
    b'{"inputs": "\xff\xfe"}',  # not UTF-8
    b'{"inputs": "\\ud800"}',  # a lone surrogate
    b'\xef\xbb\xbf{"inputs": "x"}',  # a UTF-8 byte order mark
    b'{"inputs": ' + b"[" * 5000 + b"]" * 5000 + b"}",  # past both readers' depth
    b'{"inputs": "x"',
]


def read(body: bytes) -> object:
    try:
        return parse_body(body, JSON_CONTENT_TYPE, LIMIT)
    except InputError as error:
        return ("refused", error.status, str(error))


@pytest.fixture
def standard_library(monkeypatch: pytest.MonkeyPatch):
    def read_without_orjson(body: bytes) -> object:
        with monkeypatch.context() as patch:
            patch.setattr(api, "_orjson", None)
            return read(body)

    return read_without_orjson


def test_orjson_is_there_to_compare() -> None:
    assert api._orjson is not None, "orjson is a dev requirement (requirements-dev.txt)"


@pytest.mark.parametrize("body", ACCEPTED)
def test_an_accepted_body_is_the_same_request(body: bytes, standard_library) -> None:
    request = read(body)
    assert not isinstance(request, tuple), request
    assert request == standard_library(body)


@pytest.mark.parametrize("body", REFUSED)
def test_a_body_orjson_refuses_gets_the_standard_librarys_answer(
    body: bytes, standard_library
) -> None:
    assert read(body) == standard_library(body)


def test_an_integer_past_64_bits_is_refused_by_both_readers_as_no_dimension() -> None:
    body = b'{"inputs": "x", "parameters": {"dimensions": 123456789012345678901234567890}}'
    with pytest.raises(InputError, match='"dimensions" must be a positive integer, got 1.23'):
        parse_body(body, JSON_CONTENT_TYPE, LIMIT)
