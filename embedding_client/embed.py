"""`embed`: sentence embeddings from any backend, with their pairwise cosine similarity.

    embed --stack dev "A man is eating food." "A man eats something."
    embed --endpoint my-endpoint --region eu-west-1 "text"      # a SageMaker endpoint by name
    embed --url http://127.0.0.1:8080 "text"                     # the local endpoint
    embed --bedrock cohere.embed-multilingual-v3 "text"          # an Amazon Bedrock model
    embed --http-api https://…/embed --region eu-west-1 "text"  # the stack's HTTP API (SigV4)

Targets, options and exit codes: docs/inference.md; `embed file` and `embed batch`: docs/bulk.md.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from embedding_client.arguments import (
    EXIT_OK,
    EXIT_USAGE,
    at_least_one,
    build_backend,
    embedding_options,
    exit_code,
    options_parent,
    target_parent,
    utf8_problem,
    utf8_text,
)
from embedding_client.backend import EmbeddingClientError, EmbeddingResult
from embedding_client.batching import MAX_AUTO_BATCH_SIZE

SHOWN_VALUES = 4  # values printed from each end of a vector
MAX_MATRIX_TEXTS = 20


def cosine_matrix(vectors: Sequence[Sequence[float]]) -> list[list[float]]:
    """Pairwise cosine similarity (vectors need not be normalized)."""
    norms = [math.sqrt(math.fsum(v * v for v in vector)) or 1.0 for vector in vectors]
    return [
        [
            math.fsum(x * y for x, y in zip(a, b, strict=True)) / (na * nb)
            for b, nb in zip(vectors, norms, strict=True)
        ]
        for a, na in zip(vectors, norms, strict=True)
    ]


def _preview(vector: Sequence[float]) -> str:
    if len(vector) <= 2 * SHOWN_VALUES:
        return "[" + ", ".join(f"{v:+.4f}" for v in vector) + "]"
    head = ", ".join(f"{v:+.4f}" for v in vector[:SHOWN_VALUES])
    tail = ", ".join(f"{v:+.4f}" for v in vector[-SHOWN_VALUES:])
    return f"[{head}, …, {tail}]"


def _label(text: str, width: int = 40) -> str:
    return json.dumps(text if len(text) <= width else text[: width - 1] + "…", ensure_ascii=False)


def print_report(texts: Sequence[str], result: EmbeddingResult, out: TextIO) -> None:
    """Human-readable: model, dimensions, truncated vectors and the similarity matrix."""
    print(f"model: {result.model}", file=out)
    print(f"dimensions: {result.dimensions}", file=out)
    if result.prompt_tokens is not None:
        print(f"tokens: {result.prompt_tokens}", file=out)
    for index, (text, vector) in enumerate(zip(texts, result.vectors, strict=True)):
        print(f"[{index}] {_label(text)} {_preview(vector)}", file=out)
    if len(texts) < 2:
        return
    if len(texts) > MAX_MATRIX_TEXTS:
        print(
            f"(similarity matrix omitted for more than {MAX_MATRIX_TEXTS} texts; use --json)",
            file=out,
        )
        return
    print("cosine similarity:", file=out)
    matrix = cosine_matrix(result.vectors)
    print("      " + "".join(f"{f'[{j}]':>8}" for j in range(len(texts))), file=out)
    for i, row in enumerate(matrix):
        print(f"{f'[{i}]':<6}" + "".join(f"{value:8.4f}" for value in row), file=out)


def print_json(texts: Sequence[str], result: EmbeddingResult, out: TextIO) -> None:
    document = {
        "model": result.model,
        "dimensions": result.dimensions,
        "prompt_tokens": result.prompt_tokens,
        "texts": list(texts),
        "embeddings": result.vectors,
        "similarity": cosine_matrix(result.vectors),
    }
    json.dump(document, out)
    out.write("\n")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="embed",
        description="Sentence embeddings and their cosine similarity, from any backend.",
        epilog="Exit codes: 0 ok, 2 usage/input, 3 target not resolved, 4 request refused (4xx), "
        "5 endpoint failed. Texts come from the arguments, else one per line on stdin.",
        parents=[target_parent("endpoint", "url", "bedrock", "http_api"), options_parent()],
    )
    parser.add_argument(
        "--via-http-api",
        action="store_true",
        help="with --stack/--outputs-file: call the stack's HTTP API instead of the endpoint",
    )
    parser.add_argument("--json", action="store_true", help="print JSON (all values)")
    parser.add_argument(
        "--base64",
        action="store_true",
        help="ask for base64 vectors (smaller responses: more texts per request)",
    )
    parser.add_argument(
        "--batch-size",
        type=at_least_one,
        help="texts per request (default: what the endpoint states, at most "
        f"{MAX_AUTO_BATCH_SIZE}; requests also stay under 4 MB)",
    )
    parser.add_argument("texts", nargs="*", type=utf8_text, help="texts to embed")
    args = parser.parse_args(argv)
    if args.via_http_api and not (args.stack or args.outputs_file):
        parser.error("--via-http-api goes with --stack or --outputs-file")
    return args


@dataclass(frozen=True)
class _Streams:
    stdin: TextIO
    stdout: TextIO
    stderr: TextIO


def run(argv: Sequence[str] | None, streams: _Streams) -> int:
    args = parse_args(argv)
    texts = list(args.texts)
    if not texts and not streams.stdin.isatty():
        lines = [
            (n, line.rstrip("\r\n")) for n, line in enumerate(streams.stdin, 1) if line.strip()
        ]
        for number, line in lines:
            problem = utf8_problem(line)
            if problem is not None:
                print(f"embed: stdin line {number}: {problem}", file=streams.stderr)
                return EXIT_USAGE
        texts = [line for _, line in lines]
    if not texts:
        print(
            "embed: no texts: pass them as arguments or one per line on stdin", file=streams.stderr
        )
        return EXIT_USAGE
    try:
        backend = build_backend(args)
        result = backend.embed(texts, embedding_options(args))
    except EmbeddingClientError as error:
        print(f"embed: {error}", file=streams.stderr)
        return exit_code(error)
    (print_json if args.json else print_report)(texts, result, streams.stdout)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run(argv, _Streams(sys.stdin, sys.stdout, sys.stderr))


if __name__ == "__main__":
    sys.exit(main())
