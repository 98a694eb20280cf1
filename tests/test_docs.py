"""Every doc link resolves: markdown links, and every repository path the docs name in backticks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
REPO_FOLDERS = (
    "components",
    "loader",
    "container",
    "proxy",
    "embedding_client",
    "facts",
    "deploy_account",
    "scripts",
    "tests",
    "benchmarks",
    "docs",
)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
CODE = re.compile(r"`([^`\s]+)`")
REPO_PATH = re.compile(rf"^(?:{'|'.join(REPO_FOLDERS)})/[\w./*-]*$")


def named_paths(text: str) -> set[str]:
    found = {match for match in LINK.findall(text) if "://" not in match}
    for token in CODE.findall(text):
        token = token.rstrip(".,:;")
        if REPO_PATH.match(token):
            found.add(token)
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_path_a_doc_names_exists(doc: Path) -> None:
    missing = []
    for name in sorted(named_paths(doc.read_text(encoding="utf-8"))):
        base = doc.parent if not REPO_PATH.match(name) else ROOT
        if not any(base.glob(name.rstrip("/"))) and not (base / name).exists():
            missing.append(name)
    assert missing == [], f"{doc.relative_to(ROOT)} names paths that do not exist: {missing}"


# A secret expanded into a command's arguments is visible to `ps` and kept in shell history.
SECRET_ON_COMMAND_LINE = re.compile(
    r"Bearer \$\(|api_key=\"<httpApiKey>\"|--secret-string \"\$\(|httpApiKey --show-secrets\)"
)


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_doc_puts_the_api_key_on_a_command_line(doc: Path) -> None:
    lines = doc.read_text(encoding="utf-8").splitlines()
    assert [line for line in lines if SECRET_ON_COMMAND_LINE.search(line)] == []
