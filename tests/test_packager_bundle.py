"""The loader Lambda zip: reproducible bytes, what goes in, and the content-addressed cache.

No pip and no network here: the zip writer runs on prepared trees, and the cache test primes the
cache with the file `build_loader_zip` would otherwise build.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from components import loader_bundle
from components.loader_bundle import (
    ZIP_TIMESTAMP,
    build_loader_zip,
    bundle_digest,
    write_reproducible_zip,
)


def make_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


TREE = {
    "loader/__init__.py": b"",
    "loader/handler.py": b"def handler(event, context):\n    return event\n",
    "huggingface_hub/__init__.py": b"__version__ = '2.4.0'\n",
    "huggingface_hub-2.4.0.dist-info/METADATA": b"Name: huggingface_hub\n",
}


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_tree_gives_byte_identical_zip_despite_times_and_modes(tmp_path: Path) -> None:
    first = make_tree(tmp_path / "a", TREE)
    second = make_tree(tmp_path / "b", dict(reversed(list(TREE.items()))))
    for path in second.rglob("*"):
        if path.is_file():
            os.utime(path, (1_700_000_000, 1_700_000_000))
            path.chmod(0o755)
    zip_a = write_reproducible_zip(first, tmp_path / "a.zip")
    zip_b = write_reproducible_zip(second, tmp_path / "b.zip")
    assert sha256_of(zip_a) == sha256_of(zip_b)


def test_changed_content_changes_the_zip(tmp_path: Path) -> None:
    before = write_reproducible_zip(make_tree(tmp_path / "a", TREE), tmp_path / "a.zip")
    changed = TREE | {"loader/handler.py": b"def handler(event, context):\n    return None\n"}
    after = write_reproducible_zip(make_tree(tmp_path / "b", changed), tmp_path / "b.zip")
    assert sha256_of(before) != sha256_of(after)


def test_zip_entries_are_sorted_with_fixed_time_and_mode(tmp_path: Path) -> None:
    archive = write_reproducible_zip(make_tree(tmp_path / "t", TREE), tmp_path / "t.zip")
    with zipfile.ZipFile(archive) as opened:
        infos = opened.infolist()
    assert [info.filename for info in infos] == sorted(TREE)
    assert {info.date_time for info in infos} == {ZIP_TIMESTAMP}
    assert {(info.external_attr >> 16) & 0o777 for info in infos} == {0o644}


def test_bytecode_caches_and_scripts_are_left_out(tmp_path: Path) -> None:
    noisy = TREE | {
        "loader/__pycache__/handler.cpython-312.pyc": b"\x00",
        "bin/hf": b"#!/home/someone/.venv/bin/python\n",
        "huggingface_hub/legacy.pyc": b"\x00",
    }
    archive = write_reproducible_zip(make_tree(tmp_path / "t", noisy), tmp_path / "t.zip")
    with zipfile.ZipFile(archive) as opened:
        assert sorted(opened.namelist()) == sorted(TREE)


def test_zip_is_written_whole_or_not_at_all(tmp_path: Path) -> None:
    destination = tmp_path / "out.zip"
    write_reproducible_zip(make_tree(tmp_path / "t", TREE), destination)
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".partial"] == []
    assert zipfile.is_zipfile(destination)


def test_digest_follows_loader_sources_and_requirements(tmp_path: Path) -> None:
    loader_dir = make_tree(tmp_path / "loader", {"handler.py": b"x = 1\n"})
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("huggingface_hub==2.4.0\n")
    original = bundle_digest(loader_dir, requirements)
    assert bundle_digest(loader_dir, requirements) == original
    requirements.write_text("huggingface_hub==2.4.1\n")
    assert bundle_digest(loader_dir, requirements) != original
    requirements.write_text("huggingface_hub==2.4.0\n")
    (loader_dir / "handler.py").write_text("x = 2\n")
    assert bundle_digest(loader_dir, requirements) != original


def test_cached_zip_is_reused_without_running_pip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = tmp_path / f"loader-{bundle_digest()}.zip"
    cached.write_bytes(b"prebuilt")

    def no_pip(requirements: Path, target: Path) -> None:
        raise AssertionError("pip ran although the cache held the zip")

    monkeypatch.setattr(loader_bundle, "install_requirements", no_pip)
    monkeypatch.setenv(loader_bundle.CACHE_DIR_VARIABLE, str(tmp_path))
    assert build_loader_zip() == cached
    assert cached.read_bytes() == b"prebuilt"


def test_pip_failure_names_the_requirements_and_target_platform(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    # `--no-index` keeps pip offline: it fails on resolution, as it would on a missing wheel.
    requirements.write_text("--no-index\nno-such-package-for-the-loader==1.0\n")
    with pytest.raises(loader_bundle.BundleError) as failure:
        loader_bundle.install_requirements(requirements, tmp_path / "target")
    message = str(failure.value)
    assert str(requirements) in message
    assert "manylinux2014_x86_64" in message
    assert "no-such-package-for-the-loader" in message


def test_install_records_drop_console_scripts_that_embed_the_local_interpreter(
    tmp_path: Path,
) -> None:
    def record(script_hash: str) -> bytes:
        return (
            "idna/__init__.py,sha256=abc,849\n"
            f"../../bin/idna,sha256={script_hash},166\n"
            "idna-3.20.dist-info/RECORD,,\n"
        ).encode()

    first = make_tree(tmp_path / "a", TREE | {"idna-3.20.dist-info/RECORD": record("one")})
    second = make_tree(tmp_path / "b", TREE | {"idna-3.20.dist-info/RECORD": record("two")})
    zip_a = write_reproducible_zip(first, tmp_path / "a.zip")
    zip_b = write_reproducible_zip(second, tmp_path / "b.zip")
    assert sha256_of(zip_a) == sha256_of(zip_b)
    with zipfile.ZipFile(zip_a) as opened:
        shipped = opened.read("idna-3.20.dist-info/RECORD").decode()
    assert shipped == "idna/__init__.py,sha256=abc,849\nidna-3.20.dist-info/RECORD,,\n"
