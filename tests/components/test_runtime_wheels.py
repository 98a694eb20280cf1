"""Fetching the ONNX engine's wheels: the exact pinned files for the container's platform, once.

PyPI cannot be reached from tests, so pip is replaced by a stand-in that writes what a download
would (or fails as pip does); the cache and the sha256 check are the real ones.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from components import runtime_wheels
from components.runtime_wheels import RuntimeWheelError, ensure_wheel, pip_download_command
from facts.onnx_runtime import RUNTIME_WHEELS, RuntimeWheel
from loader.vendored_runtime import wheel_cache


def fake_pip(monkeypatch: pytest.MonkeyPatch, write: bytes | Path | None) -> list[list[str]]:
    """Replace pip: record each command and put `write` (bytes or a file) where it downloads."""
    calls: list[list[str]] = []

    def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        calls.append(command)
        if write is None:
            return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution")
        destination = Path(command[command.index("--dest") + 1])
        python = command[command.index("--python-version") + 1]
        target = destination / RUNTIME_WHEELS[python].filename
        if isinstance(write, Path):
            shutil.copyfile(write, target)
        else:
            target.write_bytes(write)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(runtime_wheels.subprocess, "run", run)
    return calls


def test_pip_is_asked_for_the_containers_platform_not_this_machines() -> None:
    command = pip_download_command(RUNTIME_WHEELS["3.10"], Path("/tmp/x"))
    assert command[-1] == "onnxruntime==1.23.2"
    for flag in ("--no-deps", "--only-binary=:all:"):
        assert flag in command
    assert command[command.index("--python-version") + 1] == "3.10"
    platforms = [command[i + 1] for i, flag in enumerate(command) if flag == "--platform"]
    assert platforms == ["manylinux_2_27_x86_64", "manylinux_2_28_x86_64"]
    assert command[command.index("--implementation") + 1] == "cp"


def test_orjson_is_asked_for_with_its_own_wheels_platform_tags() -> None:
    (orjson,) = RUNTIME_WHEELS["3.10"].companions
    command = pip_download_command(orjson, Path("/tmp/x"))
    assert command[-1] == "orjson==3.13.0"
    platforms = [command[i + 1] for i, flag in enumerate(command) if flag == "--platform"]
    assert platforms == ["manylinux_2_17_x86_64", "manylinux2014_x86_64"]


def test_a_cached_wheel_is_used_without_pip(
    monkeypatch: pytest.MonkeyPatch, this_python_runtime: RuntimeWheel
) -> None:
    calls = fake_pip(monkeypatch, None)
    assert ensure_wheel(this_python_runtime) == wheel_cache() / this_python_runtime.filename
    assert calls == []


def test_a_missing_wheel_is_downloaded_into_the_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, this_python_runtime: RuntimeWheel
) -> None:
    calls = fake_pip(monkeypatch, wheel_cache() / this_python_runtime.filename)
    path = ensure_wheel(this_python_runtime, tmp_path)
    assert path == tmp_path / this_python_runtime.filename
    assert len(calls) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [this_python_runtime.filename]


def test_a_download_with_other_bytes_is_refused_and_not_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_pip(monkeypatch, b"not the wheel")
    runtime = RUNTIME_WHEELS["3.12"]
    with pytest.raises(RuntimeWheelError, match=f"not the pinned {runtime.sha256}"):
        ensure_wheel(runtime, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_pip_failure_says_what_was_asked_and_how_to_do_without(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_pip(monkeypatch, None)
    with pytest.raises(RuntimeWheelError) as failure:
        ensure_wheel(RUNTIME_WHEELS["3.9"], tmp_path)
    message = str(failure.value)
    assert "onnxruntime==1.19.2" in message and "Python 3.9" in message
    assert "inferenceEngine torch" in message and "No matching distribution" in message
