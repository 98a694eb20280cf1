"""scripts/dlc_env.py: the DLC stack's venv is keyed by its pins, published whole, and a missing
Java or Python 3.10 is a clear error naming the fix and the opt-out."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts import dlc_env
from scripts.dlc_env import SKIP_VARIABLE, DlcEnvError, Stack


def stack(tmp_path: Path, pins: str) -> Stack:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(pins)
    return Stack("py310", "3.10", requirements)


@pytest.mark.parametrize("name", sorted(dlc_env.STACKS))
def test_every_pin_of_the_repository_is_exact(name: str) -> None:
    for pin in dlc_env.STACKS[name].pins():
        name, _, version = pin.partition("==")
        assert name and version and "<" not in version and ">" not in version, pin


def test_a_changed_pin_is_another_venv(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    one = dlc_env.env_dir(stack(tmp_path, "torch==2.1.0  # the image's\n"))
    same = dlc_env.env_dir(stack(tmp_path, "# a comment\ntorch==2.1.0\n"))
    other = dlc_env.env_dir(stack(tmp_path, "torch==2.1.1\n"))
    assert one == same != other
    assert one.parent == tmp_path / "cache" / "embedding-endpoint"


def test_an_unpublished_build_is_not_used(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    pinned = stack(tmp_path, "torch==2.1.0\n")
    build = dlc_env.cache_root() / "dlc-py310-build-x"
    (build / "bin").mkdir(parents=True)
    (build / "bin" / "python").write_text("")
    assert dlc_env.env_python(pinned) is None  # built, but the link is not there yet
    dlc_env._publish(build, dlc_env.env_dir(pinned))
    assert dlc_env.env_python(pinned) == dlc_env.env_dir(pinned) / "bin" / "python"


def test_no_python_310_names_how_to_get_one_and_the_opt_out(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DlcEnvError) as raised:
        dlc_env.find_interpreter("3.10")
    assert "pyenv install 3.10" in str(raised.value) and SKIP_VARIABLE in str(raised.value)


def test_no_java_names_the_package(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DlcEnvError) as raised:
        dlc_env.java_version()
    assert "openjdk-17-jre-headless" in str(raised.value)


def test_the_command_fails_with_the_message(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert dlc_env.main(["build", "py310"]) == 1
    assert "error: no `java` on PATH" in capsys.readouterr().err
