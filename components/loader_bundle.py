"""The loader Lambda's code: `loader/` plus its requirements, as a reproducible zip.

Dependencies are installed by pip for the Lambda's platform (not this machine's): manylinux2014
x86_64 wheels for CPython 3.12 only, no source builds. The zip has sorted entries, a fixed
timestamp and fixed permissions, so the same inputs give the same bytes and Pulumi sees no code
change between runs. Built zips are cached by a hash of everything that goes into them, so pip
runs once per change of `loader/` or its requirements, not on every `pulumi up`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LOADER_DIR = PROJECT_ROOT / "loader"
LOADER_REQUIREMENTS = LOADER_DIR / "requirements.txt"
DEFAULT_CACHE_DIR = PROJECT_ROOT / ".build" / "loader"
# Override the cache folder (e.g. to share prebuilt zips across checkouts or CI jobs).
CACHE_DIR_VARIABLE = "EMBEDDING_ENDPOINT_LOADER_CACHE"

PIP_PLATFORM_ARGS = (
    "--platform",
    "manylinux2014_x86_64",
    "--implementation",
    "cp",
    "--python-version",
    "3.12",
    "--only-binary=:all:",
)
# Part of the cache key: bump when the way the zip is assembled changes.
BUNDLE_FORMAT = "2"
# 1980-01-01 is the earliest time a zip entry can hold.
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
# Nothing here is needed at run time, and each may differ between two otherwise equal builds.
_EXCLUDED_DIRS = frozenset({"__pycache__", "bin", "tests"})
_EXCLUDED_SUFFIXES = (".pyc", ".pyo")


class BundleError(RuntimeError):
    """The loader zip could not be built; the message says which step and why."""


def bundled_files(root: Path) -> Iterator[tuple[str, Path]]:
    """(archive name, path) of every file under `root` that belongs in the zip, sorted by name."""
    entries = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [name for name in subdirs if name not in _EXCLUDED_DIRS]
        for name in files:
            if name.endswith(_EXCLUDED_SUFFIXES):
                continue
            path = Path(directory) / name
            entries.append((path.relative_to(root).as_posix(), path))
    yield from sorted(entries)


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


def write_reproducible_zip(root: Path, destination: Path) -> Path:
    """Zip `root` so that equal trees give byte-identical zips (names, times, modes fixed)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for name, path in bundled_files(root):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            info.external_attr = (0o100000 | FILE_MODE) << 16
            info.create_system = 3  # unix, so the mode above is honoured everywhere
            info.compress_type = zipfile.ZIP_DEFLATED
            if is_install_record(name):
                archive.writestr(info, shipped_record(path.read_bytes()))
                continue
            with path.open("rb") as source, archive.open(info, "w") as target:
                shutil.copyfileobj(source, target, 1024 * 1024)
    partial.replace(destination)
    return destination


def bundle_digest(loader_dir: Path = LOADER_DIR, requirements: Path = LOADER_REQUIREMENTS) -> str:
    """Hash of everything the zip is made of: sources, requirements, pip platform, zip format."""
    digest = hashlib.sha256(f"bundle-format={BUNDLE_FORMAT}\n".encode())
    digest.update(" ".join(PIP_PLATFORM_ARGS).encode() + b"\n")
    digest.update(b"requirements\n" + (requirements.read_bytes() if requirements.exists() else b""))
    for name, path in bundled_files(loader_dir):
        digest.update(f"\nloader/{name}\n".encode() + path.read_bytes())
    return digest.hexdigest()[:32]


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
            f"manylinux2014_x86_64, wheels only): {completed.stderr.strip()[-2000:]}"
        )


def build_loader_zip(cache_dir: Path | None = None) -> Path:
    """The loader Lambda zip, built once per content hash and reused from the cache after that."""
    cache = Path(cache_dir or os.environ.get(CACHE_DIR_VARIABLE) or DEFAULT_CACHE_DIR)
    destination = cache / f"loader-{bundle_digest()}.zip"
    if destination.exists():
        return destination
    with tempfile.TemporaryDirectory(prefix="loader-bundle-") as scratch:
        root = Path(scratch) / "root"
        root.mkdir()
        if LOADER_REQUIREMENTS.exists():
            install_requirements(LOADER_REQUIREMENTS, root)
        shutil.copytree(
            LOADER_DIR,
            root / "loader",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        write_reproducible_zip(root, destination)
    return destination
