"""A stack of this project as a target: its outputs (`pulumi stack output --json`, run now or
saved to a file) and the backend they name."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from typing import Any

from embedding_client.backend import EmbeddingBackend, TargetError
from embedding_client.backend_bedrock import BedrockBackend
from embedding_client.backend_http_api import HttpApiBackend
from embedding_client.backend_sagemaker import SageMakerBackend
from embedding_client.batching import DEFAULT_BATCH_SIZE
from facts import stack as stack_facts

# A CLI that waits for input (a passphrase prompt) would otherwise hang the command for good.
CLI_TIMEOUT_SECONDS = 300


def stack_outputs(
    stack: str, cwd: str | None = None, instead: str = "--endpoint/--bedrock/--url"
) -> dict[str, Any]:
    """`pulumi stack output --json -s STACK` (no secret is shown), run in `cwd` (the project)."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise TargetError(
            "the pulumi CLI is not on PATH (install it: `curl -fsSL https://get.pulumi.com | sh`); "
            f"or use {instead} instead"
        )
    try:
        completed = subprocess.run(
            [pulumi, "stack", "output", "--json", "-s", stack],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            timeout=CLI_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        raise TargetError(
            f"`pulumi stack output -s {stack}` gave no answer in {CLI_TIMEOUT_SECONDS} s "
            "(a passphrase prompt? set PULUMI_CONFIG_PASSPHRASE)"
        ) from None
    if completed.returncode != 0:
        detail = completed.stderr.strip() or completed.stdout.strip()
        raise TargetError(f"`pulumi stack output -s {stack}` failed: {detail}")
    return read_outputs(completed.stdout, f"stack {stack}")


def load_outputs(stack: str | None, outputs_file: str | None, **cli: Any) -> dict[str, Any]:
    """The stack's outputs: from `outputs_file` (`pulumi stack output --json` saved) or the CLI
    (`cli`: `stack_outputs`'s cwd and alternative)."""
    if not outputs_file:
        return stack_outputs(stack or "", **cli)
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


def _output(outputs: Mapping[str, Any], key: str) -> str:
    value = outputs.get(key)
    if not isinstance(value, str) or not value:
        raise TargetError(
            f"stack output {key!r} is missing; the stack has: {sorted(outputs) or 'no outputs'} "
            "(was `pulumi up` run for this stack?)"
        )
    return value


def backend_for_stack(
    outputs: Mapping[str, Any], *, use_http_api: bool = False, batch_size: int | None = None
) -> EmbeddingBackend:
    """The backend a stack deployed, from its `pulumi stack output --json`."""
    region = _output(outputs, stack_facts.REGION)
    if use_http_api:
        return HttpApiBackend(
            _output(outputs, stack_facts.HTTP_API_URL),
            region,
            batch_size=batch_size or DEFAULT_BATCH_SIZE,
        )
    backend = outputs.get(stack_facts.BACKEND, "sagemaker")
    if backend == "sagemaker":
        # A local stack's endpoint is served on this machine; its outputs say where.
        runtime_url = outputs.get(stack_facts.SAGEMAKER_RUNTIME_URL) or None
        return SageMakerBackend(
            _output(outputs, stack_facts.ENDPOINT_NAME),
            region,
            endpoint_url=runtime_url,
            batch_size=batch_size,
        )
    if backend == "bedrock":
        return BedrockBackend(_output(outputs, stack_facts.BEDROCK_MODEL_ID), region)
    raise TargetError(f"stack output 'backend' is {backend!r}; expected 'sagemaker' or 'bedrock'")
