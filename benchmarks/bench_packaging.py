"""Packaging throughput and memory: loader variants vs a plain streaming copy of the same bytes.

Every path reads the same files from a local Hub-compatible server (benchmarks/hub_server.py) and
writes to the same moto S3 server over loopback. The plain copy is HTTP → boto3 `upload_fileobj`
with the same part size and concurrency, no tar, no gzip, no hashing. The loader variants:

- `shipped`: the loader in this tree (tarfile headers, hand-written stored gzip, boto3's transfer
  manager, sha256 inline);
- `hand-written`: the loader at HAND_WRITTEN_REF, the last commit before the library switch (hand
  tar headers and stored gzip, its own part-upload thread pool, sha256 on a thread), extracted
  with `git archive` (skipped outside a git checkout);
- the shipped loader with one piece swapped for the option it does not ship
  (benchmarks/packaging_variants.py): `+stdlib-gzip`, `+tarfile-stream`, `+sha256-thread`.

Each run happens in a fresh subprocess so its peak RSS is its own; a baseline subprocess that only
imports the same libraries shows how much of that peak is the interpreter. Repos: the real
all-MiniLM-L6-v2 (~91 MB) and a synthetic repo with random weights generated at run time
(BENCH_PACKAGING_MB, default 400 MB; never committed). Results: packaging.json and packaging.md
under benchmarks/results/.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SYNTHETIC_MODEL_ID = "bench-org/synthetic-weights"
REPEATS = int(os.environ.get("BENCH_PACKAGING_REPEATS", "3"))
SYNTHETIC_MB = int(os.environ.get("BENCH_PACKAGING_MB", "400"))
MiB = 1024 * 1024
HAND_WRITTEN_REF = "a69d9d5"  # loader/ before tarfile + boto3's transfer manager replaced it
REFERENCE_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass(frozen=True)
class Variant:
    """A way to run the loader: the tree at a git ref (None: this tree) plus patches to apply."""

    name: str
    ref: str | None = None
    patches: tuple[str, ...] = ()


ALL_VARIANTS = (
    Variant("shipped"),
    Variant("hand-written", ref=HAND_WRITTEN_REF),
    Variant("+stdlib-gzip", patches=("stdlib-gzip",)),
    Variant("+tarfile-stream", patches=("tarfile-stream",)),
    Variant("+sha256-thread", patches=("sha256-thread",)),
)
_CHOSEN = os.environ.get("BENCH_PACKAGING_VARIANTS", "")  # comma-separated names; empty: all
VARIANTS = tuple(v for v in ALL_VARIANTS if not _CHOSEN or v.name in _CHOSEN.split(","))


@dataclass(frozen=True)
class Measurement:
    seconds: float
    bytes_moved: int
    peak_rss_mb: float
    cpu_seconds: float = 0.0  # the child's user + system time: less sensitive to a busy machine
    sha256: str = ""

    @property
    def mb_per_s(self) -> float:
        return self.bytes_moved / MiB / self.seconds


# --- children (each run is its own process, so ru_maxrss is that run's peak) --------------------


def _peak_rss_mb() -> float:
    """This process's high-water RSS. Not getrusage: on Linux its ru_maxrss carries the parent's
    peak across fork+exec, and the parent holds moto's in-memory objects."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child_baseline() -> dict:
    import boto3  # noqa: F401 - imported for its memory footprint
    import huggingface_hub  # noqa: F401

    import loader.handler  # noqa: F401

    return {"seconds": 0.0, "bytes_moved": 0, "peak_rss_mb": _peak_rss_mb()}


def _child_package(model_id: str, bucket: str, patches: list[str]) -> dict:
    import time

    from loader.handler import handler

    if patches:
        from benchmarks.packaging_variants import PATCHES

        for name in patches:
            PATCHES[name]()
    started, cpu = time.perf_counter(), time.process_time()
    result = handler({"model_id": model_id, "bucket": bucket, "key_prefix": "bench/"}, None)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "bytes_moved": result["size_bytes"],
        "peak_rss_mb": _peak_rss_mb(),
        "cpu_seconds": time.process_time() - cpu,
        "sha256": result["sha256"],
    }


class _IterStream:
    """A read()-able view of an iterator of chunks (what upload_fileobj needs)."""

    def __init__(self, chunks):
        self._chunks = iter(chunks)
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            try:
                self._buffer += next(self._chunks)
            except StopIteration:
                break
        if size < 0:
            size = len(self._buffer)
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


def _child_copy(model_id: str, bucket: str) -> dict:
    import time

    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config
    from huggingface_hub import hf_hub_url
    from huggingface_hub.utils import get_session

    from loader.hub import fetch_snapshot, hub_endpoint
    from loader.selection import select_files
    from loader.upload import PART_SIZE, UPLOAD_WORKERS

    s3 = boto3.client("s3", config=Config(max_pool_connections=UPLOAD_WORKERS + 4))
    transfer = TransferConfig(
        multipart_threshold=PART_SIZE,
        multipart_chunksize=PART_SIZE,
        max_concurrency=UPLOAD_WORKERS,
    )
    started, cpu = time.perf_counter(), time.process_time()
    snapshot = fetch_snapshot(model_id, "main")
    moved = 0
    for item in select_files(model_id, snapshot.files):
        url = hf_hub_url(model_id, item.path, revision=snapshot.revision, endpoint=hub_endpoint())
        with get_session().stream("GET", url, follow_redirects=True) as response:
            response.raise_for_status()
            stream = _IterStream(response.iter_bytes(MiB))
            s3.upload_fileobj(stream, bucket, f"copy/{item.path}", Config=transfer)
        moved += item.size
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "bytes_moved": moved,
        "peak_rss_mb": _peak_rss_mb(),
        "cpu_seconds": time.process_time() - cpu,
    }


def _child_main(argv: list[str]) -> None:
    mode = argv[0]
    if mode == "baseline":
        answer = _child_baseline()
    elif mode == "package":
        answer = _child_package(argv[1], argv[2], argv[3:])
    else:
        answer = _child_copy(argv[1], argv[2])
    print(json.dumps(answer))


# --- parent -------------------------------------------------------------------------------------


def _run_child(env: dict[str, str], *args: str, tree: Path = REPO_ROOT) -> Measurement:
    """One child run; `tree` holds the loader/ it imports (the working directory comes first on
    sys.path, before PYTHONPATH's REPO_ROOT that provides the benchmarks package)."""
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_packaging", "--child", *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"benchmark child {args} failed:\n{completed.stderr[-3000:]}")
    return Measurement(**json.loads(completed.stdout.strip().splitlines()[-1]))


def _best(measurements: list[Measurement]) -> Measurement:
    return min(measurements, key=lambda m: m.seconds)


def _tree_at(ref: str, scratch: Path) -> Path | None:
    """loader/ as it was at `ref`, extracted into `scratch`; None when git cannot provide it."""
    tree = scratch / f"tree-{ref}"
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", ref, "loader"], capture_output=True, check=False
    )
    if archive.returncode != 0:
        return None
    tree.mkdir()
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return tree


def _summary(runs: list[Measurement], copy: Measurement, copy_seconds: list[float]) -> dict:
    best = _best(runs)
    return {
        "best": asdict(best) | {"mb_per_s": round(best.mb_per_s, 1)},
        "time_over_copy": round(best.seconds / copy.seconds, 2),
        "seconds_all_runs": [round(m.seconds, 3) for m in runs],
        "median_seconds": round(statistics.median(m.seconds for m in runs), 3),
        "median_time_over_copy": round(
            statistics.median(m.seconds for m in runs) / statistics.median(copy_seconds), 2
        ),
        # each round runs every variant and the copy back to back: their ratio shares the load
        "paired_median_time_over_copy": round(
            statistics.median(m.seconds / c for m, c in zip(runs, copy_seconds, strict=True)), 2
        ),
        "median_cpu_seconds": round(statistics.median(m.cpu_seconds for m in runs), 3),
        "peak_rss_mb_max": round(max(m.peak_rss_mb for m in runs), 1),
    }


def _bench_repo(env: dict[str, str], s3, model_id: str, trees: dict[str, Path]) -> dict:
    variants = [v for v in VARIANTS if v.name in trees]
    runs: dict[str, list[Measurement]] = {v.name: [] for v in variants} | {"copy": []}
    warm_up = f"bench-{uuid.uuid4().hex[:12]}"  # one discarded copy: page cache, moto's imports
    s3.create_bucket(Bucket=warm_up)
    _run_child(env, "copy", model_id, warm_up)
    for item in s3.list_objects_v2(Bucket=warm_up).get("Contents", []):
        s3.delete_object(Bucket=warm_up, Key=item["Key"])
    s3.delete_bucket(Bucket=warm_up)
    for _ in range(REPEATS):  # interleaved, so drift on the machine hits every variant alike
        for variant in [*variants, None]:
            name = variant.name if variant else "copy"
            bucket = f"bench-{uuid.uuid4().hex[:12]}"
            s3.create_bucket(Bucket=bucket)
            try:
                if variant is None:
                    runs[name].append(_run_child(env, "copy", model_id, bucket))
                else:
                    args = ("package", model_id, bucket, *variant.patches)
                    runs[name].append(_run_child(env, *args, tree=trees[name]))
            finally:
                for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
                    s3.delete_object(Bucket=bucket, Key=item["Key"])
                s3.delete_bucket(Bucket=bucket)
    copy = _best(runs["copy"])
    return {
        "model_id": model_id,
        "copy": asdict(copy) | {"mb_per_s": round(copy.mb_per_s, 1)},
        "copy_seconds_all_runs": [round(m.seconds, 3) for m in runs["copy"]],
        "copy_median_cpu_seconds": round(statistics.median(m.cpu_seconds for m in runs["copy"]), 3),
        "variants": {
            v.name: _summary(runs[v.name], copy, [m.seconds for m in runs["copy"]])
            for v in variants
        },
    }


def _markdown(report: dict) -> str:
    lines = [
        "# Packaging benchmark",
        "",
        "Local Hub server → moto S3 over loopback; best of "
        f"{report['repeats']} runs; each run in its own process.",
        f"Baseline process RSS (imports only): {report['baseline_rss_mb']:.0f} MB. "
        "Limits: at most 1.2× the plain copy's time, at most 300 MB peak RSS.",
        "",
        "Variants: `shipped` = tarfile headers + hand-written stored gzip + boto3 transfer "
        "manager + inline sha256; `hand-written` = the loader at "
        f"`{report['hand_written_ref']}`; `+x` = shipped with one piece swapped "
        "(benchmarks/packaging_variants.py). Same sha256 = byte-identical archive.",
        "",
        "| repo | variant | archive MB | best MB/s | time / copy: best | median | paired median "
        "| median CPU s | peak RSS MB | sha256 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in report["repos"]:
        for name, summary in row["variants"].items():
            best = summary["best"]
            lines.append(
                f"| {row['model_id']} | {name} | {best['bytes_moved'] / MiB:.0f} | "
                f"{best['mb_per_s']} | {summary['time_over_copy']} | "
                f"{summary['median_time_over_copy']} | {summary['paired_median_time_over_copy']} | "
                f"{summary['median_cpu_seconds']} | "
                f"{summary['peak_rss_mb_max']:.0f} | `{best['sha256'][:12]}` |"
            )
        copy = row["copy"]
        lines.append(
            f"| {row['model_id']} | plain copy | {copy['bytes_moved'] / MiB:.0f} | "
            f"{copy['mb_per_s']} | 1.0 | 1.0 | 1.0 | {row['copy_median_cpu_seconds']} | "
            f"{copy['peak_rss_mb']:.0f} | |"
        )
    load = report["load_average_1min"]
    lines += [
        "",
        f"Machine: {report['machine']}; 1-minute load average {load['start']:.2f} at the start, "
        f"{load['end']:.2f} at the end (2 means both CPUs were busy before this benchmark ran).",
        "",
    ]
    return "\n".join(lines)


def run(results_dir: Path) -> Path:
    """Run the benchmark, write packaging.json and packaging.md; return the JSON path."""
    sys.path.insert(0, str(REPO_ROOT))
    from moto.server import ThreadedMotoServer

    from benchmarks.hub_server import HubServer, Repo, reference_model_files

    results_dir.mkdir(parents=True, exist_ok=True)
    hub = HubServer()
    hub.register(Repo(REFERENCE_MODEL_ID, reference_model_files()))
    hub.start()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    env = {
        **os.environ,
        "HF_ENDPOINT": hub.url,
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONPATH": str(REPO_ROOT),
    }
    env.pop("HF_TOKEN", None)
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    with tempfile.TemporaryDirectory(prefix="bench-packaging-") as scratch:
        weights = Path(scratch) / "model.safetensors"
        with weights.open("wb") as handle:
            for _ in range(SYNTHETIC_MB):
                handle.write(os.urandom(MiB))
        config = Path(scratch) / "config.json"
        config.write_bytes(b'{"model_type": "bert"}')
        hub.register(
            Repo(SYNTHETIC_MODEL_ID, {"config.json": config, "model.safetensors": weights})
        )
        trees = {v.name: REPO_ROOT for v in VARIANTS if v.ref is None}
        for variant in VARIANTS:
            if variant.ref is not None and (tree := _tree_at(variant.ref, Path(scratch))):
                trees[variant.name] = tree
        load_before = os.getloadavg()[0]
        try:
            baseline = _run_child(env, "baseline")
            repos = [
                _bench_repo(env, s3, model_id, trees)
                for model_id in (REFERENCE_MODEL_ID, SYNTHETIC_MODEL_ID)
            ]
        finally:
            moto.stop()
            hub.stop()
    report = {
        "repeats": REPEATS,
        "synthetic_mb": SYNTHETIC_MB,
        "baseline_rss_mb": round(baseline.peak_rss_mb, 1),
        "hand_written_ref": HAND_WRITTEN_REF,
        "machine": f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}",
        # other work on the machine shows here; the child CPU times barely depend on it
        "load_average_1min": {"start": load_before, "end": os.getloadavg()[0]},
        "repos": repos,
    }
    json_path = results_dir / "packaging.json"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    (results_dir / "packaging.md").write_text(_markdown(report))
    return json_path


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child_main(sys.argv[2:])
    else:
        print(run(REPO_ROOT / "benchmarks" / "results"))
