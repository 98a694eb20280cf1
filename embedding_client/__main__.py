"""`python -m embedding_client serve ARTIFACT` (local endpoint) and `... embed` (the client)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from embedding_client.serve import DEFAULT_HOST, DEFAULT_PORT, ServeOptions, serve


def _serve_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "artifact",
        help="s3://bucket/…/model.tar.gz, a local model.tar.gz, or an extracted model folder",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="default: %(default)s")
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="address to listen on (default: %(default)s; 0.0.0.0 exposes it to the network)",
    )
    parser.add_argument(
        "--model-id",
        help="model name reported in responses (default: the org/name in the artifact's "
        "path or its config.json, else the archive's or folder's name)",
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: one per vCPU)")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["embed"]:
        from embedding_client.cli import main as embed_main

        return embed_main(args[1:])
    parser = argparse.ArgumentParser(prog="python -m embedding_client", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    _serve_parser(
        commands.add_parser(
            "serve",
            help="serve a model artifact locally",
            description="Serve a model artifact on this machine with SageMaker's container "
            "contract. This runs the archive's code/inference.py (as the DLC does): serve "
            "only archives you would deploy.",
        )
    )
    commands.add_parser("embed", help="the embed client (same as the `embed` command)")
    parsed = parser.parse_args(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return serve(
        ServeOptions(
            source=parsed.artifact,
            host=parsed.host,
            port=parsed.port,
            model_id=parsed.model_id,
            threads=parsed.threads,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
