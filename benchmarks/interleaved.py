"""Every engine and peer loaded in one process, their passes alternated (bench_inference.py).

This project's engines run through code/inference.py (input_fn → predict_fn → output_fn, JSON in
and out): torch, ONNX on the fused fp32 graph, ONNX on the int8 graph that
loader/graph_quantization.quantize_graph makes from it. Beside them: sentence-transformers
(`encode`, the reference every ratio is taken against), and the peers (benchmarks/peers.py):
fastembed on the same fp32 and int8 graphs (`TextEmbedding.add_custom_model` with
`specific_model_path`). sentence-transformers' ONNX backend on the fp32 graph needs an older
transformers than the venv's, so it runs in a child of its own, alternated with
sentence-transformers there: its ratio is taken against that reference (`own_reference`). A peer
that does not import or load is reported as missing, with the reason, and the rest go on. The
children also return every engine's vectors of the check texts, for the quality columns.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.peers import peer_dir

INTERLEAVED_PASSES = int(os.environ.get("BENCH_INFERENCE_PASSES", "7"))
SENTENCES_PER_PASS = int(os.environ.get("BENCH_INFERENCE_SENTENCES", "128"))
# The texts of the interleaved throughput passes: (shortest characters, length spread, times the
# word list repeats, texts per pass). Short sentences (8-31 tokens), as a search query or a title;
# passages (about 40-240 tokens), as the chunks of a document a retrieval index holds.
WORKLOADS = {
    "sentences": (40, 160, 1, SENTENCES_PER_PASS),
    "passages": (200, 1000, 20, int(os.environ.get("BENCH_INFERENCE_PASSAGES", "64"))),
}
REFERENCE = "sentence-transformers"
# Which rows are int8 (quality against the fp32 graph), and which are this project's.
INT8_ROWS = ("onnx int8", "fastembed int8")
OURS = ("torch", "onnx", "onnx int8")

# argv: fp32 model dir, int8 model dir, fastembed's dir, threads, passes, the pass's texts
# (JSON), check texts (JSON).
_CHILD = r"""
import json, os, re, sys, time
model_dir, int8_dir, peers_dir = sys.argv[1:4]
threads, repeats = int(sys.argv[4]), int(sys.argv[5])
texts, check = json.loads(sys.argv[6]), json.loads(sys.argv[7])
count = len(texts)
sys.path.append(peers_dir)  # after the venv's own packages: the venv wins every clash
import torch
torch.set_num_threads(threads)
from sentence_transformers import SentenceTransformer
sys.path.insert(0, os.path.join(model_dir, "code"))
import inference
def through_inference(model):
    def encode(texts):
        body = json.dumps({"inputs": texts})
        request = inference.input_fn(body, "application/json")
        return inference.output_fn(inference.predict_fn(request, model), "application/json")
    return encode, lambda texts: json.loads(encode(texts))["embeddings"]
def as_lists(encode):
    return lambda texts: [list(map(float, vector)) for vector in encode(texts)]
encoders, vectors, versions, missing = {}, {}, {}, {}
# torch's pool as each engine's own process has it: model_fn sizes it (one thread beside ONNX
# Runtime), and it is set again before each engine's passes.
torch_threads = {}
for engine, folder in (("torch", model_dir), ("onnx", model_dir), ("onnx int8", int8_dir)):
    os.environ["EMBEDDING_ENGINE"] = engine.split()[0]
    model = inference.model_fn(folder)
    encoders[engine], vectors[engine] = through_inference(model)
    torch_threads[engine] = torch.get_num_threads()
dimensions = model.dimensions
torch.set_num_threads(threads)
reference = SentenceTransformer(model_dir, device="cpu")
encoders["sentence-transformers"] = lambda texts: reference.encode(
    texts, batch_size=32, normalize_embeddings=True
)
try:
    import fastembed
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType
    for name, folder in (("fastembed", model_dir), ("fastembed int8", int8_dir)):
        TextEmbedding.add_custom_model(
            model=f"bench/{name}", pooling=PoolingType.MEAN, normalization=True,
            sources=ModelSource(hf=f"bench/{name}"), dim=dimensions, model_file="onnx/model.onnx",
        )
        embedder = TextEmbedding(f"bench/{name}", specific_model_path=folder, threads=threads)
        encoders[name] = (lambda e: lambda texts: list(e.embed(texts, batch_size=32)))(embedder)
    versions["fastembed"] = fastembed.__version__
except Exception as error:  # not installed, or does not import beside this venv
    missing["fastembed"] = re.sub(r" \(/[^)]*\)", "", f"{type(error).__name__}: {error}")[:300]
"""


# Both children end alike: each engine's vectors, then its passes, alternated.
_PASSES = r"""
for engine, encode in encoders.items():
    vectors.setdefault(engine, as_lists(encode))
passes = {engine: {} for engine in encoders}
for batch in (1, 32):
    for engine, encode in encoders.items():
        torch.set_num_threads(torch_threads.get(engine, threads))
        encode(texts[:batch])  # warm-up
    for engine in encoders:
        passes[engine][str(batch)] = []
    for _ in range(repeats):
        for engine, encode in encoders.items():
            torch.set_num_threads(torch_threads.get(engine, threads))
            t0 = time.perf_counter()
            for start in range(0, count, batch):
                encode(texts[start:start + batch])
            passes[engine][str(batch)].append(count / (time.perf_counter() - t0))
print(json.dumps({
    "passes": passes,
    "vectors": {engine: vector(check) for engine, vector in vectors.items()},
    "versions": versions,
    "missing": missing,
}))
"""
_CHILD += _PASSES

# argv: as _CHILD's, the peer's dir in place of fastembed's.
_ST_ONNX_CHILD = r"""
import json, os, re, sys, time
model_dir, _, peer_dir = sys.argv[1:4]
threads, repeats = int(sys.argv[4]), int(sys.argv[5])
texts, check = json.loads(sys.argv[6]), json.loads(sys.argv[7])
count = len(texts)
sys.path.insert(0, peer_dir)  # first: its transformers, not the venv's
import torch
torch.set_num_threads(threads)
from sentence_transformers import SentenceTransformer
reference = SentenceTransformer(model_dir, device="cpu")
encoders = {"sentence-transformers": lambda texts: reference.encode(
    texts, batch_size=32, normalize_embeddings=True
)}
vectors, versions, missing, torch_threads = {}, {}, {}, {}
try:
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    onnx_reference = SentenceTransformer(
        model_dir, device="cpu", backend="onnx",
        model_kwargs={"file_name": "onnx/model.onnx", "provider": "CPUExecutionProvider",
                      "session_options": options},
    )
    encoders["sentence-transformers onnx"] = lambda texts: onnx_reference.encode(
        texts, batch_size=32, normalize_embeddings=True
    )
    import optimum.version, transformers
    versions["optimum"] = optimum.version.__version__
    versions["transformers (beside optimum)"] = transformers.__version__
except Exception as error:
    reason = re.sub(r" \(/[^)]*\)", "", f"{type(error).__name__}: {error}")  # no local paths
    missing["sentence-transformers onnx"] = reason[:300]
if len(encoders) == 1:  # no peer: no passes of the reference alone
    print(json.dumps({"passes": {}, "vectors": {}, "versions": versions, "missing": missing}))
    sys.exit(0)
def as_lists(encode):
    return lambda texts: [list(map(float, vector)) for vector in encode(texts)]
"""
_ST_ONNX_CHILD += _PASSES
ST_ONNX = "sentence-transformers onnx"


def int8_model_dir(model_dir: Path, work: Path) -> Path:
    """`model_dir` with its fp32 graph replaced by the int8 graph the loader's quantizer makes."""
    from loader.graph_quantization import quantize_graph

    int8_dir = work / "model-int8"
    shutil.copytree(model_dir, int8_dir, ignore=shutil.ignore_patterns("*.onnx"))
    quantize_graph(model_dir / "onnx" / "model.onnx", int8_dir / "onnx" / "model.onnx")
    return int8_dir


def interleaved(
    model_dir: Path, int8_dir: Path, threads: int, workload: str, check_texts: list[str]
) -> dict:
    """Each engine's and peer's passes on `workload`, alternated; their vectors.

    The ST ONNX peer's passes and vectors join the main child's, and the passes of the
    sentence-transformers it alternated with go under `own_reference`, for its ratios.
    """
    tail = [str(threads), str(INTERLEAVED_PASSES), json.dumps(workload_texts(workload))]
    tail.append(json.dumps(check_texts))
    fastembed = str(peer_dir("fastembed"))
    main = run_child(_CHILD, [str(model_dir), str(int8_dir), fastembed, *tail], threads, workload)
    peer = str(peer_dir("sentence-transformers-onnx"))
    apart = run_child(_ST_ONNX_CHILD, [str(model_dir), "", peer, *tail], threads, workload)
    main["versions"].update(apart["versions"])
    main["missing"].update(apart["missing"])
    main["own_reference"] = {}
    if ST_ONNX in apart["passes"]:
        main["passes"][ST_ONNX] = apart["passes"][ST_ONNX]
        main["vectors"][ST_ONNX] = apart["vectors"][ST_ONNX]
        main["own_reference"][ST_ONNX] = apart["passes"][REFERENCE]
    return main


def workload_texts(workload: str) -> list[str]:
    """The texts of one pass of `workload`: rotations of one word list, of spread lengths."""
    shortest, spread, repeat, count = WORKLOADS[workload]
    words = (
        "the quick brown fox jumps over a lazy dog while an embedding model turns each "
        "sentence into one vector that search and clustering can compare"
    ).split()
    texts = []
    for index in range(count):
        turn = (index * 7) % len(words)
        rotated = " ".join((words[turn:] + words[:turn]) * repeat)
        texts.append(rotated[: shortest + (index * 37) % spread])
    return texts


def run_child(script: str, arguments: list[str], threads: int, what: str) -> dict:
    """Run `script` in a fresh Python with the container's thread setting; its last JSON line."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "EMBEDDING_NUM_THREADS": str(threads)}
    env.pop("PYTHONPATH", None)
    completed = subprocess.run(
        [sys.executable, "-c", script, *arguments],
        cwd=tempfile.gettempdir(),  # not the project: nothing shadows the archive's code/
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{what} ×{threads} failed:\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])
