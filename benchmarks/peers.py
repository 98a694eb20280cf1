"""The libraries a user would pick instead, installed for the inference benchmark only.

fastembed and sentence-transformers' ONNX backend (optimum) are optional dev dependencies whose
own pins clash with the project's venv, so each goes with `pip install --no-deps` into a folder of
its own under PEERS_DIR, never into the venv:
- fastembed 0.9.1 wants huggingface-hub < 2, but imports beside the venv's 2.x: its folder is
  appended to the benchmark child's sys.path, so the venv's packages win every clash;
- optimum-onnx 0.1.0 needs transformers < 4.58, and the venv's 5.x cannot load it: its folder
  carries the transformers, tokenizers and huggingface-hub it works with, put first on the
  sys.path of a child of its own (interleaved.py), beside sentence-transformers as its reference.
A peer that cannot import is reported as missing, with the reason. `make bench` runs
`python -m benchmarks.peers` first; without an index it says so and goes on.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PEERS_DIR = REPO_ROOT / ".build" / "peers"
# Each peer and the packages it needs beside the venv's (installed without their deps).
PEER_PACKAGES = {
    "fastembed": ["fastembed==0.9.1", "loguru", "mmh3", "py-rust-stemmers", "pillow"],
    "sentence-transformers-onnx": [
        "optimum==2.3.0",
        "optimum-onnx==0.1.0",
        "transformers==4.57.3",
        "tokenizers==0.22.1",
        "huggingface-hub==0.36.0",
    ],
}


def peer_dir(peer: str, peers_dir: Path = PEERS_DIR) -> Path:
    """The folder `peer`'s packages are installed into."""
    return peers_dir / peer


def install(peers_dir: Path = PEERS_DIR) -> dict[str, str]:
    """Install every peer into `peers_dir` (skipped when there); peer → "ok" or why not."""
    outcome = {}
    for peer, packages in PEER_PACKAGES.items():
        target = peer_dir(peer, peers_dir)
        marker = target / ".installed"
        if marker.is_file():
            outcome[peer] = "ok"
            continue
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
        command += ["--target", str(target), "--upgrade", *packages]
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
