"""The layout is the architecture: one folder per runtime, imports only down the layers, no cycles.

Read from the source (every `import`, including those inside functions), so a new module cannot
quietly reach up a layer, into another runtime, or into the tests.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Project packages each folder may import (besides itself, the standard library and third-party
# packages of its runtime). `facts` is the shared bottom layer (standard library only);
# `deploy_account` (the stack's AWS session: boto3, nothing of the project) sits beside it, below
# the program and the client, which both build sessions from it. The Pulumi program (`components`)
# drives the loader in-process (runner `local`) and reads its format version; it runs the client's
# post-deploy check as a command, never by import.
# The loader's int8 quality check pools as the container does (its numpy `pool` and the Pooling
# config's reader: loader/quantization_check.py), so the loader may import the container's code,
# which it ships anyway.
# scripts/export_onnx.py fuses a graph with the loader's own code (loader/graph_fusion.py);
# scripts/dlc_server.py prepares an artifact as `serve` does, and the benchmarks start it.
# scripts/promote.py checks the promoted config with the program's parser (components/config.py).
ALLOWED = {
    "facts": set(),
    "deploy_account": set(),
    "container": {"facts"},
    "loader": {"facts", "container"},
    "proxy": {"facts"},
    "embedding_client": {"facts", "deploy_account"},
    "components": {"facts", "loader", "deploy_account"},
    "__main__": {"components", "facts"},  # facts/stack.py: the output names it exports
    "scripts": {"facts", "loader", "embedding_client", "components"},
    "benchmarks": {"facts", "loader", "embedding_client", "container", "scripts"},
}
PROJECT = {
    "facts",
    "deploy_account",
    "container",
    "loader",
    "proxy",
    "embedding_client",
    "components",
    "tests",
}
# The container's code is imported by bare names (code/ is on sys.path there): inference.py and
# the package beside it.
CONTAINER_MODULES = {
    path.stem
    for path in (ROOT / "container").iterdir()
    if path.suffix == ".py" or (path / "__init__.py").is_file()
}


def production_files() -> Iterator[Path]:
    yield ROOT / "__main__.py"
    for folder in ALLOWED:
        if folder != "__main__":
            yield from sorted((ROOT / folder).rglob("*.py"))


def folder_of(path: Path) -> str:
    relative = path.relative_to(ROOT)
    return (
        "__main__"
        if relative.name == "__main__.py" and len(relative.parts) == 1
        else (relative.parts[0])
    )


def module_name(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[0] == "container":
        parts = parts[1:]  # imported by its bare name, as in the DLC
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path) -> Iterator[str]:
    """Every module `path` imports, absolute names (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path).rsplit(".", 1)[0] if "." in module_name(path) else ""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def project_target(name: str) -> str | None:
    """The project folder a module name belongs to, or None for a library."""
    top = name.split(".")[0]
    if top in CONTAINER_MODULES:
        return "container"
    return top if top in PROJECT else None


@pytest.mark.parametrize("path", list(production_files()), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_go_only_down_the_layers(path: Path) -> None:
    folder = folder_of(path)
    reached = {project_target(name) for name in imports(path)} - {None, folder}
    assert "tests" not in reached, f"{path.relative_to(ROOT)} imports from tests/"
    assert reached <= ALLOWED[folder], (
        f"{path.relative_to(ROOT)} ({folder}) imports {sorted(reached - ALLOWED[folder])}; "
        f"allowed: {sorted(ALLOWED[folder])}"
    )


def test_no_import_cycles_between_project_modules() -> None:
    modules = {module_name(path): path for path in production_files()}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in imports(path):
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycle = stack[stack.index(target) :] + [target]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_the_five_runtimes_are_the_top_level_folders() -> None:
    for folder in ("components", "loader", "container", "proxy", "embedding_client"):
        assert (ROOT / folder).is_dir(), folder


def test_no_production_module_is_named_like_a_test() -> None:
    named = [p for p in production_files() if re.match(r"(test_.*|.*_test)\.py$", p.name)]
    assert named == []
