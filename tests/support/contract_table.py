"""The container's HTTP contract as a table: one request per row, run against any server.

The same rows run through the DLC's own model server (tests/dlc/) and through the light local
endpoint (embedding_client/serve.py), and the two must give the same status, media type and body
(vectors within cosine 0.99999). The rows cover what docs/inference.md promises: the native,
OpenAI, info and JSON-lines shapes, with and without `Accept`, prompts and dimensions, and the
errors a caller can make.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from facts.embedding_api import decode_vector
from scripts.dlc_server import Answer
from tests.support.models import copy_model

JSON = "application/json"
JSON_LINES = "application/jsonlines"
# The prompts of the served copy of the reference model (which has none of its own).
PROMPTS = {"query": "query: ", "passage": "passage: "}
VECTOR_COSINE = 0.99999


@dataclass(frozen=True)
class Row:
    """One request: its body, headers and the status the contract gives it."""

    name: str
    body: bytes
    status: int
    content_type: str | None = JSON
    accept: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def request_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.content_type is not None:
            headers["Content-Type"] = self.content_type
        if self.accept is not None:
            headers["Accept"] = self.accept
        return headers


def json_body(document: object) -> bytes:
    return json.dumps(document).encode("utf-8")


SUCCESS_ROWS = [
    Row("native-one-text", json_body({"inputs": "A man is eating food."}), 200),
    Row("native-list-accept-json", json_body({"inputs": ["a cat", "a dog"]}), 200, accept=JSON),
    Row("native-accept-any", json_body({"inputs": ["a cat"]}), 200, accept="*/*"),
    Row(
        "native-charset", json_body({"inputs": "a cat"}), 200, content_type=f"{JSON}; charset=utf-8"
    ),
    Row(
        "native-dimensions",
        json_body({"inputs": ["a cat", "a dog"], "parameters": {"dimensions": 64}}),
        200,
    ),
    Row(
        "native-unnormalized-left",
        json_body(
            {
                "inputs": ["word " * 400],
                "parameters": {"normalize": False, "truncation_direction": "left"},
            }
        ),
        200,
    ),
    Row(
        "native-prompt-name",
        json_body({"inputs": "a cat", "parameters": {"prompt_name": "query"}}),
        200,
    ),
    Row("native-prompt", json_body({"inputs": "a cat", "parameters": {"prompt": "topic: "}}), 200),
    Row(
        "native-base64",
        json_body({"inputs": ["a cat"], "parameters": {"encoding_format": "base64"}}),
        200,
    ),
    Row("openai-one", json_body({"input": "a cat", "model": "m"}), 200),
    Row(
        "openai-dimensions-base64",
        json_body({"input": ["a cat", "a dog"], "dimensions": 32, "encoding_format": "base64"}),
        200,
    ),
    Row("info", json_body({"info": True}), 200),
    Row(
        "jsonlines-accept-jsonlines",
        b'"a cat"\n{"inputs": "a dog", "id": 7}\n',
        200,
        content_type=JSON_LINES,
        accept=JSON_LINES,
    ),
    # The toolkit turns a missing Accept and */* into application/json (Batch Transform's default).
    Row("jsonlines-no-accept", b'"a cat"\n"a dog"\n', 200, content_type=JSON_LINES),
    Row("jsonlines-accept-any", b'"a cat"\n', 200, content_type=JSON_LINES, accept="*/*"),
]

ERROR_ROWS = [
    Row("content-type-csv", b"a,b\n", 400, content_type="text/csv"),
    Row("accept-csv", json_body({"inputs": "a"}), 400, accept="text/csv"),
    Row("invalid-json", b'{"inputs": ', 400),
    Row("invalid-utf8", b'{"inputs": "\xff"}', 400),
    Row("missing-inputs", json_body({"texts": ["a"]}), 400),
    Row("empty-list", json_body({"inputs": []}), 400),
    Row("empty-body", b"", 400),
    Row("non-string-item", json_body({"inputs": ["a", 3]}), 400),
    Row("unknown-parameter", json_body({"inputs": "a", "parameters": {"colour": 1}}), 400),
    Row("dimensions-zero", json_body({"inputs": "a", "parameters": {"dimensions": 0}}), 400),
    Row("unknown-prompt", json_body({"inputs": "a", "parameters": {"prompt_name": "nope"}}), 400),
    Row("token-ids", json_body({"input": [[101, 102]]}), 400),
    Row("lists-of-strings", json_body({"inputs": [["a cat"], ["a dog"]]}), 400),
    Row("empty-prompt-name", json_body({"inputs": "a", "parameters": {"prompt_name": ""}}), 400),
    Row("info-one", json_body({"info": 1}), 400),
    # curl -d's default: the model server decodes a form body into fields, not bytes.
    Row("form-body", b'{"inputs": "a"}', 400, content_type="application/x-www-form-urlencoded"),
    Row(
        "too-long-untruncated",
        json_body({"inputs": ["word " * 400], "parameters": {"truncate": False}}),
        400,
    ),
    Row("jsonlines-bad-line", b'"a"\n[1, 2]\n', 400, content_type=JSON_LINES, accept=JSON_LINES),
]

TABLE = SUCCESS_ROWS + ERROR_ROWS


def served_copy(destination: Path) -> Path:
    """The reference model with prompts (its own files have none), as the rows use it."""
    copy_model(destination)
    config = destination / "config_sentence_transformers.json"
    document = json.loads(config.read_text())
    document["prompts"] = PROMPTS
    config.write_text(json.dumps(document))
    return destination


def body_document(answer: Answer) -> object:
    """The answer's body as JSON, or a list of documents for JSON lines (which the toolkit
    labels `application/json` when the caller sent no Accept)."""
    text = answer.body.decode("utf-8")
    if answer.content_type != JSON_LINES:
        try:
            return json.loads(text)
        except ValueError:
            pass
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def vectors_of(document: object) -> list[list[float]]:
    """Every vector in a success body, base64 ones decoded (native, OpenAI or JSON lines)."""
    if isinstance(document, list):
        return [vector for line in document for vector in vectors_of(line)]
    assert isinstance(document, dict), document
    if "embeddings" in document:
        return [_decoded(vector) for vector in document["embeddings"]]
    if "data" in document:
        return [_decoded(item["embedding"]) for item in document["data"]]
    if "embedding" in document:
        return [_decoded(document["embedding"])]
    return []


def _decoded(vector: list[float] | str) -> list[float]:
    return decode_vector(vector, "a vector")


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def without_vectors(document: object) -> object:
    """The document with every vector replaced by its length (compared separately)."""
    if isinstance(document, list):
        return [without_vectors(item) for item in document]
    if not isinstance(document, dict):
        return document
    replaced = {}
    for key, value in document.items():
        if key in ("embeddings",):
            replaced[key] = [len(_decoded(vector)) for vector in value]
        elif key == "embedding":
            replaced[key] = len(_decoded(value))
        else:
            replaced[key] = without_vectors(value)
    return replaced


def differences(row: Row, first: Answer, second: Answer) -> list[str]:
    """How two servers' answers to `row` differ (empty when they agree)."""
    found = []
    if first.status != second.status:
        found.append(f"status {first.status} != {second.status}")
    if first.content_type != second.content_type:
        found.append(f"content type {first.content_type!r} != {second.content_type!r}")
    try:
        one, other = body_document(first), body_document(second)
    except (UnicodeDecodeError, ValueError):
        return [*found, f"body {first.body[:200]!r} != {second.body[:200]!r}"]
    if without_vectors(one) != without_vectors(other):
        found.append(f"body {without_vectors(one)} != {without_vectors(other)}")
    for index, (a, b) in enumerate(zip(vectors_of(one), vectors_of(other), strict=False)):
        if len(a) == len(b) and cosine(a, b) < VECTOR_COSINE:
            found.append(f"vector {index}: cosine {cosine(a, b)} < {VECTOR_COSINE}")
    return found
