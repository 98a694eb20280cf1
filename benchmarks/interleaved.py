"""Every engine and peer in a process of its own, their passes alternated (bench_inference.py).

This project's engines run through code/inference.py (input_fn → predict_fn → output_fn, JSON in
and out): torch, ONNX on the fused fp32 graph, ONNX on the int8 graph that
loader/graph_quantization.quantize_graph makes from it. Beside them: sentence-transformers
(`encode`, the reference every ratio is taken against), and the peers (benchmarks/peers.py):
fastembed on the same fp32 and int8 graphs (`TextEmbedding.add_custom_model` with
`specific_model_path`), sentence-transformers' ONNX backend on the fp32 graph (with the
transformers optimum-onnx needs, first on its process's path).

Each engine loads in a worker process of its own, as a deployment runs it, and the parent
alternates their passes piece by piece (alternated_pass): each pass is cut into PIECES_PER_PASS
pieces, and the engines take each piece in turn, SETTLE_SECONDS apart. WORKER_SETS fresh
sets of workers take turns, since one process's session may run 10-15 % faster or slower than
another's on the same graph and the same feeds. Engines loaded together in one process slowed
each other by 3-10 % depending on their order: the last pass's ONNX Runtime workers spin for
about 30-40 ms after it on the cores the next engine needs, and sessions loaded beside torch models
ran slower than alone. A peer that does not import or load is reported as missing, with the
reason, and the rest go on. Each worker also returns its vectors of the check texts, for the
quality columns.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.peers import peer_dir

# Fresh worker processes per engine, and passes each: INTERLEAVED_PASSES per engine in all.
WORKER_SETS = int(os.environ.get("BENCH_INFERENCE_WORKER_SETS", "5"))
PASSES_PER_SET = int(os.environ.get("BENCH_INFERENCE_PASSES", "3"))
INTERLEAVED_PASSES = WORKER_SETS * PASSES_PER_SET
SENTENCES_PER_PASS = int(os.environ.get("BENCH_INFERENCE_SENTENCES", "128"))
# The texts of the interleaved throughput passes: (shortest characters, length spread, times the
# word list repeats, texts per pass). Short sentences (8-31 tokens), as a search query or a title;
# passages (about 40-240 tokens), as the chunks of a document a retrieval index holds.
WORKLOADS = {
    "sentences": (40, 160, 1, SENTENCES_PER_PASS),
    "passages": (200, 1000, 20, int(os.environ.get("BENCH_INFERENCE_PASSAGES", "64"))),
}
BATCH_SIZES = (1, 32)
REFERENCE = "sentence-transformers"
ST_ONNX = "sentence-transformers onnx"
OURS = ("torch", "onnx", "onnx int8")
ENGINES = (*OURS, REFERENCE, "fastembed", "fastembed int8", ST_ONNX)
# Which rows are int8 (quality against the fp32 graph).
INT8_ROWS = ("onnx int8", "fastembed int8")
# The folder of benchmarks/peers.py each peer imports from.
PEER_OF = {
    "fastembed": "fastembed",
    "fastembed int8": "fastembed",
    ST_ONNX: "sentence-transformers-onnx",
}
# Seconds between two pieces: the last engine's thread pools stop spinning (ONNX Runtime's for
# about 40 ms of one core after a run).
SETTLE_SECONDS = 0.06
# The pieces a pass is cut into, taken by the engines in turn (alternated_pass); at most one
# request each.
PIECES_PER_PASS = int(os.environ.get("BENCH_INFERENCE_PIECES", "16"))

# One engine, then one piece per command line ({"texts", "batch"}) on stdin, answered on stdout.
# argv: engine, fp32 model dir, int8 model dir, threads, the peer's folder ("" for none),
# dimensions, check texts (JSON).
_WORKER = r"""
import json, os, re, sys, time
engine, model_dir, int8_dir, peer = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[5]
threads, dimensions, check = int(sys.argv[4]), int(sys.argv[6]), json.loads(sys.argv[7])
folder = int8_dir if engine.endswith("int8") else model_dir
def answer(document):
    sys.stdout.write(json.dumps(document) + "\n")
    sys.stdout.flush()
try:
    if engine == "sentence-transformers onnx":
        sys.path.insert(0, peer)  # first: its transformers, not the venv's
    elif peer:
        sys.path.append(peer)  # after the venv's own packages: the venv wins every clash
    import torch
    torch.set_num_threads(threads)  # this project's engines: model_fn sizes it again
    version = vectors = session = None
    prepare = lambda texts: texts  # a peer takes the texts themselves
    if engine in ("torch", "onnx", "onnx int8"):
        os.environ["EMBEDDING_ENGINE"] = engine.split()[0]
        sys.path.insert(0, os.path.join(model_dir, "code"))
        import inference
        model = inference.model_fn(folder)
        session = getattr(model.engine, "session", None)  # ONNX Runtime's (not torch's)
        # The request body as the toolkit hands it over (bytes), made before the clock starts:
        # writing it is the client's work.
        prepare = lambda texts: json.dumps({"inputs": texts}).encode()
        def encode(body):
            request = inference.input_fn(body, "application/json")
            return inference.output_fn(inference.predict_fn(request, model), "application/json")
        vectors = lambda texts: json.loads(encode(prepare(texts)))["embeddings"]
    elif engine.startswith("sentence-transformers"):
        from sentence_transformers import SentenceTransformer
        options = {}
        if engine.endswith("onnx"):
            import onnxruntime, optimum.version, transformers
            session_options = onnxruntime.SessionOptions()
            session_options.intra_op_num_threads = threads
            options = {"backend": "onnx", "model_kwargs": {
                "file_name": "onnx/model.onnx", "provider": "CPUExecutionProvider",
                "session_options": session_options}}
            version = f"(optimum {optimum.version.__version__}, "
            version += f"transformers {transformers.__version__})"
        reference = SentenceTransformer(model_dir, device="cpu", **options)
        encode = lambda texts: reference.encode(texts, batch_size=32, normalize_embeddings=True)
    else:
        import fastembed
        from fastembed import TextEmbedding
        from fastembed.common.model_description import ModelSource, PoolingType
        TextEmbedding.add_custom_model(
            model=f"bench/{engine}", pooling=PoolingType.MEAN, normalization=True,
            sources=ModelSource(hf=f"bench/{engine}"), dim=dimensions, model_file="onnx/model.onnx",
        )
        embedder = TextEmbedding(f"bench/{engine}", specific_model_path=folder, threads=threads)
        session = embedder.model.model
        encode = lambda texts: list(embedder.embed(texts, batch_size=32))
        version = fastembed.__version__
except Exception as error:  # a peer not installed, or not importable beside this venv
    if engine in ("torch", "onnx", "onnx int8"):
        raise  # this project's own engines never go missing: the bench fails, with the cause
    answer({"missing": re.sub(r" \(/[^)]*\)", "", f"{type(error).__name__}: {error}")[:300]})
    sys.exit(0)
in_run = [0.0]  # seconds inside the session's run this pass: the rest is the request around it
if session is not None:
    def timed_run(*args, run=session.run, **kwargs):
        started = time.perf_counter()
        try:
            return run(*args, **kwargs)
        finally:
            in_run[0] += time.perf_counter() - started
    session.run = timed_run
if vectors is None:
    vectors = lambda texts: [list(map(float, vector)) for vector in encode(texts)]
answer({"vectors": vectors(check), "version": version})
for line in sys.stdin:  # one piece of a pass: its texts in requests of `batch`, timed together
    command = json.loads(line)
    texts, batch = command["texts"], command["batch"]
    requests = [prepare(texts[start:start + batch]) for start in range(0, len(texts), batch)]
    in_run[0] = 0.0
    t0 = time.perf_counter()
    for request in requests:
        encode(request)
    elapsed = time.perf_counter() - t0
    answer({"seconds": elapsed, "in_run": in_run[0] if session is not None else None})
"""


class Worker:
    """One engine's process: `timed_pass(texts, batch)` times a pass there."""

    def __init__(self, engine: str, arguments: list[str], threads: int) -> None:
        self.engine = engine
        self.errors = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WORKER, engine, *arguments],
            cwd=tempfile.gettempdir(),  # not the project: nothing shadows the archive's code/
            env=child_environment(threads),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            text=True,
        )

    def read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            self.errors.seek(0)
            raise RuntimeError(f"{self.engine} failed:\n{self.errors.read()[-4000:]}")
        return json.loads(line)

    def timed_piece(self, texts: list[str], batch: int) -> dict:
        """{"seconds": the piece's requests, "in_run": inside ONNX Runtime's run, or None}."""
        self.process.stdin.write(json.dumps({"texts": texts, "batch": batch}) + "\n")
        self.process.stdin.flush()
        return self.read()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()
        self.errors.close()


def int8_model_dir(model_dir: Path, work: Path) -> Path:
    """`model_dir` with its fp32 graph replaced by the int8 graph the loader's quantizer makes."""
    from loader.graph_quantization import quantize_graph

    int8_dir = work / "model-int8"
    shutil.copytree(model_dir, int8_dir, ignore=shutil.ignore_patterns("*.onnx"))
    quantize_graph(model_dir / "onnx" / "model.onnx", int8_dir / "onnx" / "model.onnx")
    return int8_dir


def start_workers(
    model_dir: Path, int8_dir: Path, threads: int, check_texts: list[str]
) -> tuple[dict[str, Worker], dict]:
    """One loaded worker per engine that loads; {"vectors", "versions", "missing"} of them."""
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    dimensions = str(pooling["word_embedding_dimension"])
    started = {}
    for engine in ENGINES:  # they load side by side
        peer = str(peer_dir(PEER_OF[engine])) if engine in PEER_OF else ""
        arguments = [str(model_dir), str(int8_dir), str(threads), peer, dimensions]
        started[engine] = Worker(engine, [*arguments, json.dumps(check_texts)], threads)
    workers, found = {}, {"vectors": {}, "versions": {}, "missing": {}}
    for engine, worker in started.items():
        first = worker.read()
        if "missing" in first:
            found["missing"][PEER_OF.get(engine, engine)] = first["missing"]
            worker.close()
            continue
        workers[engine], found["vectors"][engine] = worker, first["vectors"]
        if first["version"]:
            found["versions"][PEER_OF.get(engine, engine)] = first["version"]
    return workers, found


def interleaved(model_dir: Path, int8_dir: Path, threads: int, check_texts: list[str]) -> dict:
    """Every engine's passes on each workload and batch size, alternated piece by piece.

    WORKER_SETS fresh sets of workers take PASSES_PER_SET passes each: one process's session can
    run 10-15 % faster or slower than another's on the same graph, so no engine rests on one.
    {"passes": {workload: {engine: {batch: [texts/s per pass]}}}, "outside_us": the same shape,
    µs per text outside `session.run` (the engines on ONNX Runtime whose session the worker can
    reach: this project's and fastembed), "vectors": {engine: [...]}, "versions": {peer:
    version}, "missing": {peer: why}}.
    """
    passes: dict = {workload: {} for workload in WORKLOADS}
    outside: dict = {workload: {} for workload in WORKLOADS}
    for _ in range(WORKER_SETS):
        workers, found = start_workers(model_dir, int8_dir, threads, check_texts)
        try:
            for workload in WORKLOADS:
                texts = workload_texts(workload)
                for batch in BATCH_SIZES:
                    for worker in workers.values():  # the warm-up request, not timed
                        worker.timed_piece(texts[:batch], batch)
                    for _ in range(PASSES_PER_SET):
                        timed = alternated_pass(workers, texts, batch)
                        for engine, (seconds, in_run) in timed.items():
                            rates = passes[workload].setdefault(engine, {})
                            rates.setdefault(str(batch), []).append(len(texts) / seconds)
                            if in_run is not None:
                                spent = outside[workload].setdefault(engine, {})
                                per_text = 1e6 * (seconds - in_run) / len(texts)
                                spent.setdefault(str(batch), []).append(per_text)
        finally:
            for worker in workers.values():
                worker.close()
    return {"passes": passes, "outside_us": outside, **found}


def alternated_pass(
    workers: dict[str, Worker], texts: list[str], batch: int
) -> dict[str, tuple[float, float | None]]:
    """One pass of `texts` per engine, in PIECES_PER_PASS pieces that the engines take in turn.

    The machine's speed swings by up to 2× over a second or so (other work on the host), longer
    than one engine's pass at batch 1: whole passes in turn left a pair of engines 0.6-1.3 apart
    pass by pass. Pieces a few tens of ms long put every engine's pass in the same stretch of
    time. Each piece starts the turn one engine later, so none always follows the same one.
    {engine: (seconds, of which inside `session.run` or None)}.
    """
    requests = [texts[start : start + batch] for start in range(0, len(texts), batch)]
    count = min(PIECES_PER_PASS, len(requests))
    pieces = [sum(requests[index::count], []) for index in range(count)]
    engines = list(workers)
    seconds = dict.fromkeys(engines, 0.0)
    in_run: dict[str, float | None] = dict.fromkeys(engines, 0.0)
    for number, piece in enumerate(pieces):
        for engine in engines[number % len(engines) :] + engines[: number % len(engines)]:
            time.sleep(SETTLE_SECONDS)
            timed = workers[engine].timed_piece(piece, batch)
            seconds[engine] += timed["seconds"]
            inside = in_run[engine]
            in_run[engine] = None if timed["in_run"] is None else inside + timed["in_run"]
    return {engine: (seconds[engine], in_run[engine]) for engine in engines}


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


def child_environment(threads: int) -> dict[str, str]:
    """The environment of a benchmark's child: the container's thread setting, no PYTHONPATH."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "EMBEDDING_NUM_THREADS": str(threads)}
    env.pop("PYTHONPATH", None)
    return env


def run_child(script: str, arguments: list[str], threads: int, what: str) -> dict:
    """Run `script` in a fresh Python with the container's thread setting; its last JSON line."""
    completed = subprocess.run(
        [sys.executable, "-c", script, *arguments],
        cwd=tempfile.gettempdir(),  # not the project: nothing shadows the archive's code/
        env=child_environment(threads),
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{what} ×{threads} failed:\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])
