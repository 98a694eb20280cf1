"""ONNX Runtime and orjson inside an archive's `code/`, unpacked from their PyPI wheels.

The toolkit puts `code/` first on `sys.path`, so nothing is installed or fetched at startup. Only
what `InferenceSession` imports is shipped of ONNX Runtime, and orjson's package with its licenses
(docs/loader.md). The wheels come from `wheels/` of the Lambda zip, else the program's cache
(runner `local`: components/runtime_wheels.py), each checked by its sha256.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

from facts.onnx_runtime import RuntimeWheel
from loader.errors import LoaderError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# In the loader Lambda's zip, beside `loader/`.
BUNDLED_WHEELS = PROJECT_ROOT / "wheels"
# The program's download cache (override with the variable, e.g. to share it across checkouts).
WHEEL_CACHE_VARIABLE = "EMBEDDING_ENDPOINT_WHEEL_CACHE"
DEFAULT_WHEEL_CACHE = PROJECT_ROOT / ".build" / "wheels"
_LICENSES = ("onnxruntime/LICENSE", "onnxruntime/ThirdPartyNotices.txt", "onnxruntime/Privacy.md")
_STEP = "vendor-runtime"


def wheel_cache() -> Path:
    """Where the program keeps downloaded wheels: the variable, else `.build/wheels`."""
    return Path(os.environ.get(WHEEL_CACHE_VARIABLE) or DEFAULT_WHEEL_CACHE)


def is_shipped(member: str) -> bool:
    """True for the wheel members an archive ships (see the module docstring)."""
    if member.startswith("orjson/") or (member.startswith("orjson-") and "/licenses/" in member):
        return not member.endswith("/")
    if member in _LICENSES or member == "onnxruntime/__init__.py":
        return True
    return (
        member.startswith("onnxruntime/capi/")
        and not member.endswith("/")
        and not member.startswith("onnxruntime/capi/libonnxruntime.so")
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def find_wheel(runtime: RuntimeWheel) -> Path:
    """The wheel file (bundled, else cached), verified; LoaderError when absent or altered."""
    places = [BUNDLED_WHEELS / runtime.filename, wheel_cache() / runtime.filename]
    path = next((place for place in places if place.is_file()), None)
    if path is None:
        raise LoaderError(
            f"the ONNX engine's wheel {runtime.filename} is in neither {places[0].parent} nor "
            f"{places[1].parent}: the loader Lambda's code predates the ONNX engine (run "
            "`pulumi up` again to update it), or the local wheel cache was emptied",
            step=_STEP,
        )
    found = sha256_of(path)
    if found != runtime.sha256:
        raise LoaderError(
            f"{path} has sha256 {found}, not the {runtime.sha256} of {runtime.requirement} on "
            "PyPI; delete the file so that it is fetched again",
            step=_STEP,
        )
    return path


def runtime_files(runtime: RuntimeWheel) -> dict[str, bytes]:
    """Archive name (`code/onnxruntime/...`) → bytes of every shipped member of the wheels."""
    files: dict[str, bytes] = {}
    for vendored in runtime.vendored:
        path = find_wheel(vendored)
        with zipfile.ZipFile(path) as wheel:
            names = [name for name in wheel.namelist() if is_shipped(name)]
            files.update({f"code/{name}": wheel.read(name) for name in names})
        if f"code/{vendored.package}/__init__.py" not in files:
            raise LoaderError(f"{path} holds no {vendored.package} package", step=_STEP)
    return dict(sorted(files.items()))
