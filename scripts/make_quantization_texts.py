"""Write loader/quantization_texts.txt.gz: the fixed texts the int8 quality check embeds.

The source is the English prose of one pinned PyPI package: the first paragraph of every
docstring in transformers 5.24.0 (requirements-dev.txt), split into sentences. Written once and
committed, so the loader Lambda (python3.12) and runner `local` check against the same texts
whatever is installed where they run. The texts are ordered by their sha1 (a fixed shuffle); the
first QUERY_COUNT are the retrieval check's queries, the next CORPUS_COUNT its corpus, and
PASSAGE_COUNT passages of consecutive corpus sentences follow, long enough to be truncated at a
model's max_seq_length (the check covers the longest inputs too). One text per line; gzip's
header carries no name or time, so the file's bytes depend on the source alone.

    python -m scripts.make_quantization_texts
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import re
from importlib.metadata import version
from pathlib import Path

from loader.quantization_check import QUERY_COUNT

SOURCE_PACKAGE, SOURCE_VERSION = "transformers", "5.24.0"
# The check's queries come first (QUERY_COUNT, where the loader reads them); then the corpus.
CORPUS_COUNT, PASSAGE_COUNT = 3000, 40
# Sentences per passage: about 400 tokens, past the 256 or 512 most encoders truncate at.
PASSAGE_SENTENCES = 20
DESTINATION = Path(__file__).resolve().parents[1] / "loader" / "quantization_texts.txt.gz"
# Prose only: no markup, code, parameter lists or references.
_NOT_PROSE = re.compile(r"[`<>{}\[\]=_|#*\\]|::|\.\.|https?:")


def sentences(package_dir: Path) -> set[str]:
    """Every sentence of 6-40 words in the first paragraph of a docstring under `package_dir`."""
    found = set()
    for path in sorted(package_dir.rglob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)):
                continue
            doc = ast.get_docstring(node)
            if not doc:
                continue
            text = " ".join(doc.split("\n\n")[0].split())
            for sentence in re.split(r"(?<=[.!?])\s+", text):
                words = len(sentence.split())
                if 6 <= words <= 40 and sentence[0].isupper() and sentence.endswith("."):
                    if not _NOT_PROSE.search(sentence):
                        found.add(sentence)
    return found


def texts(found: set[str]) -> list[str]:
    """Queries, corpus and passages, in the file's order."""
    ordered = sorted(found, key=lambda s: hashlib.sha1(s.encode()).hexdigest())
    needed = QUERY_COUNT + CORPUS_COUNT
    if len(ordered) < needed:
        raise SystemExit(f"only {len(ordered)} sentences in the source; {needed} are needed")
    queries, corpus = ordered[:QUERY_COUNT], ordered[QUERY_COUNT:needed]
    passages = [
        " ".join(corpus[start : start + PASSAGE_SENTENCES])
        for start in range(0, PASSAGE_COUNT * PASSAGE_SENTENCES, PASSAGE_SENTENCES)
    ]
    return [*queries, *corpus, *passages]


def write(destination: Path = DESTINATION) -> int:
    """Write the texts from the pinned source to `destination`; how many."""
    installed = version(SOURCE_PACKAGE)
    if installed != SOURCE_VERSION:
        raise SystemExit(f"needs {SOURCE_PACKAGE}=={SOURCE_VERSION}; this Python has {installed}")
    import transformers

    lines = texts(sentences(Path(transformers.__file__).parent))
    data = ("\n".join(lines) + "\n").encode("utf-8")
    with destination.open("wb") as raw, gzip.GzipFile("", "wb", 9, raw, mtime=0) as handle:
        handle.write(data)
    return len(lines)


def main() -> None:
    count = write()
    print(f"{DESTINATION}: {count} texts, {DESTINATION.stat().st_size} bytes")


if __name__ == "__main__":
    main()
