"""One run of the loader for the packager's dynamic provider: the request, the runners, the result.

Runner `lambda` invokes the loader Lambda; `local` runs its handler in this process. Imports
neither Pulumi nor the provider.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from components.packager_state import PackagerInputs
from deploy_account.session import AwsSettings
from facts.identifiers import COMMIT_SHA
from facts.loader_contract import OPTIONAL_RESULT_FIELDS, RESULT_FIELDS, LoaderRequest, LoaderResult
from facts.onnx_quantization import NO_QUANTIZATION
from facts.onnx_runtime import ONNX_MODEL_FILE

RUNNERS = ("lambda", "local")
# Runner `local` exists for models whose packaging outlasts Lambda's 15 minutes.
LOCAL_TIMEOUT_SECONDS = 4 * 60 * 60
# Above the loader Lambda's own 900 s limit, so Lambda reports its timeout before we give up.
LAMBDA_READ_TIMEOUT_SECONDS = 960
LAMBDA_CONNECT_TIMEOUT_SECONDS = 10
# The invoke's connection is silent for up to 15 minutes while the loader runs; a NAT gateway drops
# a connection idle for 350 s, and proxies often sooner. TCP keepalive probes every half minute
# from the first minute of silence keep it open (the OS default waits 2 hours before the first).
KEEPALIVE_IDLE_SECONDS = 60
KEEPALIVE_INTERVAL_SECONDS = 30
KEEPALIVE_PROBES = 5

log = logging.getLogger(__name__)


class PackagingError(RuntimeError):
    """Packaging failed; the message names the model, the runner and the loader's own error."""


@dataclass(frozen=True)
class PackagingRequest:
    """One loader run, built from the resource's checked inputs: the event and how to send it."""

    loader: LoaderRequest
    runner: str
    # Region, endpoint overrides, profile and assumed roles: the stack's AWS provider's account.
    aws: AwsSettings
    function_name: str | None
    local_timeout_seconds: float

    @classmethod
    def from_inputs(cls, inputs: Mapping[str, Any]) -> PackagingRequest:
        checked = PackagerInputs.from_mapping(inputs)
        loader = LoaderRequest(
            model_id=checked.model_id,
            bucket=checked.bucket,
            revision=checked.pinned_revision or checked.requested_revision,
            key_prefix=checked.key_prefix or "",
            hf_token=inputs.get("hf_token") or None,
            hf_token_secret_arn=checked.hf_token_secret_arn,
            source_model_data_url=checked.source_model_data_url,
            expected_sha256=checked.expected_sha256,
            engine=checked.engine,
            container_python=checked.container_python,
            onnx_file=checked.onnx_file or ONNX_MODEL_FILE,
            onnx_fusion=checked.onnx_fusion,
            onnx_quantization=checked.onnx_quantization or NO_QUANTIZATION,
            allow_pickled_weights=checked.allow_pickled_weights is True,
        )
        return cls(
            loader=loader,
            runner=checked.runner,
            aws=AwsSettings.from_inputs(inputs),
            function_name=checked.function_name,
            local_timeout_seconds=float(checked.local_timeout_seconds or LOCAL_TIMEOUT_SECONDS),
        )

    def describe(self) -> str:
        loader = self.loader
        source = loader.source_model_data_url or f"{loader.model_id}@{loader.revision}"
        return f"packaging {source} into s3://{loader.bucket}/{loader.key_prefix}"


def validate_result(request: PackagingRequest, result: Any) -> LoaderResult:
    """Check the loader's answer before it becomes state; a clear error otherwise."""
    if not isinstance(result, Mapping):
        raise PackagingError(f"{request.describe()}: the loader returned {result!r}, not a dict")
    missing = [
        name
        for name in RESULT_FIELDS
        if name not in OPTIONAL_RESULT_FIELDS and result.get(name) in (None, "")
    ]
    if missing:
        raise PackagingError(
            f"{request.describe()}: the loader result lacks {', '.join(missing)}: {result!r}"
        )
    try:
        recorded = LoaderResult.from_dict(result)
    except (TypeError, ValueError) as error:
        raise PackagingError(f"{request.describe()}: the loader returned {result!r}") from error
    loader = request.loader
    expected_prefix = f"s3://{loader.bucket}/{loader.key_prefix}"
    if not str(recorded.model_data_url).startswith(expected_prefix):
        raise PackagingError(
            f"{request.describe()}: the loader wrote {recorded.model_data_url}, "
            f"outside {expected_prefix}"
        )
    if loader.expected_sha256 and recorded.sha256 != loader.expected_sha256:
        raise PackagingError(
            f"{request.describe()}: artifact sha256 {recorded.sha256} is not the expected "
            f"{loader.expected_sha256}"
        )
    if loader.source_model_data_url is None and COMMIT_SHA.matches(loader.revision):
        if recorded.revision != loader.revision:
            raise PackagingError(
                f"{request.describe()}: the loader packaged revision {recorded.revision}, "
                f"not the pinned {loader.revision}"
            )
    return recorded


class LocalContext:
    """The slice of the Lambda context object the loader may use, for in-process runs."""

    function_name = "embedding-endpoint-local-loader"
    aws_request_id = "local"

    def __init__(self, timeout_seconds: float) -> None:
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


_LOCAL_RUN_LOCK = threading.Lock()


def endpoint_environment(aws_endpoints: Mapping[str, str]) -> dict[str, str]:
    """`AWS_ENDPOINT_URL_<SERVICE>` variables (what boto3 honours) for endpoint overrides."""
    import botocore.session

    session = botocore.session.get_session()
    environment = {}
    for service, url in aws_endpoints.items():
        try:
            service_id = session.get_service_model(service).service_id
        except Exception:  # an unknown service name: botocore cannot map it, skip it
            continue
        environment[f"AWS_ENDPOINT_URL_{str(service_id).upper().replace(' ', '_')}"] = url
    return environment


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a block and restore the previous values."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_local(request: PackagingRequest) -> LoaderResult:
    """Run `loader.handler.handler` in this process, in the stack's account, region, endpoints."""
    from loader.handler import handler

    runtime = request.loader.runtime
    if runtime is not None:
        # The in-process loader vendors the wheels from the program's cache: fetch them first.
        from components.runtime_wheels import RuntimeWheelError, ensure_wheels

        try:
            ensure_wheels(runtime)
        except RuntimeWheelError as error:
            raise PackagingError(f"{request.describe()}: {error}") from error
    region = request.aws.region
    environment = {"AWS_REGION": region, "AWS_DEFAULT_REGION": region}
    environment.update(endpoint_environment(dict(request.aws.endpoints)))
    session = request.aws.session()
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = handler(request.loader.to_event(), context, session=session)
        except BaseException as error:  # re-raised in the caller's thread below
            outcome["error"] = error

    context = LocalContext(request.local_timeout_seconds)
    # One local run at a time: the endpoint variables are process-wide.
    with _LOCAL_RUN_LOCK, patched_environ(environment):
        worker = threading.Thread(target=target, name="local-loader", daemon=True)
        worker.start()
        worker.join(request.local_timeout_seconds)
        if worker.is_alive():
            raise PackagingError(
                f"{request.describe()} with runner 'local' did not finish within "
                f"{request.local_timeout_seconds:.0f} s"
            )
    if "error" in outcome:
        error = outcome["error"]
        raise PackagingError(f"{request.describe()} with runner 'local' failed: {error}") from error
    return validate_result(request, outcome.get("result"))


def keepalive_timing_options() -> list[tuple[int, int, int]]:
    """Socket options that make keepalive probe early: idle time, interval, count (if the OS has
    them; macOS calls the idle time TCP_KEEPALIVE)."""
    idle = getattr(socket, "TCP_KEEPIDLE", None) or getattr(socket, "TCP_KEEPALIVE", None)
    wanted = (
        (idle, KEEPALIVE_IDLE_SECONDS),
        (getattr(socket, "TCP_KEEPINTVL", None), KEEPALIVE_INTERVAL_SECONDS),
        (getattr(socket, "TCP_KEEPCNT", None), KEEPALIVE_PROBES),
    )
    return [(socket.IPPROTO_TCP, option, value) for option, value in wanted if option is not None]


def with_keepalive_timing(client: Any) -> Any:
    """The client, its new connections probing after KEEPALIVE_IDLE_SECONDS of silence.

    botocore's `tcp_keepalive` sets SO_KEEPALIVE only; the timing goes into its HTTP session's
    socket options (a private attribute: should it move, the OS timing applies).
    """
    options = getattr(getattr(client, "_endpoint", None), "http_session", None)
    options = getattr(options, "_socket_options", None)
    if isinstance(options, list):
        options.extend(keepalive_timing_options())
    else:
        log.warning("cannot set TCP keepalive timing on the Lambda client; OS defaults apply")
    return client


def run_lambda(request: PackagingRequest) -> LoaderResult:
    """Invoke the loader Lambda synchronously; a FunctionError carries the loader's message."""
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    client = request.aws.client(
        "lambda",
        config=Config(
            read_timeout=LAMBDA_READ_TIMEOUT_SECONDS,
            connect_timeout=LAMBDA_CONNECT_TIMEOUT_SECONDS,
            # A retry would start a second packaging run of up to 15 minutes.
            retries={"max_attempts": 0},
            tcp_keepalive=True,
        ),
    )
    with_keepalive_timing(client)
    try:
        response = client.invoke(
            FunctionName=request.function_name,
            InvocationType="RequestResponse",
            Payload=json.dumps(request.loader.to_event()).encode(),
        )
    except (ClientError, BotoCoreError) as error:
        raise PackagingError(
            f"{request.describe()}: invoking loader Lambda {request.function_name} failed "
            f"(not retried, a retry would package twice): {error}"
        ) from error
    raw = response["Payload"].read()
    try:
        payload = json.loads(raw or b"null")
    except ValueError:
        payload = raw.decode(errors="replace")
    if response.get("FunctionError"):
        message = payload.get("errorMessage") if isinstance(payload, dict) else payload
        kind = payload.get("errorType") if isinstance(payload, dict) else None
        hint = ""
        if isinstance(message, str) and "timed out" in message:
            hint = (
                " (the model takes longer than Lambda's 15 minutes to package: "
                "`pulumi config set embedding-endpoint:packagingRunner local`)"
            )
        raise PackagingError(
            f"{request.describe()}: loader Lambda {request.function_name} failed: "
            f"{kind + ': ' if kind else ''}{message}{hint}"
        )
    return validate_result(request, payload)


def run_loader(request: PackagingRequest) -> LoaderResult:
    if request.runner == "lambda":
        return run_lambda(request)
    return run_local(request)
