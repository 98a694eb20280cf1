"""The Hugging Face DLC's serving stack on this machine: a pinned venv, built once, cached by pins.

    python -m scripts.dlc_env build py310     # what `make dlc-env` does (about 5 GB, once)
    python -m scripts.dlc_env path py310      # the venv's folder, once built

The venv lives in `$XDG_CACHE_HOME/embedding-endpoint/` (default `~/.cache`), named by a hash of
the pins; it is built in a folder of its own and published by swapping a symlink, so an
interrupted build is never used (docs/model-server.md). Standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# A developer who cannot (or will not) build the stack sets this to skip its tests; CI never does.
SKIP_VARIABLE = "EMBEDDING_ENDPOINT_SKIP_DLC"
JAVA_HINT = "install Java 17 (Debian/Ubuntu: apt-get install openjdk-17-jre-headless)"
# Raised whenever the recipe below changes in a way the pins do not show.
RECIPE_VERSION = "1"


@dataclass(frozen=True)
class Stack:
    """One DLC image's Python stack: its interpreter and the pinned requirements file."""

    name: str  # "py310"
    python: str  # "3.10"
    requirements: Path

    def pins(self) -> list[str]:
        """The requirement lines (every one `name==version`), comments dropped."""
        lines = self.requirements.read_text(encoding="utf-8").splitlines()
        return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


STACKS = {
    stack.name: stack
    for stack in (
        Stack("py310", "3.10", REPO_ROOT / "requirements-dlc-py310.txt"),
        # The oldest image we deploy (PyTorch 1.13.1, transformers 4.26.0).
        Stack("py39", "3.9", REPO_ROOT / "requirements-dlc-py39.txt"),
    )
}


class DlcEnvError(RuntimeError):
    """The stack cannot be built or found here; the message says what is missing and how to fix."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "embedding-endpoint"


def pins_hash(stack: Stack) -> str:
    digest = hashlib.sha256(f"{RECIPE_VERSION}\n{stack.python}\n".encode())
    digest.update("\n".join(stack.pins()).encode())
    return digest.hexdigest()[:12]


def env_dir(stack: Stack) -> Path:
    """Where the venv of these pins is published (a symlink to the completed build)."""
    return cache_root() / f"dlc-{stack.name}-{pins_hash(stack)}"


def env_python(stack: Stack) -> Path | None:
    """The built venv's interpreter, or None when the build of these pins is not complete."""
    python = env_dir(stack) / "bin" / "python"
    return python if python.is_file() else None


def find_interpreter(version: str) -> Path:
    """`python<version>` from pyenv or PATH; DlcEnvError naming how to get one."""
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    candidates = sorted(pyenv.glob(f"{version}.*/bin/python{version}"), reverse=True)
    on_path = shutil.which(f"python{version}")
    for candidate in [*candidates, *([Path(on_path)] if on_path else [])]:
        if candidate.is_file():
            return candidate
    raise DlcEnvError(
        f"no Python {version} found (looked in {pyenv} and PATH): the DLC's stack needs it; "
        f"install one (e.g. `pyenv install {version}`), or set {SKIP_VARIABLE}=1 to skip the "
        "DLC tests on this machine"
    )


def java_version() -> str:
    """`java -version`'s version string; DlcEnvError when there is no working Java."""
    java = shutil.which("java")
    if java is None:
        raise DlcEnvError(f"no `java` on PATH: the DLC's model server needs it; {JAVA_HINT}")
    completed = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    found = re.search(r'version "([^"]+)"', completed.stderr + completed.stdout)
    if completed.returncode != 0 or not found:
        raise DlcEnvError(f"`java -version` failed ({completed.stderr.strip()}); {JAVA_HINT}")
    return found.group(1)


def build(stack: Stack) -> Path:
    """The venv for `stack`, built when missing; its folder."""
    java_version()
    if env_python(stack) is not None:
        return env_dir(stack)
    interpreter = find_interpreter(stack.python)
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix=f"dlc-{stack.name}-build-", dir=root))
    print(f"building the DLC's {stack.name} stack in {target} (about 5 GB, once)", flush=True)
    try:
        subprocess.run([str(interpreter), "-m", "venv", str(target)], check=True)
        pip = [str(target / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        # Every package is pinned in the file, so nothing is resolved: --no-deps keeps out the
        # toolkit's long optional list (audio, vision) that the image does not install either.
        subprocess.run([*pip, "--no-deps", "-r", str(stack.requirements)], check=True)
        _smoke(target)
    except (subprocess.CalledProcessError, DlcEnvError) as error:
        shutil.rmtree(target, ignore_errors=True)
        raise DlcEnvError(f"building the {stack.name} stack failed: {error}") from error
    _publish(target, env_dir(stack))
    return env_dir(stack)


def _smoke(venv: Path) -> None:
    """The toolkit's serving entry point imports, as the container's start command needs."""
    probe = "from sagemaker_huggingface_inference_toolkit import serving, handler_service"
    completed = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise DlcEnvError(f"the toolkit does not import: {completed.stderr.strip()[-2000:]}")


def _publish(build_dir: Path, link: Path) -> None:
    """Point `link` at the completed build in one rename (readers see the old or the new)."""
    temporary = link.with_name(f"{link.name}.link-{os.getpid()}")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(build_dir.name)
    os.replace(temporary, link)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.dlc_env", description=__doc__)
    parser.add_argument("command", choices=("build", "path", "check"))
    parser.add_argument("stack", choices=sorted(STACKS), nargs="?", default="py310")
    arguments = parser.parse_args(argv)
    stack = STACKS[arguments.stack]
    try:
        if arguments.command == "build":
            print(build(stack))
        elif arguments.command == "check":
            print(f"java {java_version()}, python {find_interpreter(stack.python)}")
        elif env_python(stack) is None:
            raise DlcEnvError(f"the {stack.name} stack is not built: run `make dlc-env`")
        else:
            print(env_dir(stack))
    except DlcEnvError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
