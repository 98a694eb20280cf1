"""What `embed`, `embed file` and `embed batch` share on the command line: the target flags, the
embedding options and the record fields as argparse parent parsers (each flag declared once),
the backend the flags name, and the exit codes.
"""

from __future__ import annotations

import argparse
from typing import Any

from embedding_client.backend import (
    EmbeddingBackend,
    EmbeddingClientError,
    EndpointError,
    ResponseFormatError,
    TargetError,
)
from embedding_client.backend_bedrock import BedrockBackend
from embedding_client.backend_http_api import HttpApiBackend
from embedding_client.backend_local import HttpBackend
from embedding_client.backend_sagemaker import SageMakerBackend
from embedding_client.batching import DEFAULT_BATCH_SIZE
from embedding_client.stack_outputs import backend_for_stack, load_outputs
from facts.embedding_api import EmbeddingOptions, non_utf8_at

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_TARGET = 3
EXIT_REFUSED = 4
EXIT_FAILED = 5
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it

# Every target flag, by name; a command offers --stack, --outputs-file and those it names.
TARGET_FLAGS: dict[str, tuple[str, dict[str, Any]]] = {
    "stack": ("--stack", {"help": "a Pulumi stack of this project (reads its outputs)"}),
    "outputs_file": ("--outputs-file", {"help": "a saved `pulumi stack output --json`"}),
    "endpoint": ("--endpoint", {"help": "a SageMaker endpoint name"}),
    "url": ("--url", {"help": "the local endpoint, e.g. http://127.0.0.1:8080"}),
    "bedrock": ("--bedrock", {"metavar": "MODEL_ID", "help": "e.g. amazon.titan-embed-text-v2:0"}),
    "http_api": ("--http-api", {"metavar": "URL", "help": "the stack's HTTP API URL (…/embed)"}),
    "model_name": ("--model-name", {"help": "any SageMaker Model (its role must reach S3)"}),
}


def at_least_one(text: str) -> int:
    """argparse type: a whole number of at least 1 (the message names the value)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def utf8_problem(text: str) -> str | None:
    """Why `text` has no UTF-8 form, else None: a byte the terminal's encoding could not read
    arrives as a lone surrogate, which no request body can carry."""
    at = non_utf8_at(text)
    if at is None:
        return None
    shown = text.encode("utf-8", "replace").decode("utf-8")
    return f"not UTF-8 text at character {at} (shown as ?): {shown!r}"


def utf8_text(text: str) -> str:
    """argparse type: text with a UTF-8 form (utf8_problem)."""
    problem = utf8_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return text


def target_parent(*offered: str) -> argparse.ArgumentParser:
    """Exactly one target: --stack, --outputs-file or one of `offered`; and --region."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_mutually_exclusive_group(required=True)
    names = ("stack", "outputs_file", *offered)
    for name in names:
        flag, settings = TARGET_FLAGS[name]
        group.add_argument(flag, **settings)
    # The flags a command does not offer read as unset, so one `build_backend` serves all.
    parent.set_defaults(**{name: None for name in TARGET_FLAGS if name not in names})
    parent.add_argument(
        "--region", help="AWS region (default: the stack's, else your AWS configuration)"
    )
    return parent


def options_parent() -> argparse.ArgumentParser:
    """The embedding API's options (facts/embedding_api.py) that `embed` and `embed file` pass."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--no-normalize", action="store_true", help="ask for raw vectors")
    parent.add_argument(
        "--no-truncate",
        action="store_true",
        help="refuse texts over the model's maximum length instead of truncating them",
    )
    prompts = parent.add_mutually_exclusive_group()
    prompts.add_argument(
        "--prompt-name",
        type=utf8_text,
        help="one of the model's prompts, e.g. query (the endpoint lists them)",
    )
    prompts.add_argument("--prompt", type=utf8_text, help="a literal prefix, e.g. 'query: '")
    parent.add_argument(
        "--dimensions", type=at_least_one, help="Matryoshka: keep this many leading dimensions"
    )
    return parent


def record_fields_parent() -> argparse.ArgumentParser:
    """Where each record of a corpus keeps its id and its text."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--id-field", default="id", help="the records' id field (%(default)s)")
    parent.add_argument(
        "--text-field", default="text", help="the records' text field (%(default)s)"
    )
    return parent


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
    """The backend the command line names (`target_parent`'s flags, and --batch-size)."""
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


def exit_code(error: EmbeddingClientError) -> int:
    """What a command exits with when `error` stops it."""
    if isinstance(error, TargetError):
        return EXIT_TARGET
    if isinstance(error, EndpointError):
        return EXIT_REFUSED if error.is_client_error else EXIT_FAILED
    if isinstance(error, ResponseFormatError):
        return EXIT_FAILED
    return EXIT_USAGE  # what was asked cannot be sent (a text too large, an option refused)
