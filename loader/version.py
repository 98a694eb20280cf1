"""The packaging format version: what the dynamic resource compares to decide a repackage."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from loader.errors import LoaderError

INFERENCE_SCRIPT = Path(__file__).resolve().parent / "code" / "inference.py"
INFERENCE_REQUIREMENTS = INFERENCE_SCRIPT.with_name("requirements.txt")


def inference_script_bytes() -> bytes:
    """The bytes shipped as `code/inference.py`; a clear error if the script is not there."""
    try:
        return INFERENCE_SCRIPT.read_bytes()
    except FileNotFoundError:
        raise LoaderError(
            f"the inference script {INFERENCE_SCRIPT} is missing; every artifact ships it as "
            "code/inference.py, so the loader cannot package a model without it",
            step="format-version",
        ) from None


def inference_requirements_bytes() -> bytes | None:
    """`code/requirements.txt` bytes when the inference script needs extra packages, else None."""
    try:
        return INFERENCE_REQUIREMENTS.read_bytes()
    except FileNotFoundError:
        return None


@cache
def format_version() -> str:
    """Hash of the layout version and the shipped code: any change to either repackages."""
    from loader import LAYOUT_VERSION

    digest = hashlib.sha256(f"layout={LAYOUT_VERSION}\n".encode())
    digest.update(b"code/inference.py\n" + inference_script_bytes())
    requirements = inference_requirements_bytes()
    if requirements is not None:
        digest.update(b"code/requirements.txt\n" + requirements)
    return f"{LAYOUT_VERSION}-{digest.hexdigest()[:16]}"
