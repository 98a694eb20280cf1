"""The wheels an ONNX archive vendors for the image's Python, fetched from PyPI once, cached.

ONNX Runtime and orjson beside it (facts/onnx_runtime.py). pip downloads the exact files named
there (CPU, manylinux x86_64, no dependencies: ONNX Runtime needs only numpy, which every DLC
has); a sha256 mismatch is deleted and refused.

    python -m components.runtime_wheels 3.9 3.11   # prime the cache (what `make venv` does)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from facts.onnx_runtime import RUNTIME_WHEELS, RuntimeWheel
from loader.vendored_runtime import sha256_of, wheel_cache


class RuntimeWheelError(RuntimeError):
    """The wheel could not be fetched or is not the pinned file; the message says which."""


def pip_download_command(runtime: RuntimeWheel, destination: Path) -> list[str]:
    """pip, asked for exactly this wheel for the container's platform (not this machine's)."""
    return [
        *(sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"),
        *("--no-deps", "--only-binary=:all:", "--implementation", "cp"),
        *[argument for tag in runtime.platforms for argument in ("--platform", tag)],
        *("--python-version", runtime.python, "--dest", str(destination), runtime.requirement),
    ]


def ensure_wheels(runtime: RuntimeWheel, cache_dir: Path | None = None) -> list[Path]:
    """`ensure_wheel` for the wheel and each of its companions (every one the archive vendors)."""
    return [ensure_wheel(wheel, cache_dir) for wheel in runtime.vendored]


def ensure_wheel(runtime: RuntimeWheel, cache_dir: Path | None = None) -> Path:
    """The cached wheel, downloaded first when missing; RuntimeWheelError if it is not pinned."""
    cache = cache_dir or wheel_cache()
    destination = cache / runtime.filename
    if destination.is_file() and sha256_of(destination) == runtime.sha256:
        return destination
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="runtime-wheel-", dir=cache) as scratch:
        completed = subprocess.run(
            pip_download_command(runtime, Path(scratch)),
            capture_output=True,
            text=True,
            check=False,
        )
        downloaded = Path(scratch) / runtime.filename
        if completed.returncode != 0 or not downloaded.is_file():
            raise RuntimeWheelError(
                f"pip could not download {runtime.filename} ({runtime.requirement} for Python "
                f"{runtime.python}, manylinux x86_64) from PyPI, which the ONNX engine ships in "
                "the archive; set inferenceEngine torch to deploy without it. pip said: "
                f"{completed.stderr.strip()[-2000:] or 'no such file'}"
            )
        found = sha256_of(downloaded)
        if found != runtime.sha256:
            raise RuntimeWheelError(
                f"PyPI served {runtime.filename} with sha256 {found}, not the pinned "
                f"{runtime.sha256} (facts/onnx_runtime.py); refusing it"
            )
        downloaded.replace(destination)  # same filesystem: readers never see a partial file
    return destination


def main(argv: list[str]) -> int:
    """Prime the cache with the wheels for the given Pythons (default: every known one)."""
    for python in argv or sorted(RUNTIME_WHEELS):
        runtime = RUNTIME_WHEELS.get(python)
        if runtime is None:
            print(f"no ONNX Runtime wheel is known for Python {python}", file=sys.stderr)
            return 2
        print(*ensure_wheels(runtime), sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
