"""One recipe for reproducible Lambda zips: the same files give the same bytes.

Entries are sorted by name, every timestamp is 1980-01-01 00:00 (the earliest a zip can hold) and
every mode 0644, so Pulumi sees a code change only when the code changes. Used by the loader's
and the proxy's bundles; build-time only, never shipped.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
# Nothing here is needed at run time, and each may differ between two otherwise equal builds.
EXCLUDED_DIRS = frozenset({"__pycache__", "bin", "tests"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo")


def tree_files(root: Path) -> Iterator[tuple[str, Path]]:
    """(archive name, path) of every file under `root` that belongs in a zip, sorted by name."""
    entries = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [name for name in subdirs if name not in EXCLUDED_DIRS]
        for name in files:
            if not name.endswith(EXCLUDED_SUFFIXES):
                path = Path(directory) / name
                entries.append((path.relative_to(root).as_posix(), path))
    yield from sorted(entries)


def folder_files(root: Path, folders: Iterable[str]) -> dict[str, Path]:
    """Every file of `folders` under `root` by archive name (`folder/name`), in order."""
    return {
        f"{folder}/{name}": path for folder in folders for name, path in tree_files(root / folder)
    }


def write_reproducible_zip(entries: Mapping[str, Path | bytes], destination: Path) -> Path:
    """Zip `entries` (archive name → file or bytes) at `destination`, written atomically."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            info.external_attr = (0o100000 | FILE_MODE) << 16
            info.create_system = 3  # unix, so the mode above is honoured everywhere
            info.compress_type = zipfile.ZIP_DEFLATED
            content = entries[name]
            if isinstance(content, bytes):
                archive.writestr(info, content)
                continue
            with content.open("rb") as source, archive.open(info, "w") as target:
                shutil.copyfileobj(source, target, 1024 * 1024)
    partial.replace(destination)
    return destination
