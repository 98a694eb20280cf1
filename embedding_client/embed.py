"""`embed`: sentence embeddings from any backend, with their pairwise cosine similarity.

    embed --stack dev "A man is eating food." "A man eats something."
    embed --endpoint my-endpoint --region eu-west-1 "text"      # a SageMaker endpoint by name
    embed --url http://127.0.0.1:8080 "text"                     # the local endpoint
    embed --bedrock cohere.embed-multilingual-v3 "text"          # an Amazon Bedrock model
    embed --http-api https://…/embed --region eu-west-1 "text"  # the stack's HTTP API (SigV4)
    echo "one text per line" | embed --url http://127.0.0.1:8080
    embed file corpus.jsonl --out vectors.parquet --stack dev    # a corpus (cli.py, docs/bulk.md)
    embed batch --stack dev s3://bucket/in/ s3://bucket/out/     # Batch Transform (docs/bulk.md)

Exit codes: 0 success; 2 bad usage or input; 3 the target cannot be resolved (stack outputs,
pulumi CLI, credentials); 4 the endpoint refused the request (4xx); 5 the endpoint failed
(5xx, throttled after retries, unreachable) or answered with an unexpected body.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from embedding_client.backends import (
    DEFAULT_BATCH_SIZE,
    MAX_AUTO_BATCH_SIZE,
    BedrockBackend,
    EmbeddingBackend,
    EmbeddingResult,
    EndpointError,
    HttpApiBackend,
    HttpBackend,
    InputTooLargeError,
    ResponseFormatError,
    SageMakerBackend,
    TargetError,
    backend_for_stack,
)
from facts.embedding_api import EmbeddingOptions

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_TARGET = 3
EXIT_REFUSED = 4
EXIT_FAILED = 5
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it
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


def stack_outputs(stack: str) -> dict[str, Any]:
    """`pulumi stack output --json -s STACK`, run in the current directory (the project)."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise TargetError("the pulumi CLI is not on PATH; use --endpoint/--bedrock/--url instead")
    completed = subprocess.run(
        [pulumi, "stack", "output", "--json", "-s", stack],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        detail = completed.stderr.strip() or completed.stdout.strip()
        raise TargetError(f"`pulumi stack output -s {stack}` failed: {detail}")
    return read_outputs(completed.stdout, f"stack {stack}")


def load_outputs(stack: str | None, outputs_file: str | None) -> dict[str, Any]:
    """The stack's outputs: from `outputs_file` (`pulumi stack output --json` saved) or the CLI."""
    if not outputs_file:
        return stack_outputs(stack or "")
    try:
        with open(outputs_file, encoding="utf-8") as handle:
            return read_outputs(handle.read(), outputs_file)
    except OSError as error:
        raise TargetError(f"cannot read {outputs_file}: {error}") from None


def read_outputs(text: str, source: str) -> dict[str, Any]:
    try:
        outputs = json.loads(text)
    except ValueError as error:
        raise TargetError(f"outputs of {source} are not JSON: {error}") from None
    if not isinstance(outputs, dict):
        raise TargetError(f"outputs of {source} are not a JSON object")
    return outputs


def embedding_options(args: argparse.Namespace) -> EmbeddingOptions:
    """The embedding API's options the command line asks for."""
    return EmbeddingOptions(
        normalize=not args.no_normalize,
        truncate=not args.no_truncate,
        prompt_name=args.prompt_name,
        prompt=args.prompt,
        dimensions=args.dimensions,
        encoding_format="base64" if args.base64 else "float",
    )


def build_backend(args: argparse.Namespace) -> EmbeddingBackend:
    """The backend the command line names."""
    if args.url:
        return HttpBackend(args.url, batch_size=args.batch_size)
    if args.endpoint:
        return SageMakerBackend(args.endpoint, args.region, batch_size=args.batch_size)
    if args.bedrock:
        return BedrockBackend(args.bedrock, args.region)
    if args.http_api:
        if not args.region:
            raise TargetError("--http-api needs --region (the API's region, used for SigV4)")
        return HttpApiBackend(args.http_api, args.region, args.batch_size or DEFAULT_BATCH_SIZE)
    outputs = load_outputs(args.stack, args.outputs_file)
    return backend_for_stack(outputs, use_http_api=args.via_http_api, batch_size=args.batch_size)


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
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--stack", help="a Pulumi stack of this project (reads its outputs)")
    target.add_argument("--outputs-file", help="a saved `pulumi stack output --json`")
    target.add_argument("--endpoint", help="a SageMaker endpoint name")
    target.add_argument("--url", help="the local endpoint, e.g. http://127.0.0.1:8080")
    target.add_argument("--bedrock", metavar="MODEL_ID", help="e.g. amazon.titan-embed-text-v2:0")
    target.add_argument("--http-api", metavar="URL", help="the stack's HTTP API URL (…/embed)")
    parser.add_argument("--region", help="AWS region (default: your AWS configuration)")
    parser.add_argument(
        "--via-http-api",
        action="store_true",
        help="with --stack/--outputs-file: call the stack's HTTP API instead of the endpoint",
    )
    parser.add_argument("--json", action="store_true", help="print JSON (all values)")
    parser.add_argument("--no-normalize", action="store_true", help="ask for raw vectors")
    parser.add_argument(
        "--no-truncate",
        action="store_true",
        help="refuse texts over the model's maximum length instead of truncating them",
    )
    prompts = parser.add_mutually_exclusive_group()
    prompts.add_argument(
        "--prompt-name", help="one of the model's prompts, e.g. query (the endpoint lists them)"
    )
    prompts.add_argument("--prompt", help="a literal prefix, e.g. 'query: '")
    parser.add_argument(
        "--dimensions", type=int, help="Matryoshka: keep this many leading dimensions"
    )
    parser.add_argument(
        "--base64",
        action="store_true",
        help="ask for base64 vectors (smaller responses: more texts per request)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        help="texts per request (default: what the endpoint states, at most "
        f"{MAX_AUTO_BATCH_SIZE}; requests also stay under 4 MB)",
    )
    parser.add_argument("texts", nargs="*", help="texts to embed")
    args = parser.parse_args(argv)
    if args.batch_size is not None and args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    if args.dimensions is not None and args.dimensions < 1:
        parser.error("--dimensions must be at least 1")
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
        texts = [line.rstrip("\n") for line in streams.stdin if line.strip()]
    if not texts:
        print(
            "embed: no texts: pass them as arguments or one per line on stdin", file=streams.stderr
        )
        return EXIT_USAGE
    try:
        backend = build_backend(args)
        result = backend.embed(texts, embedding_options(args))
    except TargetError as error:
        print(f"embed: {error}", file=streams.stderr)
        return EXIT_TARGET
    except InputTooLargeError as error:
        print(f"embed: {error}", file=streams.stderr)
        return EXIT_USAGE
    except EndpointError as error:
        print(f"embed: {error}", file=streams.stderr)
        return EXIT_REFUSED if error.is_client_error else EXIT_FAILED
    except ResponseFormatError as error:
        print(f"embed: {error}", file=streams.stderr)
        return EXIT_FAILED
    (print_json if args.json else print_report)(texts, result, streams.stdout)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run(argv, _Streams(sys.stdin, sys.stdout, sys.stderr))


if __name__ == "__main__":
    sys.exit(main())
