"""code/inference.py's JSON-lines contract, as SageMaker Batch Transform drives it.

Batch Transform (SplitType=Line, BatchStrategy=MultiRecord) posts many lines in one body with
Content-Type application/jsonlines; each line is a JSON string or an object with an "inputs"
string (other keys, such as an id, are ignored). The answer is one {"embedding": [...]} line per
input line, in order, as application/jsonlines. Inside a transform job SageMaker sets
SAGEMAKER_BATCH and SAGEMAKER_MAX_PAYLOAD_IN_MB; the limits then follow the job, not the
serverless endpoint's 4 MB.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from facts import batch_transform
from facts.embedding_api import InputError
from tests.support.models import DIMENSIONS, REFERENCE_MODEL_DIR, container_module

environment = container_module("environment")


def in_this_environment(model):
    """`model` as model_fn loads it in the current environment (settings are read at load)."""
    return dataclasses.replace(model, environment=environment.read_environment())


JSONLINES = "application/jsonlines"
RECORDS = [
    {"id": "a", "inputs": "A man is eating food."},
    "A man is eating a piece of bread.",
    {"inputs": "The girl is carrying a baby.", "id": 7, "source": "x"},
    "Ein Mann isst Essen.",
]
TEXTS = [record["inputs"] if isinstance(record, dict) else record for record in RECORDS]


@pytest.fixture
def in_transform_job(monkeypatch: pytest.MonkeyPatch):
    """The variables SageMaker sets in a transform job with MaxPayloadInMB=1."""
    monkeypatch.setenv(batch_transform.BATCH_ENV, "true")
    monkeypatch.setenv(batch_transform.MAX_PAYLOAD_ENV, "1")
    monkeypatch.setenv(batch_transform.RESPONSE_SIZE_ENV, str(200_000_000))


def jsonlines_body(records) -> bytes:
    return "".join(json.dumps(record) + "\n" for record in records).encode()


def answer(inference, loaded, body: bytes) -> list[dict]:
    request = inference.input_fn(body, JSONLINES)
    output = inference.output_fn(inference.predict_fn(request, loaded), JSONLINES)
    assert output.endswith("\n")
    return [json.loads(line) for line in output.splitlines()]


def test_each_line_gets_one_embedding_line_in_order_matching_sentence_transformers(
    inference, loaded
):
    lines = answer(inference, loaded, jsonlines_body(RECORDS))
    assert [sorted(line) for line in lines] == [["embedding"]] * len(RECORDS)
    ours = np.asarray([line["embedding"] for line in lines])
    theirs = SentenceTransformer(str(REFERENCE_MODEL_DIR), device="cpu").encode(
        TEXTS, normalize_embeddings=True
    )
    assert ours.shape == (len(TEXTS), DIMENSIONS)
    assert ((ours * theirs).sum(axis=1)).min() >= 0.9999


def test_a_blank_line_before_a_record_is_a_400_naming_it(inference):
    """Skipping it would answer fewer lines than came, and a job joins them by position."""
    with pytest.raises(InputError) as raised:
        inference.input_fn(b'"alpha"\n\n"beta"\n', JSONLINES)
    assert raised.value.status == 400 and str(raised.value).startswith("line 2 is blank")


def test_blank_lines_after_the_last_record_and_crlf_endings_are_no_records(inference):
    request = inference.input_fn(b'"alpha"\r\n{"inputs":\r"beta"}\r\n\r\n\n', JSONLINES)
    assert request.texts == ("alpha", "beta")


def test_a_line_that_is_neither_a_string_nor_an_inputs_object_is_a_400_naming_it(inference):
    body = jsonlines_body(["fine", {"text": "no inputs key"}])
    with pytest.raises(InputError) as raised:
        inference.input_fn(body, JSONLINES)
    assert raised.value.status == 400 and "line 2" in str(raised.value)


def test_a_line_that_is_not_json_is_a_400_naming_it(inference):
    with pytest.raises(InputError) as raised:
        inference.input_fn(b'"fine"\n{oops\n', JSONLINES)
    assert raised.value.status == 400 and "line 2" in str(raised.value)


def test_jsonlines_are_answered_in_jsonlines_under_the_toolkits_default_accept(inference, loaded):
    # HuggingFaceHandlerService.handle passes a missing Accept and */* as application/json.
    request = inference.input_fn(jsonlines_body(["a", "b"]), JSONLINES)
    output = inference.output_fn(inference.predict_fn(request, loaded), "application/json")
    lines = [json.loads(line) for line in output.splitlines()]
    assert [len(line["embedding"]) for line in lines] == [DIMENSIONS, DIMENSIONS]


def test_jsonlines_answer_refuses_an_accept_it_cannot_meet(inference, loaded):
    request = inference.input_fn(jsonlines_body(["a"]), JSONLINES)
    with pytest.raises(InputError) as raised:
        inference.output_fn(inference.predict_fn(request, loaded), "text/csv")
    assert raised.value.status == 406 and JSONLINES in str(raised.value)


def test_on_serverless_a_multirecord_batch_over_the_4_mb_response_bound_is_a_413(inference, loaded):
    limit = loaded.max_texts_per_request(DIMENSIONS, "float")
    request = inference.input_fn(jsonlines_body([f"t {i}" for i in range(limit + 1)]), JSONLINES)
    with pytest.raises(InputError) as raised:
        inference.predict_fn(request, loaded)
    assert raised.value.status == 413


def test_in_a_transform_job_a_multirecord_batch_of_short_lines_is_answered_line_for_line(
    inference, loaded, in_transform_job
):
    # More records than a serverless response could carry: Batch Transform packs short lines.
    count = 1500
    records = [{"id": i, "inputs": f"short record number {i}"} for i in range(count)]
    body = jsonlines_body(records)
    assert len(body) < batch_transform.MIB
    lines = answer(inference, in_this_environment(loaded), body)
    assert len(lines) == count
    probe = [0, count // 2, count - 1]
    theirs = SentenceTransformer(str(REFERENCE_MODEL_DIR), device="cpu").encode(
        [records[i]["inputs"] for i in probe], normalize_embeddings=True
    )
    ours = np.asarray([lines[i]["embedding"] for i in probe])
    assert ((ours * theirs).sum(axis=1)).min() >= 0.9999


def test_in_a_transform_job_the_request_limit_is_the_jobs_max_payload(
    inference, loaded, in_transform_job, monkeypatch
):
    body = jsonlines_body(["x" * 1000] * 1100)  # about 1.1 MB: over 1 MiB, under 4 MB
    assert batch_transform.MIB < len(body) < 4_000_000
    with pytest.raises(InputError) as raised:
        inference.input_fn(body, JSONLINES)
    assert raised.value.status == 413 and str(batch_transform.MIB) in str(raised.value)
    monkeypatch.setenv(batch_transform.MAX_PAYLOAD_ENV, "2")
    assert len(inference.input_fn(body, JSONLINES).texts) == 1100
    assert inference.info(loaded)["max_request_bytes"] == 2 * batch_transform.MIB


def test_in_a_transform_job_the_response_bound_follows_the_model_servers_cap(
    loaded, in_transform_job, monkeypatch
):
    monkeypatch.setenv(batch_transform.RESPONSE_SIZE_ENV, "4000000")
    serverless_like = in_this_environment(loaded).max_texts_per_request(DIMENSIONS, "float")
    monkeypatch.setenv(batch_transform.RESPONSE_SIZE_ENV, "40000000")
    bigger = in_this_environment(loaded).max_texts_per_request(DIMENSIONS, "float")
    assert bigger >= 9 * serverless_like
    monkeypatch.delenv(batch_transform.RESPONSE_SIZE_ENV)
    default = in_this_environment(loaded).max_texts_per_request(DIMENSIONS, "float")
    assert default * (DIMENSIONS * 16) < batch_transform.DEFAULT_RESPONSE_BYTES


def test_outside_a_transform_job_the_limits_stay_the_serverless_4_mb(inference, loaded):
    assert inference.info(loaded)["max_request_bytes"] == 4_000_000
