"""The loader Lambda's lock file: every dependency pinned with its wheel's sha256, for the Lambda.

That Lambda holds the Hub token and writes the artifacts, so nothing in it comes at "whatever
version is current". Regenerate after changing loader/requirements.txt (a test fails until then):

    python -m components.loader_lock
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from components.lambda_zip import tree_files
from loader.vendored_runtime import sha256_of

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LOADER_REQUIREMENTS = PROJECT_ROOT / "loader" / "requirements.txt"
LOADER_LOCK = PROJECT_ROOT / "loader" / "requirements.lock"
INSTALLED_HEADER = "# installed-files-sha256: "
# What pip writes into a dist-info itself (not the wheel's files): left out of the files digest,
# as it may differ between pip versions and is never imported.
_PIP_METADATA = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;]+)")
_HASH = re.compile(r"--hash=sha256:(?P<hex>[0-9a-f]{64})")


PIP_PLATFORM_ARGS = (
    *("--platform", "manylinux2014_x86_64"),
    # numpy, onnx and onnxruntime publish manylinux_2_28 wheels only; the python3.12 runtime
    # (Amazon Linux 2023) has glibc 2.34.
    *("--platform", "manylinux_2_28_x86_64"),
    *("--implementation", "cp", "--python-version", "3.12", "--only-binary=:all:"),
)


def pip_install_command(lock: Path, target: Path) -> list[str]:
    """pip installing `lock` into `target` for the Lambda's platform: hash-checked, no resolving."""
    return [
        *(sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"),
        *("--no-compile", "--target", str(target), *PIP_PLATFORM_ARGS),
        *("--require-hashes", "--no-deps", "--requirement", str(lock)),
    ]


class LockError(ValueError):
    """The lock file is malformed or out of step with loader/requirements.txt."""


@dataclass(frozen=True)
class LoaderLock:
    """Pinned versions (by normalized name), their wheel hashes, and the installed files' sha256."""

    versions: Mapping[str, str]
    hashes: Mapping[str, tuple[str, ...]]
    installed_sha256: str


def normalized(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(text: str) -> dict[str, str]:
    """`name==version` lines of a requirements text, by normalized name."""
    found = {}
    for line in text.splitlines():
        match = _PIN.match(line.strip())
        if match:
            found[normalized(match["name"])] = match["version"]
    return found


def parse_lock(text: str) -> LoaderLock:
    """The lock's pins, hashes and installed-files sha256; LockError naming what is wrong."""
    versions, hashes, installed = {}, {}, None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith(INSTALLED_HEADER):
            installed = line[len(INSTALLED_HEADER) :].strip()
        if not line.strip() or line.startswith("#"):
            continue
        match = _PIN.match(line)
        digests = tuple(m["hex"] for m in _HASH.finditer(line))
        if match is None or not digests:
            raise LockError(f"line {number} is not `name==version --hash=sha256:<hex>`: {line!r}")
        versions[normalized(match["name"])] = match["version"]
        hashes[normalized(match["name"])] = digests
    if installed is None or not re.fullmatch(r"[0-9a-f]{64}", installed):
        raise LockError(f"the lock has no `{INSTALLED_HEADER.strip()} <64 hex>` line")
    return LoaderLock(versions, hashes, installed)


def read_lock(path: Path | None = None) -> LoaderLock:
    return parse_lock((path or LOADER_LOCK).read_text(encoding="utf-8"))


def dist_info_file(name: str) -> str | None:
    """The file's name when `name` is a file of a dist-info folder (`<dist>.dist-info/RECORD`)."""
    folder, _, file = name.partition("/")
    return file if folder.endswith(".dist-info") and "/" not in file else None


def installed_files_sha256(files: Iterable[tuple[str, str]]) -> str:
    """One sha256 over (zip name, sha256 hex) of the installed files, pip's own metadata aside."""
    digest = hashlib.sha256()
    for name, sha in sorted(item for item in files if dist_info_file(item[0]) not in _PIP_METADATA):
        digest.update(f"{name}\0{sha}\n".encode())
    return digest.hexdigest()


def resolve(requirements: Path) -> list[tuple[str, str, str]]:
    """(name, version, wheel sha256) of everything pip installs for the Lambda's platform."""
    with tempfile.TemporaryDirectory(prefix="loader-lock-") as scratch:
        report = Path(scratch) / "report.json"
        command = [
            *(sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"),
            *("--dry-run", "--ignore-installed", "--report", str(report)),
            *("--target", str(Path(scratch) / "target"), *PIP_PLATFORM_ARGS),
            *("--requirement", str(requirements)),
        ]
        subprocess.run(command, check=True)
        installs = json.loads(report.read_text())["install"]
    return sorted(
        (
            item["metadata"]["name"],
            item["metadata"]["version"],
            item["download_info"]["archive_info"]["hashes"]["sha256"],
        )
        for item in installs
    )


def render(resolved: Iterable[tuple[str, str, str]], installed_sha256: str) -> str:
    lines = [
        "# The loader Lambda's dependencies for CPython 3.12 on manylinux x86_64, every one pinned",
        "# with its wheel's sha256 (installed with --require-hashes --no-deps). Generated from",
        "# loader/requirements.txt by `python -m components.loader_lock`; do not edit.",
        f"{INSTALLED_HEADER}{installed_sha256}",
        *(f"{name}=={version} --hash=sha256:{sha}" for name, version, sha in resolved),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Resolve loader/requirements.txt, install the lock as the zip does, record both."""
    resolved = resolve(LOADER_REQUIREMENTS)
    with tempfile.TemporaryDirectory(prefix="loader-lock-") as scratch:
        draft = Path(scratch) / "requirements.lock"
        draft.write_text(render(resolved, "0" * 64))
        target = Path(scratch) / "target"
        subprocess.run(pip_install_command(draft, target), check=True)
        # The files the zip ships (components/lambda_zip.py leaves caches, scripts, tests out).
        files = [(name, sha256_of(path)) for name, path in tree_files(target)]
    installed = installed_files_sha256(files)
    LOADER_LOCK.write_text(render(resolved, installed))
    print(f"wrote {LOADER_LOCK.relative_to(PROJECT_ROOT)}: {len(resolved)} packages")


if __name__ == "__main__":
    main()
