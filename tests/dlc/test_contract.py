"""The container under the DLC's own model server, spoken to over HTTP as SageMaker does.

Each engine's archive (PyTorch; ONNX with the runtime vendored for the image's Python) is
served once per module and image (the Python 3.10 stack, and the oldest image's Python 3.9 with
PyTorch 1.13.1 and transformers 4.26.0, given .bin weights as that image needs) by
multi-model-server with the toolkit's handler service
(scripts/dlc_server.py), and once by the light local endpoint (embedding_client/serve.py). Every
row of tests/support/contract_table.py goes to both: the model server must answer as the contract
says, and the two servers must agree on status, media type and body.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from embedding_client.serve import LocalEndpoint
from facts.embedding_api import INTERNAL_ERROR_MESSAGE
from facts.onnx_quantization import MIN_SENTENCE_COSINE
from scripts.dlc_server import DlcServer, http_request
from tests.fixtures.dlc import running_server
from tests.fixtures.local_endpoint import running_endpoint
from tests.fixtures.onnx_export import cached_runtime
from tests.support.contract_table import (
    ERROR_ROWS,
    JSON,
    PROMPTS,
    SUCCESS_ROWS,
    TABLE,
    Row,
    body_document,
    differences,
    json_body,
    served_copy,
    vectors_of,
)
from tests.support.models import (
    DIMENSIONS,
    min_cosine_to_reference,
    with_onnx,
    write_container_code,
)

# onnx-int8: the fused graph quantized by the loader's quantizer (ONNX Runtime 1.23.2), which
# both images must run, the py39 one with its ONNX Runtime 1.19.2.
ENGINES = ["torch", "onnx", "onnx-int8"]
# How close each archive's vectors are to sentence-transformers' (int8: the loader's own bar).
REFERENCE_COSINE = {"torch": 0.9999, "onnx": 0.9999, "onnx-int8": MIN_SENTENCE_COSINE}


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def model_dir(engine: str, dlc_stack, tmp_path_factory: pytest.TempPathFactory, request) -> Path:
    """The unpacked archive of `engine` for the stack's image: the model, `code/` and (ONNX) the
    runtime for its Python."""
    folder = served_copy(tmp_path_factory.mktemp(f"archive-{engine}") / "model")
    if dlc_stack.python == "3.9":
        as_pytorch_bin(folder)  # the 1.13.1 image cannot load safetensors (components/images.py)
    if engine.startswith("onnx"):
        graph = "reference_onnx_int8" if engine == "onnx-int8" else "reference_onnx_export"
        with_onnx(folder, request.getfixturevalue(graph))
        write_container_code(folder, cached_runtime(dlc_stack.python))
    else:
        write_container_code(folder)
    return folder


def as_pytorch_bin(folder: Path) -> None:
    """The folder's model.safetensors saved as pytorch_model.bin instead."""
    import torch
    from safetensors.torch import load_file

    weights = folder / "model.safetensors"
    torch.save(load_file(str(weights)), folder / "pytorch_model.bin")
    weights.unlink()


@pytest.fixture(scope="module")
def dlc(dlc_stack, model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    yield from running_server(model_dir, tmp_path_factory.mktemp("dlc"), dlc_stack)


@pytest.fixture(scope="module")
def light(dlc_stack, model_dir: Path) -> Iterator[LocalEndpoint]:
    """`make serve`'s endpoint in this process, on the same folder."""
    yield from running_endpoint(model_dir)


def ask(server: DlcServer, row: Row):
    return server.request("POST", "/invocations", row.body, row.request_headers())


def test_ping_answers_healthy(dlc: DlcServer) -> None:
    answer = dlc.request("GET", "/ping")
    assert (answer.status, answer.content_type) == (200, JSON)


def test_the_worker_runs_the_archives_engine(dlc: DlcServer, engine: str) -> None:
    info = body_document(ask(dlc, Row("info", b'{"info": true}', 200)))
    served = engine.split("-")[0]  # an int8 archive runs the ONNX engine
    assert (info["engine"], info["dimensions"], info["prompts"]) == (served, DIMENSIONS, PROMPTS)


@pytest.mark.parametrize("row", SUCCESS_ROWS, ids=lambda row: row.name)
def test_a_request_the_docs_promise_is_answered(dlc: DlcServer, row: Row) -> None:
    answer = ask(dlc, row)
    expected_type = (row.accept or JSON).split(";")[0] if row.accept != "*/*" else JSON
    assert (answer.status, answer.content_type) == (200, expected_type), answer.body[:500]


def test_vectors_equal_sentence_transformers(dlc: DlcServer, engine: str) -> None:
    texts = ["A man is eating food.", "The girl is carrying a baby.", "word " * 400]
    row = Row("texts", json_body({"inputs": texts}), 200)
    vectors = vectors_of(body_document(ask(dlc, row)))
    assert min_cosine_to_reference(vectors, texts) >= REFERENCE_COSINE[engine]


def test_dimensions_keep_the_leading_values(dlc: DlcServer) -> None:
    raw = {"normalize": False}
    full, cut = (
        vectors_of(
            body_document(ask(dlc, Row("d", json_body({"inputs": "a cat", "parameters": p}), 200)))
        )[0]
        for p in (raw, {**raw, "dimensions": 64})
    )
    assert len(cut) == 64
    assert cut == pytest.approx(full[:64], rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("row", ERROR_ROWS, ids=lambda row: row.name)
def test_bad_input_gets_the_projects_message(dlc: DlcServer, row: Row) -> None:
    answer = ask(dlc, row)
    document = body_document(answer)
    assert (answer.status, answer.content_type) == (row.status, JSON), document
    assert document["code"] == row.status
    assert "Traceback" not in document["message"] and document["message"], document
    assert document["message"] != INTERNAL_ERROR_MESSAGE, document


@pytest.mark.parametrize("row", TABLE, ids=lambda row: row.name)
def test_the_two_servers_agree(dlc: DlcServer, dlc_stack, request, row: Row) -> None:
    if dlc_stack.name != "py310":  # the light endpoint does not depend on the image
        pytest.skip("the two servers are compared under the py310 image")
    light: LocalEndpoint = request.getfixturevalue("light")
    port = int(light.url.rsplit(":", 1)[1].split("/")[0])
    theirs = http_request(port, "POST", "/invocations", row.body, row.request_headers())
    assert differences(row, ask(dlc, row), theirs) == []
