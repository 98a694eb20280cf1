"""code/inference.py on the oldest DLC stack we deploy: Python 3.9, torch 1.13, transformers 4.26.

Opt-in, because it needs a second interpreter with those versions:

    python3.9 -m venv /tmp/py39 && /tmp/py39/bin/pip install torch==1.13.1 transformers==4.26.0 \
        safetensors==0.3.1 "numpy<2"
    INFERENCE_COMPAT_PYTHON=/tmp/py39/bin/python .venv/bin/pytest tests/test_inference_compat.py

That interpreter runs the script through the toolkit hooks; this process compares its vectors
with `SentenceTransformer.encode` on the same folder (cosine ≥ 0.9999 per sentence).
"""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from tests.inference_support import INFERENCE_SCRIPT, REFERENCE_MODEL_DIR, with_pooling

COMPAT_PYTHON = os.environ.get("INFERENCE_COMPAT_PYTHON")
SENTENCES = ["A man is eating food.", "The girl is carrying a baby.", "word " * 400, "x"]

_CHILD = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("inference", sys.argv[1])
inference = importlib.util.module_from_spec(spec)
sys.modules["inference"] = inference
spec.loader.exec_module(inference)
model = inference.model_fn(sys.argv[2])
request = inference.input_fn(json.dumps({"inputs": json.loads(sys.argv[3])}), "application/json")
body = inference.output_fn(inference.predict_fn(request, model), "application/json")
import torch, transformers
print(json.dumps({"python": sys.version.split()[0], "torch": torch.__version__,
                  "transformers": transformers.__version__, "response": json.loads(body)}))
"""


ALL_MODES = {
    "word_embedding_dimension": 384,
    "pooling_mode_cls_token": True,
    "pooling_mode_max_tokens": True,
    "pooling_mode_mean_tokens": True,
    "pooling_mode_mean_sqrt_len_tokens": True,
    "pooling_mode_weightedmean_tokens": True,
    "pooling_mode_lasttoken": True,
}


@pytest.mark.skipif(
    not COMPAT_PYTHON, reason="set INFERENCE_COMPAT_PYTHON to a Python 3.9 / torch 1.13 interpreter"
)
@pytest.mark.parametrize("pooling", [None, ALL_MODES], ids=["reference", "all-pooling-modes"])
def test_oldest_dlc_stack_gives_sentence_transformers_vectors(tmp_path, pooling):
    folder = REFERENCE_MODEL_DIR if pooling is None else with_pooling(tmp_path / "model", pooling)
    completed = subprocess.run(
        [COMPAT_PYTHON, "-c", _CHILD, str(INFERENCE_SCRIPT), str(folder), json.dumps(SENTENCES)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    ours = np.asarray(report["response"]["embeddings"])
    theirs = SentenceTransformer(str(folder), device="cpu").encode(
        SENTENCES, normalize_embeddings=True
    )
    assert ours.shape == theirs.shape
    cosine = (ours * theirs).sum(axis=1) / (
        np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1)
    )
    assert cosine.min() >= 0.9999, (report["python"], report["torch"], cosine)
