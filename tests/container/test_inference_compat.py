"""code/inference.py on the oldest DLC stack we deploy: Python 3.9, torch 1.13, transformers 4.26.

Opt-in, because it needs a second interpreter with those versions:

    python3.9 -m venv /tmp/py39 && /tmp/py39/bin/pip install torch==1.13.1 transformers==4.26.0 \
        safetensors==0.3.1 "numpy<2"
    INFERENCE_COMPAT_PYTHON=/tmp/py39/bin/python .venv/bin/pytest \
        tests/container/test_inference_compat.py

That interpreter runs the script through the toolkit hooks; this process compares its vectors
with `SentenceTransformer.encode` on the same folder (cosine ≥ 0.9999 per sentence). The ONNX
engine runs there on the cp39 ONNX Runtime the py39 image's archives vendor in `code/` (`make
wheels` caches it); that interpreter has no onnxruntime of its own. When that
interpreter also has the DLC's serving code (`pip install --no-deps
sagemaker-huggingface-inference-toolkit sagemaker-inference multi-model-server psutil scipy six
pillow`), the script is also driven through `HuggingFaceHandlerService.handle`, as in the DLC.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from facts.embedding_api import InputError
from tests.container.test_inference_custom_code import nomic_style_folder
from tests.fixtures.onnx_export import cached_runtime
from tests.support.models import (
    ALL_MODES,
    REFERENCE_MODEL_DIR,
    copy_model,
    import_inference,
    with_dense,
    with_onnx,
    with_pooling,
    write_container_code,
)

COMPAT_PYTHON = os.environ.get("INFERENCE_COMPAT_PYTHON")
SENTENCES = ["A man is eating food.", "The girl is carrying a baby.", "word " * 400, "x"]

# As the DLC's toolkit does: `code/` first on sys.path, then `import inference`.
_CHILD = """
import importlib.util, json, os, sys
sys.path.insert(0, os.path.dirname(sys.argv[1]))
spec = importlib.util.spec_from_file_location("inference", sys.argv[1])
inference = importlib.util.module_from_spec(spec)
sys.modules["inference"] = inference
spec.loader.exec_module(inference)
model = inference.model_fn(sys.argv[2])
request = inference.input_fn(json.dumps({"inputs": json.loads(sys.argv[3])}), "application/json")
body = inference.output_fn(inference.predict_fn(request, model), "application/json")
import torch, transformers
runtime = sys.modules.get("onnxruntime")
print(json.dumps({"python": sys.version.split()[0], "torch": torch.__version__,
                  "transformers": transformers.__version__, "engine": model.engine.name,
                  "onnxruntime": runtime.__file__ if runtime else None,
                  "response": json.loads(body)}))
"""


needs_old_stack = pytest.mark.skipif(
    not COMPAT_PYTHON, reason="set INFERENCE_COMPAT_PYTHON to a Python 3.9 / torch 1.13 interpreter"
)


def old_stack_process(child: str, *args: str) -> subprocess.CompletedProcess:
    """`child` run under the old interpreter, its output captured."""
    return subprocess.run(
        [COMPAT_PYTHON, "-c", child, *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def run_in_old_stack(child: str, *args: str) -> dict:
    """Run `child` under the old interpreter; its last stdout line is a JSON report."""
    completed = old_stack_process(child, *args)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def cosines_to_sentence_transformers(report: dict, folder: Path) -> np.ndarray:
    """Per-sentence cosine between the reported vectors and SentenceTransformer's for `folder`."""
    ours = np.asarray(report["response"]["embeddings"])
    theirs = SentenceTransformer(str(folder), device="cpu").encode(
        SENTENCES, normalize_embeddings=True
    )
    assert ours.shape == theirs.shape
    return (ours * theirs).sum(axis=1) / (
        np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1)
    )


@needs_old_stack
@pytest.mark.parametrize("pooling", [None, ALL_MODES], ids=["reference", "all-pooling-modes"])
def test_oldest_dlc_stack_gives_sentence_transformers_vectors(tmp_path, pooling):
    folder = REFERENCE_MODEL_DIR if pooling is None else with_pooling(tmp_path / "model", pooling)
    script = write_container_code(tmp_path / "artifact") / "inference.py"
    report = run_in_old_stack(_CHILD, str(script), str(folder), json.dumps(SENTENCES))
    cosine = cosines_to_sentence_transformers(report, folder)
    assert cosine.min() >= 0.9999, (report["python"], report["torch"], cosine)


@needs_old_stack
def test_oldest_dlc_stack_runs_a_fused_o2_graph_chosen_with_onnx_file(tmp_path, reference_onnx_o2):
    """`onnxFile: onnx/model_O2.onnx` on the py39 image: its fused ops on ONNX Runtime 1.19.2."""
    folder = copy_model(tmp_path / "model")
    (folder / "onnx").mkdir()
    (folder / "onnx" / "model_O2.onnx").symlink_to(reference_onnx_o2)
    script = write_container_code(tmp_path / "artifact", cached_runtime("3.9")) / "inference.py"
    report = run_in_old_stack(_CHILD, str(script), str(folder), json.dumps(SENTENCES))
    assert report["engine"] == "onnx"
    cosine = cosines_to_sentence_transformers(report, folder)
    assert cosine.min() >= 0.9999, (report["python"], report["torch"], cosine)


@needs_old_stack
@pytest.mark.parametrize("pooling", [None, ALL_MODES], ids=["reference", "all-pooling-modes"])
def test_oldest_dlc_stack_runs_the_onnx_engine_on_the_vendored_runtime(
    tmp_path, pooling, reference_onnx_export
):
    folder = (
        copy_model(tmp_path / "model")
        if pooling is None
        else with_pooling(tmp_path / "model", pooling)
    )
    with_onnx(folder, reference_onnx_export)
    # The archive for the py39 image vendors onnxruntime's cp39 wheel; this interpreter has none.
    script = write_container_code(tmp_path / "artifact", cached_runtime("3.9")) / "inference.py"
    report = run_in_old_stack(_CHILD, str(script), str(folder), json.dumps(SENTENCES))
    assert report["engine"] == "onnx"
    assert report["onnxruntime"] == str(
        tmp_path / "artifact" / "code" / "onnxruntime" / "__init__.py"
    )
    cosine = cosines_to_sentence_transformers(report, folder)
    assert cosine.min() >= 0.9999, (report["python"], report["torch"], cosine)


@needs_old_stack
def test_oldest_dlc_stack_serves_a_model_of_custom_code_from_its_export(
    tmp_path, reference_onnx_export
):
    # transformers 4.26 must not be asked for the unknown model_type (nomic-style config).
    folder = nomic_style_folder(tmp_path / "model", reference_onnx_export)
    script = write_container_code(tmp_path / "artifact", cached_runtime("3.9")) / "inference.py"
    report = run_in_old_stack(_CHILD, str(script), str(folder), json.dumps(SENTENCES))
    assert report["engine"] == "onnx"
    cosine = cosines_to_sentence_transformers(report, REFERENCE_MODEL_DIR)
    assert cosine.min() >= 0.9999, (report["python"], report["torch"], cosine)


@needs_old_stack
def test_oldest_dlc_stack_refuses_a_tokenizer_that_needs_the_repositorys_code(
    tmp_path, reference_onnx_export
):
    # transformers 4.26 looks for the tokenizer in config.json's auto_map when
    # tokenizer_config.json names no tokenizer_class, and asks for trust_remote_code.
    folder = nomic_style_folder(tmp_path / "model", reference_onnx_export)
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    del tokenizer_config["tokenizer_class"]
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    script = write_container_code(tmp_path / "artifact", cached_runtime("3.9")) / "inference.py"
    completed = old_stack_process(_CHILD, str(script), str(folder), json.dumps(SENTENCES))
    assert completed.returncode != 0
    assert "ModelFilesError: the model's tokenizer cannot load without running" in (
        completed.stderr
    )


@needs_old_stack
def test_oldest_dlc_stack_runs_dense_modules_from_both_weight_formats(tmp_path):
    layers = [(384, 256, "Tanh", True), (256, 128, "Identity", False)]
    folder = with_dense(tmp_path / "model", layers)
    script = write_container_code(folder) / "inference.py"
    report = run_in_old_stack(_CHILD, str(script), str(folder), json.dumps(SENTENCES))
    assert report["response"]["dimensions"] == 128
    cosine = cosines_to_sentence_transformers(report, folder)
    assert cosine.min() >= 0.9999, (report["python"], report["torch"], cosine)


# The DLC's request path: MMS calls HuggingFaceHandlerService.handle(data, context).
_TOOLKIT_CHILD = """
import json, sys
try:
    from sagemaker_huggingface_inference_toolkit.handler_service import HuggingFaceHandlerService
except ImportError as error:
    print(json.dumps({"skip": str(error)}))
    sys.exit(0)
from mms.service import PredictionException

class RequestProcessor:
    def __init__(self, properties):
        self.properties = properties
    def get_request_properties(self):
        return self.properties

class Metrics:
    def add_time(self, *args, **kwargs):
        pass

class Context:
    def __init__(self, model_dir, properties):
        self.system_properties = {"model_dir": model_dir, "batch_size": 1, "gpu_id": 0}
        self.request_processor = [RequestProcessor(properties)]
        self.metrics = Metrics()
        self.response_content_type = None
    def set_response_content_type(self, index, value):
        self.response_content_type = value

service = HuggingFaceHandlerService()
headers = {"Content-Type": "application/json", "Accept": "*/*"}
ok_context = Context(sys.argv[1], headers)
body = json.dumps({"inputs": json.loads(sys.argv[2])}).encode()
answer = service.handle([{"body": body}], ok_context)[0]
try:
    service.handle([{"body": b'{"inputs": []}'}], Context(sys.argv[1], headers))
    refused = None
except PredictionException as error:
    refused = {"code": error.error_code, "message": error.message}
runtime = sys.modules.get("onnxruntime")
print(json.dumps({"response": json.loads(answer), "content_type": ok_context.response_content_type,
                  "refused": refused, "onnxruntime": runtime.__file__ if runtime else None}))
"""


@needs_old_stack
def test_dlc_handler_service_serves_the_script_and_turns_bad_input_into_a_400(tmp_path):
    folder = copy_model(tmp_path / "model", with_script=True)
    report = run_in_old_stack(_TOOLKIT_CHILD, str(folder), json.dumps(SENTENCES))
    if "skip" in report:
        pytest.skip(f"no inference toolkit in {COMPAT_PYTHON}: {report['skip']}")
    assert report["content_type"] == "application/json"
    cosine = cosines_to_sentence_transformers(report, folder)
    assert cosine.min() >= 0.9999
    assert report["refused"]["code"] == 400
    assert "empty list" in report["refused"]["message"]


# Batch Transform's request: several JSON lines in one body, answered line for line.
_TOOLKIT_JSONLINES_CHILD = (
    _TOOLKIT_CHILD.split("service = HuggingFaceHandlerService()")[0]
    + """
service = HuggingFaceHandlerService()
headers = {"Content-Type": "application/jsonlines", "Accept": "application/jsonlines"}
context = Context(sys.argv[1], headers)
records = [{"id": i, "inputs": text} for i, text in enumerate(json.loads(sys.argv[2]))]
body = "".join(json.dumps(record) + "\\n" for record in records).encode()
answer = service.handle([{"body": bytearray(body)}], context)[0]
lines = [json.loads(line)["embedding"] for line in answer.splitlines()]
report = {"response": {"embeddings": lines}, "content_type": context.response_content_type}
print(json.dumps(report))
"""
)


@needs_old_stack
def test_dlc_handler_service_answers_batch_transform_json_lines_line_for_line(tmp_path):
    folder = copy_model(tmp_path / "model", with_script=True)
    report = run_in_old_stack(_TOOLKIT_JSONLINES_CHILD, str(folder), json.dumps(SENTENCES))
    if "skip" in report:
        pytest.skip(f"no inference toolkit in {COMPAT_PYTHON}: {report['skip']}")
    assert report["content_type"] == "application/jsonlines"
    cosine = cosines_to_sentence_transformers(report, folder)
    assert cosine.min() >= 0.9999


@needs_old_stack
def test_dlc_handler_service_serves_the_onnx_engine_from_code(tmp_path, reference_onnx_export):
    folder = with_onnx(copy_model(tmp_path / "model"), reference_onnx_export)
    write_container_code(folder, cached_runtime("3.9"))
    report = run_in_old_stack(_TOOLKIT_CHILD, str(folder), json.dumps(SENTENCES))
    if "skip" in report:
        pytest.skip(f"no inference toolkit in {COMPAT_PYTHON}: {report['skip']}")
    assert report["onnxruntime"] == str(folder / "code" / "onnxruntime" / "__init__.py")
    cosine = cosines_to_sentence_transformers(report, folder)
    assert cosine.min() >= 0.9999
    assert report["refused"]["code"] == 400


# The same records with no Accept, as a transform job created without one sends them.
_TOOLKIT_JSONLINES_NO_ACCEPT_CHILD = _TOOLKIT_JSONLINES_CHILD.replace(
    '"Accept": "application/jsonlines"', '"Accept": None'
)


@needs_old_stack
def test_dlc_handler_service_answers_json_lines_in_json_lines_without_an_accept(tmp_path):
    folder = copy_model(tmp_path / "model", with_script=True)
    report = run_in_old_stack(
        _TOOLKIT_JSONLINES_NO_ACCEPT_CHILD, str(folder), json.dumps(SENTENCES)
    )
    if "skip" in report:
        pytest.skip(f"no inference toolkit in {COMPAT_PYTHON}: {report['skip']}")
    # handle() labels the answer with the accept it assumed; the body is still JSON lines.
    assert report["content_type"] == "application/json"
    cosine = cosines_to_sentence_transformers(report, folder)
    assert cosine.min() >= 0.9999


# One body (a file named in argv) through handle(): the model server's exception, as raised.
_TOOLKIT_REFUSAL_CHILD = (
    _TOOLKIT_CHILD.split("service = HuggingFaceHandlerService()")[0]
    + """
service = HuggingFaceHandlerService()
context = Context(sys.argv[1], {"Content-Type": "application/json"})
try:
    service.handle([{"body": open(sys.argv[2], "rb").read()}], context)
    print(json.dumps({"refused": None}))
except PredictionException as error:
    print(json.dumps({"refused": {"code": error.error_code, "message": error.message}}))
"""
)


@needs_old_stack
@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000 + b"]" * 100_000, b'{"input": "a\\ud800b"}'],
    ids=["array-nested-100000-deep", "lone-surrogate-escape"],
)
def test_dlc_handler_service_refuses_unreadable_input_with_the_scripts_own_400(tmp_path, body):
    folder = copy_model(tmp_path / "model", with_script=True)
    (tmp_path / "body").write_bytes(body)
    report = run_in_old_stack(_TOOLKIT_REFUSAL_CHILD, str(folder), str(tmp_path / "body"))
    if "skip" in report:
        pytest.skip(f"no inference toolkit in {COMPAT_PYTHON}: {report['skip']}")
    inference = import_inference()  # the same hooks here, as the local endpoint runs them
    with pytest.raises(InputError) as raised:
        inference.predict_fn(inference.input_fn(body, "application/json"), None)
    assert report["refused"] == {"code": 400, "message": str(raised.value)}
