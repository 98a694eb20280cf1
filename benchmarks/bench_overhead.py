"""Where a request through code/inference.py spends its time outside ONNX Runtime's session.run.

The DLC's path (input_fn → predict_fn → output_fn, JSON in and out) on the ONNX engine and the
fused graph of all-MiniLM-L6-v2 (bench_inference.prepare_model_dir), at batch 1 and batch 32 of
short sentences. Each step is timed inside the real request by wrapping what does it, so nothing
is measured apart from the pipeline:
- JSON in: input_fn (decoding, validation, the request limit);
- tokenizer: every call of transformers' tokenizer and of the direct tokenizer
  (sentence_embedding/tokenization.py);
- feeds: the engine's forward call (token_embeddings, or mean_pooled from the graph's pooling
  head) less its session.run (arrays handed to ONNX Runtime);
- session.run: the forward pass itself;
- rest of predict_fn: prompts, cuts, runs, the request-size check, and pooling and
  normalization where numpy does them (before: always; after: only without the pooling head);
- JSON out: output_fn.
Two versions of the container's code run side by side: this tree's ("after") and the one at
BASELINE_REF ("before": the pipeline as it was before the direct tokenizer and the numpy
pipeline), each in a process of its own, the processes alternated ROUNDS times; µs per request is
the median over rounds of each process's median pass. Results: benchmarks/results/overhead.*.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from benchmarks.bench_inference import (
    REPO_ROOT,
    _loadavg,
    container_threads,
    machine_description,
    prepare_model_dir,
)
from benchmarks.interleaved import SENTENCES_PER_PASS, run_child, workload_texts

# The last commit before the per-request overhead was cut (issue 23, part 1).
BASELINE_REF = "c4addad"
ROUNDS = int(os.environ.get("BENCH_OVERHEAD_ROUNDS", "3"))
PASSES = int(os.environ.get("BENCH_OVERHEAD_PASSES", "5"))
STEPS = ("json_in", "tokenizer", "feeds", "session_run", "rest_of_predict", "json_out")
STEP_NAMES = {
    "json_in": "JSON in (input_fn)",
    "tokenizer": "tokenizer",
    "feeds": "feeds to ONNX Runtime",
    "session_run": "session.run",
    "rest_of_predict": "rest of predict_fn (checks, numpy pooling and norm where done)",
    "json_out": "JSON out (output_fn)",
}

# Runs in the child: argv = code dir, model dir, passes, texts (JSON). Prints µs per request.
_CHILD = r"""
import json, os, statistics, sys, time
code_dir, model_dir, passes = sys.argv[1], sys.argv[2], int(sys.argv[3])
texts = json.loads(sys.argv[4])
count = len(texts)
os.environ["EMBEDDING_ENGINE"] = "onnx"
sys.path.insert(0, code_dir)
import inference
model = inference.model_fn(model_dir)
spent = {}
def timed(step, function):
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[step] = spent.get(step, 0.0) + time.perf_counter() - t0
    return wrapper
session = model.engine.session
class TimedSession:
    def __init__(self, session):
        self.run = timed("session_run", session.run)
    def __getattr__(self, name):
        return getattr(session, name)
model.engine.session = TimedSession(session)
model.engine.token_embeddings = timed("forward", model.engine.token_embeddings)
if hasattr(model.engine, "mean_pooled"):  # the pooling head's output (loader/pooling_head.py)
    model.engine.mean_pooled = timed("forward", model.engine.mean_pooled)
tokenizer_type = type(model.tokenizer)
tokenizer_type.__call__ = timed("tokenizer", tokenizer_type.__call__)
batch_tokenizer = getattr(model, "batch_tokenizer", None)
if batch_tokenizer is not None:
    batch_tokenizer.encode = timed("tokenizer", batch_tokenizer.encode)
input_fn = timed("json_in", inference.input_fn)
predict_fn = timed("predict", inference.predict_fn)
output_fn = timed("json_out", inference.output_fn)
def request(batch):
    body = json.dumps({"inputs": batch})
    return output_fn(predict_fn(input_fn(body, "application/json"), model), "application/json")
result = {}
for size in (1, 32):
    for start in range(0, count, size):
        request(texts[start:start + size])  # warm-up
    per_pass = []
    for _ in range(passes):
        spent.clear()
        for start in range(0, count, size):
            request(texts[start:start + size])
        requests = -(-count // size)
        steps = {
            "json_in": spent["json_in"],
            "tokenizer": spent["tokenizer"],
            "feeds": spent["forward"] - spent["session_run"],
            "session_run": spent["session_run"],
            "rest_of_predict": spent["predict"] - spent["forward"] - spent["tokenizer"],
            "json_out": spent["json_out"],
            "total": spent["json_in"] + spent["predict"] + spent["json_out"],
        }
        per_pass.append({step: 1e6 * value / requests for step, value in steps.items()})
    result[str(size)] = {
        step: statistics.median(values[step] for values in per_pass) for step in per_pass[0]
    }
print(json.dumps(result))
"""


def baseline_code(code_dir: Path, destination: Path) -> bool:
    """A copy of `code_dir` with the container's own files as at BASELINE_REF; False without git."""
    listing = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", BASELINE_REF, "container/"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if listing.returncode != 0:
        return False
    shutil.copytree(code_dir, destination)
    for name in (destination / "sentence_embedding").glob("*.py"):
        name.unlink()
    for path in listing.stdout.split():
        shown = subprocess.run(
            ["git", "show", f"{BASELINE_REF}:{path}"],
            cwd=REPO_ROOT,
            capture_output=True,
            check=True,
        )
        target = destination / path.removeprefix("container/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(shown.stdout)
    return True


def _markdown(document: dict) -> str:
    machine, figures = document["machine"], document["figures"]
    versions = [version for version in ("before", "after") if version in figures]
    lines = [
        "# Per-request overhead: code/inference.py on the ONNX engine, step by step",
        "",
        f"Machine: {machine['cpus']} CPUs, {machine['platform']}, Python {machine['python']}, "
        f"{machine['threads']} intra-op threads (the container's). Model: all-MiniLM-L6-v2, "
        f"{machine['graph']}. {SENTENCES_PER_PASS} short sentences (40 to 141 characters, 8 to 31 "
        "tokens) per pass, at batch 1 and 32, through input_fn → predict_fn → output_fn with "
        "JSON in and out.",
        "",
        f"Before: the container's code at {BASELINE_REF} (transformers' tokenizer wrapper, torch "
        "tensors between the steps); after: this tree's (the Rust tokenizer called directly, numpy "
        "from the tokenizer to the response). Each version in a process of its own, the processes "
        f"alternated {ROUNDS} times, {PASSES} passes each; µs per request, median of the rounds' "
        "median passes. Every step is timed inside the real request.",
        "",
        f"Load average before / after: {machine['loadavg_before']} / {machine['loadavg_after']} "
        "(other work on this shared machine; the steps outside session.run are the least "
        "disturbed by it).",
        "",
    ]
    if "before" not in figures:
        lines += [f"(No git history with {BASELINE_REF} here: only this tree's figures.)", ""]
    for size in ("1", "32"):
        header = " | ".join(f"{version} µs" for version in versions)
        lines += [
            f"Batch {size}, µs per request:",
            "",
            f"| step | {header} |",
            "|---|" + "---|" * len(versions),
        ]
        for step in (*STEPS, "outside", "total"):
            name = {"outside": "**outside session.run**", "total": "**total**"}.get(
                step, STEP_NAMES.get(step, step)
            )
            cells = " | ".join(f"{figures[version][size][step]:.0f}" for version in versions)
            lines.append(f"| {name} | {cells} |")
        if len(versions) == 2:
            before, after = (figures[version][size] for version in versions)
            lines += [
                "",
                f"Outside session.run: {before['outside']:.0f} → {after['outside']:.0f} µs "
                f"per request; the whole request: {int(size) * 1e6 / before['total']:.0f} → "
                f"{int(size) * 1e6 / after['total']:.0f} texts/s.",
            ]
        lines.append("")
    return "\n".join(lines)


def run(results_dir: Path) -> Path:
    """Both versions, ROUNDS times alternated; write overhead.json and overhead.md."""
    results_dir.mkdir(parents=True, exist_ok=True)
    threads = container_threads()
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as scratch:
        model_dir, runtime = prepare_model_dir(Path(scratch))
        codes = {"after": model_dir / "code"}
        if baseline_code(model_dir / "code", Path(scratch) / "baseline-code"):
            codes = {"before": Path(scratch) / "baseline-code", **codes}
        machine = machine_description(threads, runtime)
        texts = workload_texts("sentences")
        rounds: dict[str, list[dict]] = {version: [] for version in codes}
        for _ in range(ROUNDS):
            for version, code in codes.items():
                arguments = [str(code), str(model_dir), str(PASSES), json.dumps(texts)]
                rounds[version].append(run_child(_CHILD, arguments, threads, version))
        machine["loadavg_after"] = _loadavg()
    figures = {}
    for version, results in rounds.items():
        figures[version] = {}
        for size in ("1", "32"):
            steps = {
                step: statistics.median(result[size][step] for result in results)
                for step in results[0][size]
            }
            steps["outside"] = steps["total"] - steps["session_run"]
            figures[version][size] = steps
    document = {"machine": machine, "baseline_ref": BASELINE_REF, "figures": figures}
    path = results_dir / "overhead.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    (results_dir / "overhead.md").write_text(_markdown(document))
    return path


if __name__ == "__main__":
    print(run(REPO_ROOT / "benchmarks" / "results"))
