"""onnxQuantization int8 end to end: the Hub fixture's ONNX repo → real loader → moto S3.

The int8 archive has a key of its own, carries the int8 graph made from the fused graph as the
one graph the container runs, is the same bytes twice, runs from the unpacked archive, and
records the quality check's figures. A model int8 cannot represent is refused, writing nothing.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from facts.onnx_quantization import MIN_MEAN_RECALL_AT_10, MIN_SENTENCE_COSINE
from facts.onnx_runtime import RuntimeWheel
from loader.handler import handler
from loader.quantization_check import QuantizationRefused
from loader.version import format_version
from tests.fixtures.aws import AwsEndpoint
from tests.fixtures.hub import HubServer, make_repo, reference_files
from tests.support.loader import (
    ONNX_MODEL_ID,
    hub_event,
    leftovers,
    member_bytes,
    onnx_repo,
    packaged_once,
    read_object,
    remove_bucket,
    run_unpacked,
)
from tests.support.models import min_cosine_to_reference

SENTENCES = ["A man is eating food.", "The girl is carrying a baby.", "word " * 400, "x"]
HEAVY_TAILED_ID = "test-org/heavy-tailed-minilm"


@dataclass(frozen=True)
class Int8Artifact:
    result: dict
    archive: bytes
    manifest: dict
    runtime: RuntimeWheel


def int8_event(bucket: str, runtime: RuntimeWheel, model_id: str = ONNX_MODEL_ID) -> dict:
    return hub_event(
        bucket,
        model_id=model_id,
        engine="onnx",
        container_python=runtime.python,
        onnx_quantization="int8",
    )


@pytest.fixture(scope="module")
def packaged(
    moto_server: AwsEndpoint,
    hub_server: HubServer,
    reference_onnx_export: Path,
    this_python_runtime: RuntimeWheel,
) -> Iterator[Int8Artifact]:
    """The ONNX repo packaged once for this module with int8 (bucket removed after)."""
    repo = onnx_repo(reference_onnx_export)
    event = partial(int8_event, runtime=this_python_runtime)
    with packaged_once(moto_server, hub_server, repo, event) as (result, archive, s3, bucket):
        key = result["model_data_url"].split("/", 3)[3].rsplit("/", 1)[0] + "/manifest.json"
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        yield Int8Artifact(result, archive, manifest, this_python_runtime)


def test_the_int8_archive_lives_in_a_key_folder_of_its_own(packaged):
    variant = f"onnx-int8-py{packaged.runtime.python.replace('.', '')}"
    assert packaged.result["model_data_url"].split("/")[-3] == variant
    expected = format_version(packaged.runtime, True, "int8")
    assert packaged.result["format_version"] == expected
    assert expected != format_version(packaged.runtime, True)


def test_the_archive_carries_the_fused_graph_quantized_as_its_one_graph(
    packaged, reference_onnx_o2: Path, reference_onnx_int8: Path
):
    graph = member_bytes(packaged.archive, "onnx/model.onnx")
    assert graph == reference_onnx_int8.read_bytes()
    assert len(graph) < reference_onnx_o2.stat().st_size / 3
    assert [name for name in packaged.result["files"] if name.endswith(".onnx")] == [
        "onnx/model.onnx"
    ]


def test_the_quality_report_is_returned_and_recorded_with_the_figures(packaged):
    report = packaged.result["quantization_report"]
    assert report["model"] == ONNX_MODEL_ID
    assert report["min_cosine"] >= MIN_SENTENCE_COSINE
    assert report["mean_recall_at_10"] >= MIN_MEAN_RECALL_AT_10
    assert (report["queries"], report["corpus"]) == (100, 3040)
    assert packaged.manifest["quantization_report"] == report


def test_inference_from_the_unpacked_int8_archive_stays_close_to_the_reference(
    packaged, tmp_path: Path
):
    report = run_unpacked(packaged.archive, tmp_path, SENTENCES)
    assert report["engine"] == "onnx"
    assert min_cosine_to_reference(report["response"]["embeddings"], SENTENCES) >= 0.95


def test_same_inputs_give_the_same_int8_archive_bytes(packaged, hub, reference_onnx_export, aws):
    hub.register(onnx_repo(reference_onnx_export))
    s3 = aws.client("s3")
    bucket = f"test-int8-again-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    try:
        again = handler(int8_event(bucket, packaged.runtime), None)
        assert again["sha256"] == packaged.result["sha256"]
        archive = read_object(s3, again["model_data_url"])
        assert hashlib.sha256(archive).hexdigest() == packaged.result["sha256"]
    finally:
        remove_bucket(s3, bucket)


def test_a_model_int8_cannot_represent_is_refused_and_nothing_is_written(
    hub, s3_bucket, aws, heavy_tailed_onnx_export: Path, this_python_runtime
):
    hub.register(onnx_repo(heavy_tailed_onnx_export, model_id=HEAVY_TAILED_ID))
    with pytest.raises(QuantizationRefused) as refused:
        handler(int8_event(s3_bucket, this_python_runtime, HEAVY_TAILED_ID), None)
    message = str(refused.value)
    assert refused.value.step == "check-quantization"
    assert HEAVY_TAILED_ID in message
    assert f"< {MIN_SENTENCE_COSINE}" in message and f"< {MIN_MEAN_RECALL_AT_10}" in message
    assert "onnxQuantization none" in message
    assert leftovers(aws.client("s3"), s3_bucket) == ([], [])


def test_a_repository_without_tokenizer_json_is_refused_naming_it(
    hub, s3_bucket, aws, reference_onnx_export: Path, this_python_runtime
):
    files = {**reference_files(), "onnx/model.onnx": reference_onnx_export}
    files.pop("tokenizer.json")
    hub.register(make_repo("test-org/no-fast-tokenizer", files))
    with pytest.raises(QuantizationRefused, match="needs the repository's tokenizer.json"):
        handler(int8_event(s3_bucket, this_python_runtime, "test-org/no-fast-tokenizer"), None)
    assert leftovers(aws.client("s3"), s3_bucket) == ([], [])
