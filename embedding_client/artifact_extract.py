"""Extract a model.tar.gz for `serve`: regular files and folders only, inside limits, on any Python.

The archive may come from anyone's bucket. tarfile's own `data` filter is not on every Python the
client supports, and without it `extractall` creates links, device files and FIFOs and keeps
setuid modes. So every member is checked and written here: a path inside the model directory,
a regular file or folder, files with mode 0644, at most MAX_MEMBERS members and
MAX_EXTRACTED_BYTES in all (a `.tar.gz` bomb would fill the disk). The limits are above what an
endpoint can hold: a serverless endpoint has 5 GB of disk for its model.
"""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

MAX_EXTRACTED_BYTES = 10 * 1024**3
MAX_MEMBERS = 100_000
FILE_MODE = 0o644


class UnsafeArchive(ValueError):
    """A member or the archive as a whole is refused; the message names which and why."""


def _checked_target(member: tarfile.TarInfo, root: Path) -> Path:
    target = (root / member.name).resolve()
    if root not in (target, *target.parents):
        raise UnsafeArchive(f"member {member.name!r} would land outside the model directory")
    if not (member.isfile() or member.isdir()):
        raise UnsafeArchive(
            f"member {member.name!r} is a link, device or FIFO; only files and folders are served"
        )
    return target


def extract_artifact(archive: Path, destination: Path) -> None:
    """Extract `archive` into `destination`, or UnsafeArchive naming the member or the limit."""
    root = destination.resolve()
    total = count = 0
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            count += 1
            total += member.size if member.isfile() else 0
            if count > MAX_MEMBERS:
                raise UnsafeArchive(f"it has more than {MAX_MEMBERS} members")
            if total > MAX_EXTRACTED_BYTES:
                raise UnsafeArchive(f"it unpacks to more than {MAX_EXTRACTED_BYTES} bytes")
            target = _checked_target(member, root)
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            assert source is not None  # regular files always have one
            with source, target.open("wb") as out:
                shutil.copyfileobj(source, out, 1024 * 1024)
            target.chmod(FILE_MODE)
