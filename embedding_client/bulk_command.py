"""`embed file`: a whole corpus through the endpoint at full concurrency, resumable.

    embed file corpus.jsonl --out vectors.parquet --stack dev
    embed file corpus.csv --out vectors.jsonl --endpoint my-endpoint --region eu-west-1
    embed file lines.txt --out vectors.parquet --url http://127.0.0.1:8080
    embed file corpus.parquet --out vectors.parquet --bedrock amazon.titan-embed-text-v2:0

Rerun the same command after a crash or Ctrl-C: it skips every id already in the output.
Exit codes as `embed`: 0 every document embedded; 2 bad usage, input or output; 3 the target
cannot be resolved; 4 some documents were refused (listed in OUT.errors.jsonl); 5 the target kept
failing (rerun to carry on); 130 interrupted (rerun to carry on). Layout and behaviour:
docs/bulk.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from embedding_client.backends import (
    BedrockBackend,
    EmbeddingBackend,
    EndpointError,
    HttpBackend,
    InputTooLargeError,
    ResponseFormatError,
    SageMakerBackend,
    TargetError,
    backend_for_stack,
)
from embedding_client.bulk_input import (
    FORMATS,
    InputFormatError,
    count_records,
    input_format,
    read_documents,
)
from embedding_client.bulk_output import PART_ROWS, ErrorLog, OutputError, errors_path, open_sink
from embedding_client.bulk_progress import TerminalProgress, summary
from embedding_client.bulk_runner import BulkRun
from embedding_client.bulk_target import OptionError, PriceOverrides, bulk_target
from embedding_client.embed import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_TARGET,
    EXIT_USAGE,
    embedding_options,
    load_outputs,
)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="embed file",
        description="Embed a corpus (JSONL, CSV, Parquet or text) into Parquet or JSONL vectors; "
        "rerun the same command to resume.",
        epilog="Exit codes: 0 all embedded, 2 usage/input/output, 3 target not resolved, 4 some "
        "documents refused (see OUT.errors.jsonl), 5 target kept failing, 130 interrupted.",
    )
    parser.add_argument("input", type=Path, help="the corpus: .jsonl, .csv, .parquet or .txt")
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="OUT.parquet (a directory of part files) or OUT.jsonl",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--stack", help="a Pulumi stack of this project (reads its outputs)")
    target.add_argument("--outputs-file", help="a saved `pulumi stack output --json`")
    target.add_argument("--endpoint", help="a SageMaker endpoint name")
    target.add_argument("--url", help="the local endpoint, e.g. http://127.0.0.1:8080")
    target.add_argument("--bedrock", metavar="MODEL_ID", help="e.g. amazon.titan-embed-text-v2:0")
    parser.add_argument("--region", help="AWS region (default: your AWS configuration)")
    parser.add_argument("--input-format", choices=FORMATS, help="default: by the extension")
    parser.add_argument("--id-field", default="id", help="JSONL/CSV/Parquet id field (id)")
    parser.add_argument("--text-field", default="text", help="JSONL/CSV/Parquet text field (text)")
    prompts = parser.add_mutually_exclusive_group()
    prompts.add_argument("--prompt-name", help="one of the model's prompts, e.g. passage")
    prompts.add_argument("--prompt", help="a literal prefix, e.g. 'passage: '")
    parser.add_argument("--dimensions", type=int, help="Matryoshka: keep this many dimensions")
    parser.add_argument("--no-normalize", action="store_true", help="ask for raw vectors")
    parser.add_argument(
        "--no-truncate",
        action="store_true",
        help="refuse (error file) texts over the model's maximum length instead of truncating",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        help="requests in flight (default: the endpoint's MaxConcurrency); halves on throttling",
    )
    parser.add_argument(
        "--max-tokens",
        type=int,
        help="estimated tokens per request (default: adaptive, aiming at 15 s per request)",
    )
    parser.add_argument("--price-per-gb-second", type=float, help="serverless $/GB-second")
    parser.add_argument("--price-per-1k-tokens", type=float, help="Bedrock $/1,000 tokens")
    parser.add_argument(
        "--part-rows",
        type=int,
        default=PART_ROWS,
        help="Parquet: rows per part file (default %(default)s; a crash redoes at most one part)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    for name in ("concurrency", "max_tokens", "dimensions", "part_rows"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    args.base64 = False  # `embedding_options` reads it; the target picks the encoding
    return args


def build_backend(args: argparse.Namespace) -> EmbeddingBackend:
    """The backend the command line names (the same targets as `embed`)."""
    if args.url:
        return HttpBackend(args.url)
    if args.endpoint:
        return SageMakerBackend(args.endpoint, args.region)
    if args.bedrock:
        return BedrockBackend(args.bedrock, args.region)
    outputs = load_outputs(args.stack, args.outputs_file)
    return backend_for_stack(outputs)


def run(argv: Sequence[str], stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """`embed file ARGS`; the process's exit code."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    args = parse_args(argv)
    try:
        fmt = input_format(args.input, args.input_format)
        documents = read_documents(
            args.input, fmt, id_field=args.id_field, text_field=args.text_field
        )
        sink = open_sink(args.out, part_rows=args.part_rows)
        done = set(sink.done_ids())
    except (InputFormatError, OutputError, OSError) as error:
        print(f"embed file: {error}", file=stderr)
        return EXIT_USAGE
    try:
        target = bulk_target(
            build_backend(args),
            embedding_options(args),
            concurrency=args.concurrency,
            max_tokens=args.max_tokens,
            prices=PriceOverrides(args.price_per_gb_second, args.price_per_1k_tokens),
        )
    except TargetError as error:
        print(f"embed file: {error}", file=stderr)
        return EXIT_TARGET
    except (InputTooLargeError, OptionError) as error:
        print(f"embed file: {error}", file=stderr)
        return EXIT_USAGE
    except EndpointError as error:
        print(f"embed file: {error}", file=stderr)
        return EXIT_REFUSED if error.is_client_error else EXIT_FAILED
    except ResponseFormatError as error:
        print(f"embed file: {error}", file=stderr)
        return EXIT_FAILED

    for note in target.notes:
        print(f"embed file: note: {note}", file=stderr)
    print(
        f"embed file: {args.input} → {args.out} via {target.label}: up to "
        f"{target.limits.max_texts} texts per request, {target.concurrency} in flight "
        f"({target.concurrency_source})"
        + (f"; resuming after {len(done):,} ids already in the output" if done else ""),
        file=stderr,
    )
    show_bar = not args.quiet and stderr.isatty()
    counted = count_records(args.input, fmt) if show_bar else None
    total = None if counted is None else max(0, counted - len(done))
    progress = TerminalProgress(total, stderr, enabled=show_bar)
    errors = ErrorLog(errors_path(args.out))
    try:
        stats = BulkRun(
            backend=target.backend,
            options=target.options,
            limits=target.limits,
            sink=sink,
            errors=errors,
            concurrency=target.concurrency,
            progress=progress,
        ).run(documents, done)
    except (InputFormatError, OSError) as error:
        progress.close()
        print(f"embed file: {error}", file=stderr)
        return EXIT_USAGE
    progress.close()
    for line in summary(stats, errors_file=str(errors.path), pricing_model=target.pricing):
        print(line, file=stdout)
    if stats.interrupted:
        return EXIT_INTERRUPTED
    if stats.stopped_by:
        return EXIT_FAILED
    return EXIT_REFUSED if stats.failed else EXIT_OK
