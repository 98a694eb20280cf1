"""The code every archive ships in `code/`, and the packaging format version that names it.

`container/*.py` becomes `code/*.py`, and the facts the container imports become `code/facts/`.
The format version hashes the layout version and every shipped byte, so any change to the
container's code repackages (the dynamic resource takes it as an input).
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from loader.errors import LoaderError

# The archive's framing (tar headers, gzip blocks, key layout). 2: headers from `tarfile` (PAX).
LAYOUT_VERSION = "2"

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONTAINER_DIR = PROJECT_ROOT / "container"
FACTS_DIR = PROJECT_ROOT / "facts"
ENTRY_SCRIPT = "inference.py"
# The facts modules `container/*.py` import (standard library only, Python 3.9-compatible).
CONTAINER_FACTS = (
    "__init__.py",
    "batch_transform.py",
    "embedding_api.py",
    "sentence_modules.py",
    "serverless.py",
)


def container_code() -> dict[str, bytes]:
    """Archive name → bytes of everything under `code/`; a clear error if the script is missing."""
    if not (CONTAINER_DIR / ENTRY_SCRIPT).is_file():
        raise LoaderError(
            f"the inference script {CONTAINER_DIR / ENTRY_SCRIPT} is missing; every artifact "
            "ships it as code/inference.py, so the loader cannot package a model without it",
            step="format-version",
        )
    files = {f"code/{path.name}": path.read_bytes() for path in CONTAINER_DIR.glob("*.py")}
    files.update(
        {f"code/facts/{name}": (FACTS_DIR / name).read_bytes() for name in CONTAINER_FACTS}
    )
    return dict(sorted(files.items()))


@cache
def format_version() -> str:
    """Hash of the layout version and the shipped code: any change to either repackages."""
    digest = hashlib.sha256(f"layout={LAYOUT_VERSION}\n".encode())
    for name, data in container_code().items():
        digest.update(f"{name}\n".encode() + data)
    return f"{LAYOUT_VERSION}-{digest.hexdigest()[:16]}"
