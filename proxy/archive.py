"""Build the proxy Lambda's code as a deterministic zip, without pip (boto3 is in the runtime).

Same sources → same bytes (sorted entries, fixed timestamps and modes), so the function's
`source_code_hash` changes only when the code does. Not shipped in the archive itself.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
import zipfile
from pathlib import Path

HANDLER = "proxy.handler.handler"
REPO_ROOT = Path(__file__).resolve().parent.parent
# Archive name → source file, relative to the repository root.
SOURCES = (
    "proxy/__init__.py",
    "proxy/handler.py",
    "proxy/request.py",
    "proxy/upstream.py",
    "embedding_endpoint/bedrock_formats.py",
)
# The client package's real __init__ may import what the Lambda runtime lacks; the proxy needs
# only bedrock_formats, so the archive carries an empty package marker instead.
SYNTHETIC = {
    "embedding_endpoint/__init__.py": b'"""Only bedrock_formats is shipped with the proxy."""\n',
}
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o100644 << 16


def archive_entries(root: Path = REPO_ROOT) -> dict[str, bytes]:
    """Every file of the archive with its content, by archive name."""
    entries = {name: (root / name).read_bytes() for name in SOURCES}
    entries.update(SYNTHETIC)
    return entries


def build_archive(root: Path = REPO_ROOT) -> bytes:
    """The zip bytes: entries sorted, timestamps and permissions fixed."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in sorted(archive_entries(root).items()):
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.external_attr = _FILE_MODE
            info.create_system = 3  # unix, so the mode bits are honoured
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data, compresslevel=9)
    return buffer.getvalue()


def write_archive(out_dir: Path | None = None, root: Path = REPO_ROOT) -> tuple[Path, str]:
    """Write the archive under a content-addressed name; returns (path, sha256 hex)."""
    data = build_archive(root)
    digest = hashlib.sha256(data).hexdigest()
    directory = out_dir or Path(tempfile.gettempdir()) / "embedding-endpoint-build"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"embed-proxy-{digest[:16]}.zip"
    if not path.exists() or path.read_bytes() != data:
        partial = path.with_suffix(".zip.partial")
        partial.write_bytes(data)
        partial.replace(path)
    return path, digest
