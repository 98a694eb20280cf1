"""The local endpoint over real HTTP on 127.0.0.1: SageMaker's container contract.

The main fixture serves the artifact the loader itself builds (real huggingface_hub → Hub fixture,
real boto3 → moto S3), fetched from its s3:// URL the way the DLC fetches ModelDataUrl.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from embedding_client.serve import (
    PACKAGED_SCRIPT,
    InferenceHandler,
    LocalEndpoint,
    import_inference_script,
)
from embedding_client.serve_artifact import ArtifactError, prepare_model_dir
from facts.embedding_api import INTERNAL_ERROR_MESSAGE, InputError
from facts.serverless import MAX_PAYLOAD_BYTES
from tests.fixtures.artifacts import PackagedArtifact
from tests.fixtures.aws import AwsEndpoint, point_boto3_at
from tests.fixtures.onnx_export import cached_runtime
from tests.support.models import (
    DIMENSIONS,
    REFERENCE_MODEL_DIR,
    REPO_ROOT,
    build_artifact,
    copy_model,
    with_onnx,
    write_container_code,
)

SENTENCES = ["A man is eating food.", "A man is eating a piece of bread.", "word " * 400]


def request(url: str, body: bytes | None = None, headers: dict | None = None, method=None):
    """(status, headers, body) of one HTTP exchange, error statuses included."""
    sent = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(sent, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def invoke(url: str, document, content_type="application/json", accept="application/json"):
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    headers = {"Content-Type": content_type, "Accept": accept}
    return request(f"{url}/invocations", body, headers, method="POST")


@pytest.fixture(scope="module")
def loader_artifact_url(reference_artifact: PackagedArtifact) -> str:
    """The reference model as the loader packaged it into moto S3: its s3:// URL."""
    return reference_artifact.result["model_data_url"]


@pytest.fixture(scope="module")
def served(
    loader_artifact_url: str, moto_server: AwsEndpoint, tmp_path_factory
) -> Iterator[LocalEndpoint]:
    """The loader's artifact served from its s3:// URL on a free port."""
    work_dir = tmp_path_factory.mktemp("served")
    with pytest.MonkeyPatch.context() as patch:
        point_boto3_at(moto_server, patch)
        endpoint = LocalEndpoint(
            lambda: InferenceHandler.load(prepare_model_dir(loader_artifact_url, work_dir)),
            port=0,
        )
        endpoint.start()
        try:
            assert endpoint.wait_until_loaded(timeout=300), endpoint.state.load_error
        except BaseException:
            endpoint.stop()
            raise
    yield endpoint
    endpoint.stop()


@pytest.fixture(scope="module")
def local_archive(tmp_path_factory) -> Path:
    """A model.tar.gz on disk with the model at the root and code/inference.py beside it."""
    root = tmp_path_factory.mktemp("archive")
    folder = copy_model(root / "model", with_script=True)
    return build_artifact(folder, root / "model.tar.gz")


def test_ping_answers_200_once_the_model_has_loaded(served):
    status, _, body = request(f"{served.url}/ping")
    assert status == 200, body


def test_invocations_return_sentence_transformers_vectors_for_the_loaders_artifact(served):
    status, headers, body = invoke(served.url, {"inputs": SENTENCES})
    assert status == 200, body
    assert headers["Content-Type"] == "application/json"
    answer = json.loads(body)
    assert answer["dimensions"] == DIMENSIONS
    ours = np.asarray(answer["embeddings"])
    theirs = SentenceTransformer(str(REFERENCE_MODEL_DIR), device="cpu").encode(
        SENTENCES, normalize_embeddings=True
    )
    cosine = (ours * theirs).sum(axis=1) / np.linalg.norm(ours, axis=1)
    assert cosine.min() >= 0.9999


def test_json_lines_are_answered_line_for_line_in_order_as_batch_transform_sends_them(served):
    records = [{"id": "x1", "inputs": SENTENCES[0]}, SENTENCES[1], {"inputs": SENTENCES[2]}]
    body = "".join(json.dumps(record) + "\n" for record in records).encode()
    status, headers, answer = invoke(
        served.url, body, content_type="application/jsonlines", accept="application/jsonlines"
    )
    assert status == 200, answer
    assert headers["Content-Type"] == "application/jsonlines"
    lines = [json.loads(line) for line in answer.decode().splitlines()]
    assert [list(line) for line in lines] == [["embedding"]] * 3
    ours = np.asarray([line["embedding"] for line in lines])
    theirs = SentenceTransformer(str(REFERENCE_MODEL_DIR), device="cpu").encode(
        SENTENCES, normalize_embeddings=True
    )
    assert ((ours * theirs).sum(axis=1)).min() >= 0.9999


@pytest.mark.parametrize("accept", [None, "*/*"])
def test_json_lines_without_a_wish_for_accept_are_answered_in_json_lines(served, accept):
    # A Batch Transform job created without Accept (the SageMaker Python SDK's default).
    headers = {"Content-Type": "application/jsonlines", **({"Accept": accept} if accept else {})}
    body = b'"a"\n{"inputs": "b"}\n'
    status, headers, answer = request(f"{served.url}/invocations", body, headers, method="POST")
    assert status == 200, answer
    # Labelled as the toolkit labels it: the Accept it assumed (tests/dlc/ checks the DLC does so).
    assert headers["Content-Type"] == "application/json"
    assert [len(json.loads(line)["embedding"]) for line in answer.splitlines()] == [DIMENSIONS] * 2


def test_bad_input_is_a_400_with_the_scripts_message(served):
    status, _, body = invoke(served.url, {"inputs": []})
    answer = json.loads(body)
    assert status == 400
    assert answer["code"] == 400 and "empty list" in answer["message"]


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000 + b"]" * 100_000, b'{"input": "a\\ud800b"}'],
    ids=["array-nested-100000-deep", "lone-surrogate-escape"],
)
def test_input_the_decoder_or_tokenizer_cannot_read_is_the_containers_400(served, body):
    script, model = served.state.handler._script, served.state.handler._model
    with pytest.raises(InputError) as raised:  # the container's hooks, as the toolkit calls them
        script.predict_fn(script.input_fn(body, "application/json"), model)
    status, _, answer = invoke(served.url, body)
    assert status == raised.value.status == 400
    assert json.loads(answer)["message"] == str(raised.value)


# As the DLC's toolkit answers (tests/dlc/ compares with the real model server): every error the
# hooks raise is a 400 carrying its message, and the answer is labelled with the Accept as sent.
def test_unsupported_content_type_is_a_400_naming_the_allowed_ones(served):
    status, _, body = invoke(served.url, b"a,b", content_type="text/csv")
    assert status == 400 and "application/json" in json.loads(body)["message"]


def test_unsupported_accept_is_a_400_naming_it(served):
    status, _, body = invoke(served.url, {"inputs": "a"}, accept="text/csv")
    assert status == 400 and "text/csv" in json.loads(body)["message"]


def test_accept_listing_json_among_others_is_answered_with_json_labelled_as_asked(served):
    status, headers, body = invoke(served.url, {"inputs": "a"}, accept="text/html, */*;q=0.8")
    assert status == 200 and headers["Content-Type"] == "text/html, */*;q=0.8"
    assert len(json.loads(body)["embeddings"]) == 1


def test_accept_any_is_answered_with_json(served):
    status, headers, body = invoke(served.url, {"inputs": "a"}, accept="*/*")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert len(json.loads(body)["embeddings"]) == 1


def test_body_over_4_mb_is_a_413_before_reaching_the_script(served):
    status, _, body = invoke(served.url, b" " * (MAX_PAYLOAD_BYTES + 1))
    assert status == 413 and "4 MB" in json.loads(body)["message"]


def test_unknown_path_is_a_404(served):
    assert request(f"{served.url}/health")[0] == 404
    assert request(f"{served.url}/predict", b"{}", method="POST")[0] == 404


def test_ping_is_503_and_invocations_wait_while_the_model_loads():
    release = threading.Event()

    def slow_load() -> InferenceHandler:
        release.wait(timeout=30)
        raise RuntimeError("weights file is truncated")

    endpoint = LocalEndpoint(slow_load, port=0)
    endpoint.start()
    try:
        assert request(f"{endpoint.url}/ping")[0] == 503
        assert invoke(endpoint.url, {"inputs": "a"})[0] == 503
    finally:
        release.set()
        endpoint.wait_until_loaded(timeout=30)
        endpoint.stop()


def test_failed_load_makes_ping_500_with_the_reason():
    def failing_load() -> InferenceHandler:
        raise RuntimeError("weights file is truncated")

    endpoint = LocalEndpoint(failing_load, port=0)
    endpoint.start()
    try:
        assert endpoint.wait_until_loaded(timeout=30) is False
        status, _, body = request(f"{endpoint.url}/ping")
        assert status == 500 and "weights file is truncated" in json.loads(body)["message"]
    finally:
        endpoint.stop()


def test_unexpected_script_exception_is_a_400_and_the_endpoint_keeps_serving(served, monkeypatch):
    handler_ = served.state.handler

    def broken(data, model):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(handler_._script, "predict_fn", broken)
    status, _, body = invoke(served.url, {"inputs": "a"})
    assert status == 400 and json.loads(body)["message"] == INTERNAL_ERROR_MESSAGE
    monkeypatch.undo()
    assert invoke(served.url, {"inputs": "a"})[0] == 200


def test_a_failure_inside_the_containers_hooks_is_a_400_with_the_fixed_message(served, monkeypatch):
    def fails(*args, **kwargs):
        raise RuntimeError("out of memory in /opt/ml/model")

    monkeypatch.setattr(type(served.state.handler._model), "embed", fails)
    status, _, body = invoke(served.url, {"inputs": "a"})
    assert status == 400 and json.loads(body)["message"] == INTERNAL_ERROR_MESSAGE  # as the DLC


def test_local_tar_gz_is_extracted_with_its_inference_script(local_archive: Path, tmp_path: Path):
    model_dir = prepare_model_dir(str(local_archive), tmp_path)
    assert (model_dir / "code" / "inference.py").is_file()
    assert (model_dir / "config.json").is_file()
    assert local_archive.is_file()  # the user's file is left alone


def test_a_tar_gz_is_extracted_into_a_work_folder_not_yet_made(local_archive, tmp_path: Path):
    """scripts/dlc_server.py (`make serve DLC=1 ARTIFACT=model.tar.gz`) passes such a folder."""
    model_dir = prepare_model_dir(str(local_archive), tmp_path / "scratch" / "work")
    assert (model_dir / "code" / "inference.py").is_file()


def test_folder_is_served_in_place(tmp_path: Path):
    assert prepare_model_dir(str(REFERENCE_MODEL_DIR), tmp_path) == REFERENCE_MODEL_DIR.resolve()


def test_missing_artifact_names_what_is_accepted(tmp_path: Path):
    with pytest.raises(ArtifactError, match="s3:// URL, a model.tar.gz file or a model folder"):
        prepare_model_dir(str(tmp_path / "nope.tar.gz"), tmp_path)


def test_missing_s3_object_is_an_artifact_error(aws, s3_bucket, tmp_path: Path):
    with pytest.raises(ArtifactError, match=f"s3://{s3_bucket}/models/none/model.tar.gz"):
        prepare_model_dir(f"s3://{s3_bucket}/models/none/model.tar.gz", tmp_path)


def test_archive_member_escaping_the_model_dir_is_refused(tmp_path: Path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = b"owned"
        member = tarfile.TarInfo("../escaped.txt")
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(ArtifactError):
        prepare_model_dir(str(archive), work)
    assert not (tmp_path / "escaped.txt").exists()


def test_folder_without_code_uses_the_packaged_inference_script(tmp_path: Path):
    folder = copy_model(tmp_path / "model")
    assert import_inference_script(folder).__file__ == str(PACKAGED_SCRIPT)


def test_artifacts_own_inference_script_is_the_one_imported(tmp_path: Path):
    folder = copy_model(tmp_path / "model", with_script=True)
    assert import_inference_script(folder).__file__ == str(folder / "code" / "inference.py")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_command_serves_a_tar_gz_and_cleans_up_on_sigterm(local_archive: Path, tmp_path):
    port = _free_port()
    env = dict(os.environ, TMPDIR=str(tmp_path), EMBEDDING_NUM_THREADS="1")
    command = [sys.executable, "-m", "embedding_client", "serve", str(local_archive)]
    command += ["--port", str(port), "--model-id", "org/local-name"]
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if request(f"{url}/ping")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        status, _, body = invoke(url, {"inputs": ["hello", "world"]})
        assert status == 200, body
        assert json.loads(body)["model"] == "org/local-name"
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0].decode()
    assert process.returncode == 0, output
    assert list(tmp_path.glob("embedding-endpoint-*")) == []


def test_serve_command_exits_1_when_the_artifact_cannot_be_loaded(tmp_path: Path):
    command = [sys.executable, "-m", "embedding_client", "serve", str(tmp_path / "missing")]
    command += ["--port", str(_free_port())]
    completed = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 1
    assert "missing" in completed.stderr


def test_an_onnx_archive_for_another_python_is_served_with_the_local_runtime(
    tmp_path: Path, reference_onnx_export: Path
):
    # Built for the py39 image: its code/onnxruntime cannot load here; this venv's copy serves.
    other = "3.9" if sys.version_info[:2] != (3, 9) else "3.10"
    folder = with_onnx(copy_model(tmp_path / "model"), reference_onnx_export)
    write_container_code(folder, cached_runtime(other))
    handler = InferenceHandler.load(prepare_model_dir(str(folder), tmp_path / "work"))
    answer = handler.invoke(b'{"inputs": ["A man is eating food."]}', "application/json", None)
    assert answer.status == 200, answer.body
    assert len(json.loads(answer.body)["embeddings"][0]) == DIMENSIONS
    info = handler.invoke(b'{"info": true}', "application/json", None)
    assert json.loads(info.body)["engine"] == "onnx"
