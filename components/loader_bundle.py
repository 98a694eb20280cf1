"""The loader Lambda's code: `loader/`, `container/`, `facts/` and their requirements, zipped.

With the ONNX engine, also the wheels its archives vendor for the image's Python (`wheels/`). pip
installs for Lambda's platform (manylinux x86_64, CPython 3.12, hashes from
loader/requirements.lock); the zip is reproducible and cached by a hash of its inputs
(docs/packager.md).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import subprocess
import tempfile
import zipfile
from pathlib import Path

from components import loader_lock
from components.lambda_zip import folder_files, tree_files, write_reproducible_zip
from components.loader_lock import PIP_PLATFORM_ARGS, dist_info_file
from components.runtime_wheels import ensure_wheel
from facts.onnx_runtime import RuntimeWheel
from loader.vendored_runtime import BUNDLED_WHEELS

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The folders the Lambda runs from: the loader, what it packages into `code/`, what both import.
SOURCE_FOLDERS = ("loader", "container", "facts")
DEFAULT_CACHE_DIR = PROJECT_ROOT / ".build" / "loader"
# Override the cache folder (e.g. to share prebuilt zips across checkouts or CI jobs).
CACHE_DIR_VARIABLE = "EMBEDDING_ENDPOINT_LOADER_CACHE"

# Part of the cache key: bump when the way the zip is assembled changes.
BUNDLE_FORMAT = "4"

log = logging.getLogger(__name__)


class BundleError(RuntimeError):
    """The loader zip could not be built; the message says which step and why."""


def shipped_record(record: bytes) -> bytes:
    """A RECORD without the console scripts pip put outside the target (`../../bin/...`).

    Their recorded hashes depend on the local interpreter's path: two builds would differ.
    """
    lines = record.decode("utf-8").splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("../")).encode("utf-8")


def zip_entries(root: Path) -> dict[str, Path | bytes]:
    """The files under `root` by archive name, RECORD files without their outside scripts."""
    return {
        name: shipped_record(path.read_bytes()) if dist_info_file(name) == "RECORD" else path
        for name, path in tree_files(root)
    }


def bundle_digest(
    root: Path = PROJECT_ROOT, runtime: RuntimeWheel | None = None, lock: Path | None = None
) -> str:
    """Hash of everything the zip is made of: sources, lock file, pip platform, zip format."""
    lock = lock or loader_lock.LOADER_LOCK
    digest = hashlib.sha256(f"bundle-format={BUNDLE_FORMAT}\n".encode())
    if runtime is not None:
        digest.update(f"wheel={runtime.identity}\n".encode())
    digest.update(" ".join(PIP_PLATFORM_ARGS).encode() + b"\n")
    digest.update(b"requirements\n" + lock.read_bytes())
    for name, path in folder_files(root, SOURCE_FOLDERS).items():
        digest.update(f"\n{name}\n".encode() + path.read_bytes())
    return digest.hexdigest()[:32]


def zip_sha256_base64(path: Path) -> str:
    """The zip's sha256 as Lambda reports it (`CodeSha256`): how the function sees new code."""
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode("ascii")


def install_requirements(requirements: Path, target: Path) -> None:
    """pip-install the loader's lock file for the Lambda's platform into `target`, hash-checked."""
    command = loader_lock.pip_install_command(requirements, target)
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise BundleError(
            f"pip could not install {requirements} for the loader Lambda (python 3.12, "
            f"manylinux x86_64, wheels only): {completed.stderr.strip()[-2000:]}"
        )


def _file_sha256(opened: zipfile.ZipFile, name: str) -> str:
    digest = hashlib.sha256()
    with opened.open(name) as member:
        while chunk := member.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def cached_zip_problem(path: Path, runtime: RuntimeWheel | None) -> str | None:
    """What in a cached zip is not what the zip should contain (None: nothing)."""
    sources = {
        name: hashlib.sha256(file.read_bytes()).hexdigest()
        for name, file in folder_files(PROJECT_ROOT, SOURCE_FOLDERS).items()
    }
    vendored = runtime.vendored if runtime else ()
    wheels = {f"{BUNDLED_WHEELS.name}/{wheel.filename}": wheel.sha256 for wheel in vendored}
    try:
        with zipfile.ZipFile(path) as opened:
            names = opened.namelist()
            found = {name: _file_sha256(opened, name) for name in names}
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as error:
        return f"it is not a readable zip ({error})"
    if len(found) != len(names):
        return "it holds an entry twice"
    roots = {*SOURCE_FOLDERS, BUNDLED_WHEELS.name}
    ours = {name: sha for name, sha in found.items() if name.split("/")[0] in roots}
    expected = {**sources, **wheels}
    # A zip without the wheel runs no code of anyone's: the loader fails naming the wheel.
    differ = sorted(
        {n for n, sha in ours.items() if expected.get(n) != sha} | sources.keys() - ours.keys()
    )
    if differ:
        return f"{differ[0]} is not this checkout's file (or the pinned wheel)"
    packages = [(name, sha) for name, sha in found.items() if name.split("/")[0] not in roots]
    expected_files = loader_lock.read_lock().installed_sha256
    if loader_lock.installed_files_sha256(packages) != expected_files:
        return f"its installed packages are not the files {loader_lock.LOADER_LOCK.name} installs"
    return None


def build_loader_zip(cache_dir: Path | None = None, runtime: RuntimeWheel | None = None) -> Path:
    """The loader Lambda zip, built once per content hash and reused from the cache after that.

    A cached zip that is not what it should be is rebuilt, or refused in a shared cache
    (`EMBEDDING_ENDPOINT_LOADER_CACHE`), which someone else can write: that Lambda holds the token.
    """
    shared = cache_dir is None and bool(os.environ.get(CACHE_DIR_VARIABLE))
    cache = Path(cache_dir or os.environ.get(CACHE_DIR_VARIABLE) or DEFAULT_CACHE_DIR)
    destination = cache / f"loader-{bundle_digest(runtime=runtime)}.zip"
    if destination.exists():
        problem = cached_zip_problem(destination, runtime)
        if problem is None:
            return destination
        if shared:
            raise BundleError(
                f"the cached loader zip {destination} does not match this checkout: {problem}. "
                f"Someone may have changed it: delete it (or unset {CACHE_DIR_VARIABLE}) to "
                "build it here"
            )
        log.warning("rebuilding the cached loader zip %s: %s", destination, problem)
    with tempfile.TemporaryDirectory(prefix="loader-bundle-") as scratch:
        installed = Path(scratch)
        install_requirements(loader_lock.LOADER_LOCK, installed)
        entries = zip_entries(installed)
        for wheel in runtime.vendored if runtime is not None else ():
            entries[f"{BUNDLED_WHEELS.name}/{wheel.filename}"] = ensure_wheel(wheel)
        entries.update(folder_files(PROJECT_ROOT, SOURCE_FOLDERS))
        write_reproducible_zip(entries, destination)
    return destination
