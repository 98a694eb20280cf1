"""`pip install .` into a clean virtualenv gives an `embed` command that runs.

Built from a copy of the sources (the build writes `build/` and `*.egg-info` beside them), with
pip's own cache, so a rerun downloads nothing. It needs PyPI (or the cache): it is marked
`install`, and it runs with the rest of the suite.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.models import REPO_ROOT

# What the wheel holds (pyproject.toml's packages) and what its build needs.
SOURCES = ("pyproject.toml", "embedding_client", "deploy_account", "facts", "loader")
# Imported on first use by the commands (lazily, so `--help` alone would not notice them).
FIRST_USE_IMPORTS = "import boto3, botocore.config, botocore.auth, tqdm"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ folder of a fresh virtualenv with the package installed from its sources."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    source.mkdir()
    for name in SOURCES:
        path = REPO_ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    completed = subprocess.run(
        [*pip, str(source)], env=_clean_env(), capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return venv / "bin"


def _clean_env() -> dict[str, str]:
    """This process's environment without what would let the repository's code leak in."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def _run(words: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """A command of the virtualenv, outside the repository."""
    return subprocess.run(
        words, cwd=cwd, env=_clean_env(), capture_output=True, text=True, check=False
    )


@pytest.mark.install
@pytest.mark.parametrize("words", [[], ["file"], ["batch"]], ids=["embed", "file", "batch"])
def test_the_installed_embed_command_shows_its_help(installed: Path, tmp_path: Path, words):
    completed = _run([str(installed / "embed"), *words, "--help"], tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith(f"usage: {' '.join(['embed', *words])} ")


@pytest.mark.install
def test_the_installed_package_has_what_its_commands_import_on_first_use(
    installed: Path, tmp_path: Path
):
    completed = _run([str(installed / "python"), "-c", FIRST_USE_IMPORTS], tmp_path)
    assert completed.returncode == 0, completed.stderr
