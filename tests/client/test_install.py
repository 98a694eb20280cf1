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
import tomllib

from tests.support.models import REPO_ROOT

# Every module of the client (the local endpoint's serve* aside: it runs with the dev
# requirements), and what the commands import on first use, lazily, which `--help` never reaches.
IMPORT_EVERYTHING = """
import importlib, pkgutil
import boto3, botocore.auth, botocore.config, tqdm
import embedding_client
for module in pkgutil.iter_modules(embedding_client.__path__):
    if not module.name.startswith("serve"):
        importlib.import_module("embedding_client." + module.name)
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ folder of a fresh virtualenv with the package installed from its sources."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    source.mkdir()
    for name in _sources():
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


def _sources() -> list[str]:
    """What the build reads: pyproject.toml and the packages it lists."""
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    return ["pyproject.toml", *(pattern.rstrip("*") for pattern in packages)]


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
def test_the_installed_package_has_every_module_and_library_its_commands_import(
    installed: Path, tmp_path: Path
):
    completed = _run([str(installed / "python"), "-c", IMPORT_EVERYTHING], tmp_path)
    assert completed.returncode == 0, completed.stderr
