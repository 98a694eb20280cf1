"""`serve` extracts an archive as the endpoint would use it: files and folders, within limits.

The same on every Python (tarfile's `data` filter is not on all of them).
"""

from __future__ import annotations

import io
import stat
import tarfile
from pathlib import Path

import pytest

from embedding_client import artifact_extract
from embedding_client.artifact_extract import UnsafeArchive, extract_artifact


def archive_of(path: Path, *members: tuple[tarfile.TarInfo, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode = kind, mode
    return info


@pytest.mark.parametrize(
    "kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE]
)
def test_links_devices_and_fifos_are_refused(tmp_path: Path, kind: bytes) -> None:
    special = member("config.json", kind)
    special.linkname = "/etc/passwd"
    archive = archive_of(tmp_path / "a.tar.gz", (special, b""))
    with pytest.raises(UnsafeArchive, match="'config.json' is a link, device or FIFO"):
        extract_artifact(archive, tmp_path / "out")


def test_setuid_and_executable_modes_are_dropped(tmp_path: Path) -> None:
    archive = archive_of(tmp_path / "a.tar.gz", (member("code/run", mode=0o4755), b"#!/bin/sh\n"))
    (tmp_path / "out").mkdir()
    extract_artifact(archive, tmp_path / "out")
    assert stat.S_IMODE((tmp_path / "out" / "code" / "run").stat().st_mode) == 0o644


def test_an_archive_that_unpacks_past_the_limit_is_refused_before_filling_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(artifact_extract, "MAX_EXTRACTED_BYTES", 1000)
    members = [(member(f"w{i}.bin"), bytes(400)) for i in range(3)]
    archive = archive_of(tmp_path / "a.tar.gz", *members)
    (tmp_path / "out").mkdir()
    with pytest.raises(UnsafeArchive, match="more than 1000 bytes"):
        extract_artifact(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "w2.bin").exists()


def test_an_archive_of_too_many_members_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(artifact_extract, "MAX_MEMBERS", 2)
    members = [(member(f"f{i}.txt"), b"x") for i in range(3)]
    archive = archive_of(tmp_path / "a.tar.gz", *members)
    with pytest.raises(UnsafeArchive, match="more than 2 members"):
        extract_artifact(archive, tmp_path / "out")


def test_files_and_folders_are_extracted(tmp_path: Path) -> None:
    archive = archive_of(
        tmp_path / "a.tar.gz",
        (member("1_Pooling", tarfile.DIRTYPE, 0o755), b""),
        (member("1_Pooling/config.json"), b"{}"),
    )
    (tmp_path / "out").mkdir()
    extract_artifact(archive, tmp_path / "out")
    assert (tmp_path / "out" / "1_Pooling" / "config.json").read_bytes() == b"{}"
