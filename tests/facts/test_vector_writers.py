"""Float32 vectors as JSON: orjson's shortest form and the standard library's 9 digits read alike.

ONNX archives vendor orjson (facts/onnx_runtime.py); torch archives write with the standard
library. Both must give back exactly the float32 values the container computed, within the
per-value size the request limits are computed from.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

import facts.embedding_api as api
from facts.embedding_api import (
    FLOAT_VALUE_BYTES,
    EmbeddingOptions,
    EmbeddingRequest,
    Usage,
    base64_vector,
    float_rows,
    max_vectors,
    render_response,
)

# Values whose written form is the longest either writer gives ("-1.17549435e-38" for %.9g;
# "-0.0000012345679" and "-1961229700000.0" for orjson), the extremes and both zeros.
EDGES = [-1.1754942e-38, -1.2345679e-6, -1.9612297e12, -3.4028235e38, 1e-45, 0.0, -0.0, 0.1]


@pytest.fixture(params=["orjson", "standard library"])
def writer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "orjson":
        assert api._orjson is not None, "orjson is a dev requirement (requirements-dev.txt)"
    else:
        monkeypatch.setattr(api, "_orjson", None)
    return request.param


def every_kind_of_float32() -> np.ndarray:
    """Random bit patterns (every binade, both signs, subnormals) and EDGES, 64 per row."""
    bits = np.random.default_rng(7).integers(0, 2**32, 100_000, dtype=np.uint64)
    values = bits.astype(np.uint32).view(np.float32)
    values = np.concatenate([np.float32(EDGES), values[np.isfinite(values)]])
    return values[: len(values) // 64 * 64].reshape(-1, 64)


def read_back(rows: list[str]) -> np.ndarray:
    return np.array(json.loads("[" + ",".join(rows) + "]"), dtype=np.float64).astype(np.float32)


def test_every_float32_reads_back_exactly(writer: str) -> None:
    vectors = every_kind_of_float32()
    assert np.array_equal(read_back(float_rows(vectors)), vectors)


def test_no_value_takes_more_than_the_limits_assume(writer: str) -> None:
    written = ",".join(float_rows(every_kind_of_float32()))
    longest = max(len(value.strip("[]")) for value in written.split(","))
    assert longest + 1 <= FLOAT_VALUE_BYTES  # with its comma


def test_orjson_writes_each_value_in_its_shortest_exact_form() -> None:
    assert api._orjson is not None
    assert float_rows(np.float32([[0.1, -2.5], [1e-45, 3.0]])) == ["[0.1,-2.5]", "[1e-45,3.0]"]


def test_the_standard_library_writes_nine_significant_digits(monkeypatch) -> None:
    monkeypatch.setattr(api, "_orjson", None)
    assert float_rows(np.float32([[0.1, -2.5]])) == ["[0.100000001,-2.5]"]


def test_an_array_orjson_cannot_take_whole_is_written_all_the_same(writer: str) -> None:
    vectors = every_kind_of_float32()[:, ::2]  # not contiguous: orjson refuses it
    assert np.array_equal(read_back(float_rows(vectors)), vectors)


def test_a_numpy_row_in_base64_is_the_bytes_of_the_same_list() -> None:
    row = every_kind_of_float32()[0]
    assert base64_vector(row) == base64_vector(row.tolist())
    assert np.array_equal(np.frombuffer(base64.b64decode(base64_vector(row)), "<f4"), row)


@pytest.mark.parametrize("dimensions", [384, 4096])
def test_the_stated_limit_fits_the_worst_numpy_response(writer: str, dimensions: int) -> None:
    count = max_vectors(dimensions, "float", 4_000_000)
    worst = np.full((count, dimensions), -1.2345679e-6, dtype=np.float32)
    request = EmbeddingRequest(("a",) * count, EmbeddingOptions())
    assert len(render_response(request, worst, "org/" + "m" * 100, Usage(10**9))) <= 4_000_000


def test_a_native_response_carries_orjsons_matrix_as_the_rows_would_read() -> None:
    vectors = every_kind_of_float32()[:5]
    request = EmbeddingRequest(("a",) * 5, EmbeddingOptions())
    rows = ",".join(float_rows(vectors))
    expected = (
        f'{{"embeddings":[{rows}],"model":"org/model","dimensions":64,'
        f'"usage":{Usage(12).as_json()}}}'
    )
    assert render_response(request, vectors, "org/model", Usage(12)) == expected
