"""One run of the loader for the packager's dynamic provider: the request, the runners, the result.

Runner `lambda` invokes the loader Lambda synchronously; runner `local` runs the same handler in
this process (emulator stacks, and models whose packaging outlasts Lambda's 15 minutes). Either
way the loader's answer is checked here before it becomes state. Imports neither Pulumi nor the
provider: the provider imports this.
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
from dataclasses import dataclass, field
from typing import Any

from embedding_client.aws_session import AwsSettings
from facts.identifiers import COMMIT_SHA

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
# What the loader returns (docs/contracts.md); every name must be present in a result.
RESULT_NAMES = (
    "model_data_url",
    "revision",
    "sha256",
    "size_bytes",
    "weights_bytes",
    "files",
    "format_version",
)


log = logging.getLogger(__name__)


class PackagingError(RuntimeError):
    """Packaging failed; the message names the model, the runner and the loader's own error."""


@dataclass(frozen=True)
class PackagingRequest:
    """One loader run, built from the resource's checked inputs."""

    model_id: str
    revision: str
    bucket: str
    key_prefix: str
    runner: str
    # Region, endpoint overrides, profile and assumed roles: the stack's AWS provider's account.
    aws: AwsSettings
    function_name: str | None
    hf_token: str | None = field(repr=False)
    hf_token_secret_arn: str | None
    source_model_data_url: str | None
    expected_sha256: str | None
    local_timeout_seconds: float
    # As `check` resolved it: "onnx" also names the container's Python (its runtime wheel).
    engine: str = "torch"
    container_python: str | None = None
    # The graph the ONNX engine runs when the stack named one (`onnxFile`); None: onnx/model.onnx.
    onnx_file: str | None = None
    # Whether the loader fuses the graph (the stack's `onnxFusion`); only with engine "onnx".
    onnx_fusion: bool = False
    # The stack's `allowPickledWeights`: the loader packages pickle-only weights.
    allow_pickled_weights: bool = False

    @classmethod
    def from_inputs(cls, inputs: Mapping[str, Any]) -> PackagingRequest:
        revision = inputs.get("pinned_revision") or inputs["requested_revision"]
        return cls(
            model_id=inputs["model_id"],
            revision=revision,
            bucket=inputs["bucket"],
            key_prefix=inputs.get("key_prefix") or "",
            runner=inputs["runner"],
            aws=AwsSettings.from_inputs(inputs),
            function_name=inputs.get("function_name"),
            hf_token=inputs.get("hf_token") or None,
            hf_token_secret_arn=inputs.get("hf_token_secret_arn"),
            source_model_data_url=inputs.get("source_model_data_url"),
            expected_sha256=inputs.get("expected_sha256"),
            local_timeout_seconds=float(
                inputs.get("local_timeout_seconds") or LOCAL_TIMEOUT_SECONDS
            ),
            engine=inputs.get("engine") or "torch",
            container_python=inputs.get("container_python"),
            onnx_file=inputs.get("onnx_file"),
            onnx_fusion=inputs.get("engine") == "onnx" and inputs.get("onnx_fusion") is not False,
            allow_pickled_weights=inputs.get("allow_pickled_weights") is True,
        )

    def event(self) -> dict[str, Any]:
        """The loader event (docs/contracts.md)."""
        return {
            "model_id": self.model_id,
            "revision": self.revision,
            "bucket": self.bucket,
            "key_prefix": self.key_prefix,
            "hf_token": self.hf_token,
            "hf_token_secret_arn": self.hf_token_secret_arn,
            "source_model_data_url": self.source_model_data_url,
            "expected_sha256": self.expected_sha256,
            "engine": self.engine,
            "container_python": self.container_python,
            "onnx_file": self.onnx_file,
            "onnx_fusion": self.onnx_fusion,
            "allow_pickled_weights": self.allow_pickled_weights,
        }

    def describe(self) -> str:
        source = self.source_model_data_url or f"{self.model_id}@{self.revision}"
        return f"packaging {source} into s3://{self.bucket}/{self.key_prefix}"


def validate_result(request: PackagingRequest, result: Any) -> dict[str, Any]:
    """Check the loader's answer before it becomes state; a clear error otherwise."""
    if not isinstance(result, Mapping):
        raise PackagingError(f"{request.describe()}: the loader returned {result!r}, not a dict")
    missing = [name for name in RESULT_NAMES if result.get(name) in (None, "")]
    if missing:
        raise PackagingError(
            f"{request.describe()}: the loader result lacks {', '.join(missing)}: {result!r}"
        )
    expected_prefix = f"s3://{request.bucket}/{request.key_prefix}"
    if not str(result["model_data_url"]).startswith(expected_prefix):
        raise PackagingError(
            f"{request.describe()}: the loader wrote {result['model_data_url']}, "
            f"outside {expected_prefix}"
        )
    if request.expected_sha256 and result["sha256"] != request.expected_sha256:
        raise PackagingError(
            f"{request.describe()}: artifact sha256 {result['sha256']} is not the expected "
            f"{request.expected_sha256}"
        )
    if request.source_model_data_url is None and COMMIT_SHA.matches(request.revision):
        if result["revision"] != request.revision:
            raise PackagingError(
                f"{request.describe()}: the loader packaged revision {result['revision']}, "
                f"not the pinned {request.revision}"
            )
    return dict(result)


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


def run_local(request: PackagingRequest) -> dict[str, Any]:
    """Run `loader.handler.handler` in this process, in the stack's account, region, endpoints."""
    from loader.handler import handler

    if request.engine == "onnx":
        # The in-process loader vendors the wheel from the program's cache: fetch it first.
        from components.runtime_wheels import RuntimeWheelError, ensure_wheel
        from facts.onnx_runtime import runtime_wheel

        runtime = runtime_wheel(request.container_python)
        try:
            if runtime is not None:
                ensure_wheel(runtime)
        except RuntimeWheelError as error:
            raise PackagingError(f"{request.describe()}: {error}") from error
    region = request.aws.region
    environment = {"AWS_REGION": region, "AWS_DEFAULT_REGION": region}
    environment.update(endpoint_environment(dict(request.aws.endpoints)))
    session = request.aws.session()
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = handler(request.event(), context, session=session)
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

    botocore's `tcp_keepalive` turns on SO_KEEPALIVE only; the timing goes into the socket
    options its HTTP session hands to urllib3 for every new connection. That list is botocore's
    own attribute: should it move, the connection keeps SO_KEEPALIVE with the OS timing.
    """
    options = getattr(getattr(client, "_endpoint", None), "http_session", None)
    options = getattr(options, "_socket_options", None)
    if isinstance(options, list):
        options.extend(keepalive_timing_options())
    else:
        log.warning("cannot set TCP keepalive timing on the Lambda client; OS defaults apply")
    return client


def run_lambda(request: PackagingRequest) -> dict[str, Any]:
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
            Payload=json.dumps(request.event()).encode(),
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


def run_loader(request: PackagingRequest) -> dict[str, Any]:
    """Package with the configured runner."""
    if request.runner == "lambda":
        return run_lambda(request)
    return run_local(request)
