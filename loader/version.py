"""The code every archive ships in `code/`, and the packaging format version that names it.

`container/` becomes `code/`, its facts `code/facts/`, ONNX Runtime `code/onnxruntime/` (ONNX
archives). The format version hashes the layout, the shipped code and the wheel's name and sha256:
any change repackages.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from facts.onnx_fusion import fusion_identity
from facts.onnx_quantization import NO_QUANTIZATION, quantization_identity
from facts.onnx_runtime import RuntimeWheel
from loader.errors import LoaderError
from loader.vendored_runtime import runtime_files

# The archive's framing (tar headers, gzip blocks, key layout). 2: headers from `tarfile` (PAX).
# 3: the format version is a folder of the key (facts/artifact_keys.py), so keys are immutable.
LAYOUT_VERSION = "3"

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONTAINER_DIR = PROJECT_ROOT / "container"
FACTS_DIR = PROJECT_ROOT / "facts"
ENTRY_SCRIPT = "inference.py"
# What fuses a graph: its bytes are part of the format version of the archives it fuses.
FUSION_CODE = (
    PROJECT_ROOT / "loader" / "graph_fusion.py",
    PROJECT_ROOT / "loader" / "pooling_head.py",
)
# What quantizes a graph: the same, for the archives whose graph is int8.
QUANTIZATION_CODE = PROJECT_ROOT / "loader" / "graph_quantization.py"
# The facts modules the container's code imports (standard library only, Python 3.9-compatible).
CONTAINER_FACTS = (
    "__init__.py",
    "batch_transform.py",
    "embedding_api.py",
    "model_code.py",
    "onnx_external_data.py",
    "onnx_runtime.py",
    "sagemaker_endpoints.py",
    "sentence_modules.py",
    "serverless.py",
    "weight_files.py",
)


def container_code(runtime: RuntimeWheel | None = None) -> dict[str, bytes]:
    """Archive name → bytes of everything under `code/` (with `runtime`: ONNX Runtime too)."""
    if not (CONTAINER_DIR / ENTRY_SCRIPT).is_file():
        raise LoaderError(
            f"the inference script {CONTAINER_DIR / ENTRY_SCRIPT} is missing; every artifact "
            "ships it as code/inference.py, so the loader cannot package a model without it",
            step="format-version",
        )
    files = {
        f"code/{path.relative_to(CONTAINER_DIR).as_posix()}": path.read_bytes()
        for path in CONTAINER_DIR.rglob("*.py")
    }
    files.update(
        {f"code/facts/{name}": (FACTS_DIR / name).read_bytes() for name in CONTAINER_FACTS}
    )
    if runtime is not None:
        files.update(runtime_files(runtime))
    return dict(sorted(files.items()))


@cache
def format_version(
    runtime: RuntimeWheel | None = None,
    fusion: bool | None = False,
    quantization: str = NO_QUANTIZATION,
) -> str:
    """Hash of the layout version, the shipped code and the vendored runtime (name + sha256).

    The wheel is named, not read (the program has not downloaded it; the loader checks its sha256).
    With `fusion`, also the optimizer's versions and the fusing code; with `quantization` int8,
    the quantizer's versions and the quantizing code.
    """
    digest = hashlib.sha256(f"layout={LAYOUT_VERSION}\n".encode())
    for name, data in container_code().items():
        digest.update(f"{name}\n".encode() + data)
    if runtime is not None:
        digest.update(f"runtime={runtime.identity}\n".encode())
    if runtime is not None and fusion:
        digest.update(f"fusion={fusion_identity()}\n".encode())
        for path in FUSION_CODE:
            digest.update(path.read_bytes())
    if runtime is not None and quantization != NO_QUANTIZATION:
        identity = f"quantization={quantization}:{quantization_identity()}\n"
        digest.update(identity.encode() + QUANTIZATION_CODE.read_bytes())
    return f"{LAYOUT_VERSION}-{digest.hexdigest()[:16]}"
