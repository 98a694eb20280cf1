"""The proxy Lambda's code: `proxy/` and the `facts/` it imports, as a reproducible zip.

No pip: the Lambda runtime provides boto3, and both folders use only the standard library besides.
The zip is cached under a content-addressed name, so the function's code changes only when the
code does (components/lambda_zip.py).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from components.lambda_zip import folder_files, write_reproducible_zip

HANDLER = "proxy.handler.handler"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
SOURCE_FOLDERS = ("proxy", "facts")
DEFAULT_CACHE_DIR = PROJECT_ROOT / ".build" / "proxy"


def build_proxy_zip(cache_dir: Path | None = None, root: Path = PROJECT_ROOT) -> Path:
    """The proxy zip, named by the hash of its entries; built only when that name is new."""
    entries = folder_files(root, SOURCE_FOLDERS)
    digest = hashlib.sha256()
    for name, path in sorted(entries.items()):
        digest.update(f"{name}\n".encode() + path.read_bytes() + b"\n")
    destination = (cache_dir or DEFAULT_CACHE_DIR) / f"proxy-{digest.hexdigest()[:32]}.zip"
    if not destination.exists():
        write_reproducible_zip(dict(entries), destination)
    return destination
