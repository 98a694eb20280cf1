"""The libraries a user would pick instead, installed for the inference benchmark only.

fastembed and sentence-transformers' ONNX backend (optimum) are optional dev dependencies whose
own pins clash with the project's venv (fastembed 0.9.1 wants huggingface-hub < 2, optimum-onnx
transformers < 4.58). So they go with `pip install --no-deps` into PEERS_DIR, which the
benchmark's child process appends to sys.path: the venv's packages come first, the venv is never
changed, and a peer that cannot import beside them is reported as missing, with the reason.
`make bench` runs `python -m benchmarks.peers` first; without an index it says so and goes on.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PEERS_DIR = REPO_ROOT / ".build" / "peers"
# Each peer and what it imports that the project's venv lacks (installed without their deps).
PEER_PACKAGES = {
    "fastembed": ["fastembed==0.9.1", "loguru", "mmh3", "py-rust-stemmers", "pillow"],
    "sentence-transformers-onnx": ["optimum", "optimum-onnx"],
}


def install(peers_dir: Path = PEERS_DIR) -> dict[str, str]:
    """Install every peer into `peers_dir` (skipped when there); peer → "ok" or why not."""
    outcome = {}
    for peer, packages in PEER_PACKAGES.items():
        marker = peers_dir / f".{peer}.installed"
        if marker.is_file():
            outcome[peer] = "ok"
            continue
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
        command += ["--target", str(peers_dir), "--upgrade", *packages]
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        if completed.returncode == 0:
            marker.write_text(" ".join(packages) + "\n")
            outcome[peer] = "ok"
        else:
            outcome[peer] = (completed.stderr.strip().splitlines() or ["pip failed"])[-1]
    return outcome


if __name__ == "__main__":
    for name, result in install().items():
        print(f"peer {name}: {result}")
