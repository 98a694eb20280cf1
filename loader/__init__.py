"""The model loader: Hub snapshot (or a training output) → reproducible model.tar.gz → S3.

Runs inside the loader Lambda and in-process for the `local` runner; never imports Pulumi.
`FORMAT_VERSION` is computed on first access (it hashes `loader/code/inference.py`), so importing
the package works even while that script is missing; reading the version then fails clearly.
"""

from __future__ import annotations

import os

LAYOUT_VERSION = "2"

# huggingface_hub reads HF_HOME at import; the Lambda's home directory is read-only.
if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    os.environ.setdefault("HF_HOME", "/tmp/hf_home")


def __getattr__(name: str) -> str:
    if name == "FORMAT_VERSION":
        from loader.version import format_version

        return format_version()
    raise AttributeError(f"module 'loader' has no attribute {name!r}")
