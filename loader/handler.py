"""Lambda entry point (also called in-process by the `local` runner): event in, result dict out.

A thin shell: validate the event, build the clients, wait out IAM propagation (loader/access.py),
fetch the token, run one packaging function. Logs never name the token.
"""

from __future__ import annotations

import logging
from typing import Any

import boto3
from botocore.config import Config

from facts.loader_contract import LoaderRequest
from loader.access import wait_for_access
from loader.event import parse_event
from loader.package import package_hub_model
from loader.secrets import token_from_secret
from loader.source import package_source_archive
from loader.upload import UPLOAD_WORKERS
from loader.vendored_runtime import find_wheel
from loader.version import format_version

log = logging.getLogger("loader")
log.setLevel(logging.INFO)

# Enough pooled connections for every part uploader plus the manifest/head calls; botocore's
# standard retry mode retries throttling and 5xx on each call (parts are idempotent). The attempt
# count stays botocore's (3, or AWS_MAX_ATTEMPTS from the environment).
_CLIENT_CONFIG = Config(max_pool_connections=UPLOAD_WORKERS + 4, retries={"mode": "standard"})


def _client(session: Any, service: str) -> Any:
    """A client of `session` honouring AWS_ENDPOINT_URL(_<SERVICE>) from the environment (now)."""
    return session.client(service, config=_CLIENT_CONFIG)


def _token(request: LoaderRequest, session: Any) -> str | None:
    if request.hf_token_secret_arn:
        client = _client(session, "secretsmanager")
        return token_from_secret(client, request.hf_token_secret_arn, request.model_id)
    return request.hf_token


def handler(
    event: dict[str, Any], context: object = None, *, session: Any = None
) -> dict[str, Any]:
    """Package the model named by `event` into S3 (docs/contracts.md: event and result).

    `session`: None in Lambda (the function's role); runner `local` passes the stack's.
    """
    request = parse_event(event)
    format_version()  # fails now, before any I/O, if code/inference.py is missing
    session = session or boto3.Session()
    for wheel in request.runtime.vendored if request.runtime is not None else ():
        find_wheel(wheel)  # likewise for the wheels the ONNX engine vendors
    source = request.source_model_data_url
    log.info(
        "start model=%s revision=%s source=%s engine=%s bucket=%s token=%s",
        request.model_id,
        request.revision,
        source or "hub",
        request.artifact_variant or request.engine,
        request.bucket,
        "secret" if request.hf_token_secret_arn else ("given" if request.hf_token else "none"),
    )
    s3 = _client(session, "s3")
    wait_for_access(s3, request.bucket, request.key_prefix, model=request.model_id)
    if source:
        result = package_source_archive(request, s3)
    else:
        result = package_hub_model(request, s3, token=_token(request, session))
    log.info(
        "done model=%s url=%s sha256=%s", request.model_id, result.model_data_url, result.sha256
    )
    return result.as_dict()
