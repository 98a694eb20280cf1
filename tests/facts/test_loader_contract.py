"""The loader contract: the program's event parses back into its request; results round-trip."""

from __future__ import annotations

import pytest

from facts.loader_contract import EVENT_FIELDS, RESULT_FIELDS, LoaderRequest, LoaderResult
from loader.event import parse_event

RESULT = LoaderResult(
    model_data_url="s3://bkt/models/org/name/" + "c" * 40 + "/model.tar.gz",
    revision="c" * 40,
    sha256="a" * 64,
    size_bytes=100,
    weights_bytes=80,
    files=("config.json", "code/inference.py"),
    format_version="2-abc",
)


@pytest.mark.parametrize(
    "request_",
    [
        LoaderRequest(model_id="org/name", bucket="bkt", hf_token="hf_x"),
        LoaderRequest(
            model_id="org/name",
            bucket="bkt",
            revision="c" * 40,
            engine="onnx",
            container_python="3.10",
            onnx_file="onnx/model_O2.onnx",
            onnx_fusion=False,
        ),
    ],
)
def test_the_event_the_program_sends_parses_into_the_same_request(request_: LoaderRequest) -> None:
    event = request_.to_event()
    assert tuple(event) == EVENT_FIELDS
    assert parse_event(event) == request_


def test_an_onnx_request_fuses_unless_told_not_to_and_a_torch_one_never() -> None:
    onnx = LoaderRequest(model_id="o/n", bucket="bkt", engine="onnx", container_python="3.10")
    assert onnx.onnx_fusion is True
    assert LoaderRequest(model_id="o/n", bucket="bkt").onnx_fusion is False
    assert LoaderRequest(model_id="o/n", bucket="bkt", onnx_fusion=True).onnx_fusion is False


def test_the_token_stays_out_of_the_requests_repr() -> None:
    assert "hf_secret" not in repr(LoaderRequest(model_id="o/n", bucket="b", hf_token="hf_secret"))


def test_a_result_round_trips_through_its_dict() -> None:
    recorded = RESULT.as_dict()
    assert tuple(recorded) == RESULT_FIELDS
    assert recorded["files"] == ["config.json", "code/inference.py"]
    assert LoaderResult.from_dict(recorded) == RESULT


def test_a_result_lacking_a_field_is_refused() -> None:
    recorded = RESULT.as_dict()
    del recorded["weights_bytes"]
    with pytest.raises(KeyError, match="weights_bytes"):
        LoaderResult.from_dict(recorded)
