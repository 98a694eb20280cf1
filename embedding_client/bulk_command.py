"""`embed file`: a whole corpus through the endpoint at full concurrency, resumable.

    embed file corpus.jsonl --out vectors.parquet --stack dev
    embed file lines.txt --out vectors.parquet --url http://127.0.0.1:8080

Rerun the same command after a crash or Ctrl-C: it skips every id already in the output. Exit
codes and layout: docs/bulk.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from embedding_client.arguments import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    at_least_one,
    build_backend,
    embedding_options,
    exit_code,
    options_parent,
    record_fields_parent,
    target_parent,
)
from embedding_client.backend import EmbeddingClientError
from embedding_client.bulk_input import (
    FORMATS,
    InputFormatError,
    count_records,
    input_format,
    read_documents,
)
from embedding_client.bulk_output import (
    PART_ROWS,
    ErrorLog,
    OutputError,
    check_options,
    check_signature,
    errors_path,
    open_sink,
    recorded_options,
)
from embedding_client.bulk_progress import TerminalProgress, summary
from embedding_client.bulk_runner import BulkRun
from embedding_client.bulk_target import PriceOverrides, bulk_target


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="embed file",
        description="Embed a corpus (JSONL, CSV, Parquet or text) into Parquet or JSONL vectors; "
        "rerun the same command to resume.",
        epilog="Exit codes: 0 all embedded, 2 usage/input/output, 3 target not resolved, 4 some "
        "documents refused (see OUT.errors.jsonl), 5 target kept failing, 130 interrupted.",
        parents=[
            target_parent("endpoint", "url", "bedrock"),
            options_parent(),
            record_fields_parent(),
        ],
    )
    parser.add_argument("input", type=Path, help="the corpus: .jsonl, .csv, .parquet or .txt")
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="OUT.parquet (a directory of part files) or OUT.jsonl",
    )
    parser.add_argument("--input-format", choices=FORMATS, help="default: by the extension")
    parser.add_argument(
        "--concurrency",
        type=at_least_one,
        help="requests in flight (default: the endpoint's MaxConcurrency); halves on throttling",
    )
    parser.add_argument(
        "--max-tokens",
        type=at_least_one,
        help="estimated tokens per request (default: adaptive, aiming at 15 s per request)",
    )
    parser.add_argument("--price-per-gb-second", type=float, help="serverless $/GB-second")
    parser.add_argument("--price-per-1k-tokens", type=float, help="Bedrock $/1,000 tokens")
    parser.add_argument(
        "--part-rows",
        type=at_least_one,
        default=PART_ROWS,
        help="Parquet: rows per part file (default %(default)s; a crash redoes at most one part)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    # Read by `build_backend` and `embedding_options`: the target sizes requests and picks the
    # encoding (bulk_target.py), and a corpus goes to the endpoint, never through the HTTP API.
    parser.set_defaults(batch_size=None, base64=False, via_http_api=False)
    return parser.parse_args(argv)


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
    except EmbeddingClientError as error:  # OptionError is one too: nothing was sent
        sink.close()
        print(f"embed file: {error}", file=stderr)
        return exit_code(error)
    try:  # another model's vectors in the output, or a folder missing: before any is sent
        if target.signature is not None:
            check_signature(sink.signature, target.signature, args.out)
        check_options(sink.signature, recorded_options(target.options), args.out)
        sink.open()
    except (OutputError, OSError) as error:
        sink.close()
        print(f"embed file: {error}", file=stderr)
        return EXIT_USAGE

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
