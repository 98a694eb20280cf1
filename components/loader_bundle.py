"""The loader Lambda's code: `loader/`, what it ships and imports, and its requirements, zipped.

The zip holds `loader/`, `container/` (the code every archive ships in `code/`) and `facts/`, and,
when the stack may use the ONNX engine, the ONNX Runtime wheel for the endpoint image's Python in
`wheels/` (the loader vendors it into those archives: loader/vendored_runtime.py; 13-17 MB).
ONNX Runtime's optimizer for the Lambda's own Python (loader/graph_fusion.py) makes the zip about
71 MB (186 MB unzipped, under Lambda's 250 MB): over the 50 MB a function takes directly, so the
program uploads it to the artifact bucket (components/packager.py).
Dependencies are installed by pip for the Lambda's platform (not this machine's): manylinux2014
or manylinux_2_28 x86_64 wheels for CPython 3.12 only, no source builds. The zip is reproducible
(components/lambda_zip.py), and cached by a hash of everything that goes into it, so pip runs once
per change of those folders or the requirements, not on every `pulumi up`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from components.lambda_zip import tree_files, write_reproducible_zip
from components.runtime_wheels import ensure_wheel
from facts.onnx_runtime import RuntimeWheel
from loader.vendored_runtime import BUNDLED_WHEELS

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The folders the Lambda runs from: the loader, what it packages into `code/`, what both import.
SOURCE_FOLDERS = ("loader", "container", "facts")
LOADER_REQUIREMENTS = PROJECT_ROOT / "loader" / "requirements.txt"
DEFAULT_CACHE_DIR = PROJECT_ROOT / ".build" / "loader"
# Override the cache folder (e.g. to share prebuilt zips across checkouts or CI jobs).
CACHE_DIR_VARIABLE = "EMBEDDING_ENDPOINT_LOADER_CACHE"

PIP_PLATFORM_ARGS = (
    "--platform",
    "manylinux2014_x86_64",
    # numpy, onnx and onnxruntime publish manylinux_2_28 wheels only; the python3.12 runtime
    # (Amazon Linux 2023) has glibc 2.34.
    "--platform",
    "manylinux_2_28_x86_64",
    "--implementation",
    "cp",
    "--python-version",
    "3.12",
    "--only-binary=:all:",
)
# Part of the cache key: bump when the way the zip is assembled changes.
BUNDLE_FORMAT = "3"


class BundleError(RuntimeError):
    """The loader zip could not be built; the message says which step and why."""


def is_install_record(name: str) -> bool:
    """True for a wheel's RECORD file (`<dist>.dist-info/RECORD`)."""
    parts = name.split("/")
    return len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "RECORD"


def shipped_record(record: bytes) -> bytes:
    """A RECORD without the console scripts pip put outside the target (`../../bin/...`).

    Those scripts are not shipped, and their recorded hashes depend on the local interpreter's
    path, which would make two builds of the same requirements differ.
    """
    lines = record.decode("utf-8").splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("../")).encode("utf-8")


def zip_entries(root: Path) -> dict[str, Path | bytes]:
    """The files under `root` by archive name, RECORD files without their outside scripts."""
    return {
        name: shipped_record(path.read_bytes()) if is_install_record(name) else path
        for name, path in tree_files(root)
    }


def bundle_digest(root: Path = PROJECT_ROOT, runtime: RuntimeWheel | None = None) -> str:
    """Hash of everything the zip is made of: sources, requirements, pip platform, zip format.

    The runtime wheel counts by its pinned name and sha256, so a cached zip needs no download.
    """
    digest = hashlib.sha256(f"bundle-format={BUNDLE_FORMAT}\n".encode())
    if runtime is not None:
        digest.update(f"wheel={runtime.identity}\n".encode())
    digest.update(" ".join(PIP_PLATFORM_ARGS).encode() + b"\n")
    digest.update(b"requirements\n" + (root / "loader" / "requirements.txt").read_bytes())
    for folder in SOURCE_FOLDERS:
        for name, path in tree_files(root / folder):
            digest.update(f"\n{folder}/{name}\n".encode() + path.read_bytes())
    return digest.hexdigest()[:32]


def zip_sha256_base64(path: Path) -> str:
    """The zip's sha256 as Lambda reports it (`CodeSha256`): how the function sees new code."""
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode("ascii")


def install_requirements(requirements: Path, target: Path) -> None:
    """pip-install the loader's requirements for the Lambda's platform into `target`."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(target),
        *PIP_PLATFORM_ARGS,
        "--requirement",
        str(requirements),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise BundleError(
            f"pip could not install {requirements} for the loader Lambda (python 3.12, "
            f"manylinux x86_64, wheels only): {completed.stderr.strip()[-2000:]}"
        )


def build_loader_zip(cache_dir: Path | None = None, runtime: RuntimeWheel | None = None) -> Path:
    """The loader Lambda zip, built once per content hash and reused from the cache after that."""
    cache = Path(cache_dir or os.environ.get(CACHE_DIR_VARIABLE) or DEFAULT_CACHE_DIR)
    destination = cache / f"loader-{bundle_digest(runtime=runtime)}.zip"
    if destination.exists():
        return destination
    with tempfile.TemporaryDirectory(prefix="loader-bundle-") as scratch:
        installed = Path(scratch)
        install_requirements(LOADER_REQUIREMENTS, installed)
        entries = zip_entries(installed)
        if runtime is not None:
            entries[f"{BUNDLED_WHEELS.name}/{runtime.filename}"] = ensure_wheel(runtime)
        for folder in SOURCE_FOLDERS:
            entries.update(
                (f"{folder}/{name}", path) for name, path in tree_files(PROJECT_ROOT / folder)
            )
        write_reproducible_zip(entries, destination)
    return destination
