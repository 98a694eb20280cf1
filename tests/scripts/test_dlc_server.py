"""scripts/dlc_server.py: one model server per machine, since the toolkit finds its own by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts import dlc_server
from scripts.dlc_env import STACKS, DlcEnvError


def fake_proc(root: Path, commands: dict[int, bytes]) -> Path:
    for pid, command in commands.items():
        (root / str(pid)).mkdir(parents=True)
        (root / str(pid) / "cmdline").write_bytes(command)
    (root / "self").mkdir()
    return root


def test_model_servers_are_found_by_the_class_the_toolkit_looks_for(tmp_path: Path):
    java = b"java\0-cp\0mms.jar\0com.amazonaws.ml.mms.ModelServer\0--foreground\0"
    pgrep = b"pgrep\0-f\0com.amazonaws.ml.mms.ModelServer --foreground\0"  # not a server
    proc = fake_proc(tmp_path, {41: b"python3\0-m\0pytest\0", 57: java, 9: java, 60: pgrep})
    assert dlc_server.running_model_servers(proc) == [9, 57]


def test_a_second_server_is_refused_naming_the_first(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(dlc_server, "running_model_servers", lambda: [4242])
    monkeypatch.setattr(dlc_server, "env_python", lambda stack: Path("/usr/bin/python3"))
    with pytest.raises(DlcEnvError, match=r"already running on this machine \(pid 4242\)"):
        dlc_server.start(tmp_path, tmp_path / "scratch", stack=STACKS["py310"])
    assert not (tmp_path / "scratch").exists()  # nothing was started or written
