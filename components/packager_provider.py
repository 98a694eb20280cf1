"""The dynamic provider behind HfModelPackager: pin, diff, run the loader, delete, read.

Pulumi pickles the provider object with dill and unpickles it in a separate provider process,
which may not have this project on `sys.path` (pulumi issue 7453). So the pickled part is a thin
shell, `PackagerProvider`, pickled *by value*: it holds the project root as plain data and, inside
each method, puts that root on `sys.path` and imports this module to do the work. Everything below
the shell is ordinary, importable, testable code; every AWS and Hub client is created per call.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

RUNNERS = ("lambda", "local")
# Runner `local` exists for models whose packaging outlasts Lambda's 15 minutes.
LOCAL_TIMEOUT_SECONDS = 4 * 60 * 60
# Above the loader Lambda's own 900 s limit, so Lambda reports its timeout before we give up.
LAMBDA_READ_TIMEOUT_SECONDS = 960
LAMBDA_CONNECT_TIMEOUT_SECONDS = 10

# Properties the dynamic resource exposes (declared on the Resource class, seeded as None).
RESULT_NAMES = (
    "model_data_url",
    "revision",
    "sha256",
    "size_bytes",
    "weights_bytes",
    "files",
    "format_version",
)
OUTPUT_NAMES = (*RESULT_NAMES, "pinned_revision")
# Inputs that identify the artifact: a change to any of them packages a new one (a replacement).
REPLACING_INPUTS = (
    "bucket",
    "key_prefix",
    "model_id",
    "pinned_revision",
    "source_model_data_url",
    "format_version",
)
# Inputs copied into the outputs (state) so that delete/read/update have what they need.
STATE_INPUTS = (
    "model_id",
    "requested_revision",
    "pinned_revision",
    "bucket",
    "key_prefix",
    "source_model_data_url",
    "expected_sha256",
    "retain_artifacts",
    "runner",
    "region",
    "aws_endpoints",
    "function_name",
    "hf_token_secret_arn",
    "format_version",
    "local_timeout_seconds",
)
_COMMIT_SHA = re.compile(r"^[0-9a-f]{40}$")
# pulumi.runtime.rpc.UNKNOWN: what an input not yet known during preview looks like here.
_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


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
    region: str
    aws_endpoints: tuple[tuple[str, str], ...]
    function_name: str | None
    hf_token: str | None
    hf_token_secret_arn: str | None
    source_model_data_url: str | None
    expected_sha256: str | None
    local_timeout_seconds: float

    @classmethod
    def from_inputs(cls, inputs: Mapping[str, Any]) -> PackagingRequest:
        revision = inputs.get("pinned_revision") or inputs["requested_revision"]
        return cls(
            model_id=inputs["model_id"],
            revision=revision,
            bucket=inputs["bucket"],
            key_prefix=inputs.get("key_prefix") or "",
            runner=inputs["runner"],
            region=inputs["region"],
            aws_endpoints=tuple(sorted((inputs.get("aws_endpoints") or {}).items())),
            function_name=inputs.get("function_name"),
            hf_token=inputs.get("hf_token") or None,
            hf_token_secret_arn=inputs.get("hf_token_secret_arn"),
            source_model_data_url=inputs.get("source_model_data_url"),
            expected_sha256=inputs.get("expected_sha256"),
            local_timeout_seconds=float(
                inputs.get("local_timeout_seconds") or LOCAL_TIMEOUT_SECONDS
            ),
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
        }

    def describe(self) -> str:
        source = self.source_model_data_url or f"{self.model_id}@{self.revision}"
        return f"packaging {source} into s3://{self.bucket}/{self.key_prefix}"


# --- the pure decisions ------------------------------------------------------------------------


def is_unknown(value: object) -> bool:
    """True for an input Pulumi does not know yet (preview)."""
    return value == _UNKNOWN


def changed_inputs(olds: Mapping[str, Any], news: Mapping[str, Any], names: tuple[str, ...]):
    """The names among `names` whose value differs between olds and news (unknown = changed)."""
    return [name for name in names if olds.get(name) != news.get(name)]


def diff_inputs(olds: Mapping[str, Any], news: Mapping[str, Any]) -> DiffResult:
    """Replace (create first, delete after) when the artifact's identity changes.

    Identity: bucket, prefix, model, pinned revision, source and format version. A format change
    rebuilds the same key; the old resource's delete then finds the new sha256 in the manifest
    and leaves the object alone. Anything else (retention, runner, endpoints, the expected
    sha256) only updates the state, and a token change alone is no change at all.
    """
    replaces = changed_inputs(olds, news, REPLACING_INPUTS)
    bookkeeping = changed_inputs(
        olds, news, tuple(n for n in STATE_INPUTS if n not in REPLACING_INPUTS)
    )
    return DiffResult(
        changes=bool(replaces or bookkeeping),
        replaces=replaces,
        stables=[],
        delete_before_replace=False,
    )


def state_outputs(inputs: Mapping[str, Any], result: Mapping[str, Any]) -> dict[str, Any]:
    """Outputs = the inputs delete/read need (never the token) plus the loader's result."""
    outs = {name: inputs.get(name) for name in STATE_INPUTS}
    outs.update({name: result.get(name) for name in RESULT_NAMES})
    # The pin stays what `check` decided (None for a source archive, whose `revision` is the
    # loader's id of the source object), so that the next diff compares like with like.
    outs["pinned_revision"] = inputs.get("pinned_revision")
    return outs


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
    if request.source_model_data_url is None and _COMMIT_SHA.match(request.revision):
        if result["revision"] != request.revision:
            raise PackagingError(
                f"{request.describe()}: the loader packaged revision {result['revision']}, "
                f"not the pinned {request.revision}"
            )
    return dict(result)


# --- revision pinning --------------------------------------------------------------------------


def check_inputs(olds: Mapping[str, Any], news: Mapping[str, Any]) -> CheckResult:
    """Pin the requested revision to a commit sha, keeping the old pin while the request is same.

    A branch such as `main` moves upstream; re-resolving it on every `pulumi up` would repackage
    and redeploy silently. The pin moves only when model id, requested revision or source change,
    or after `pulumi refresh` found the branch moved (see `read_artifact`).
    """
    inputs = dict(news)
    failures: list[CheckFailure] = []
    runner = inputs.get("runner")
    if not is_unknown(runner) and runner not in RUNNERS:
        failures.append(
            CheckFailure("runner", f"runner {runner!r} is invalid: expected one of lambda, local")
        )
    if runner == "lambda" and not inputs.get("function_name"):
        failures.append(CheckFailure("function_name", "runner 'lambda' needs the loader function"))
    model_id, requested = inputs.get("model_id"), inputs.get("requested_revision")
    if inputs.get("source_model_data_url"):
        # The loader keys a training output by its ETag/VersionId; nothing to pin on the Hub.
        inputs["pinned_revision"] = None
        return CheckResult(inputs, failures)
    if is_unknown(model_id) or is_unknown(requested) or not model_id or not requested:
        return CheckResult(inputs, failures)
    same_request = (
        olds.get("model_id") == model_id
        and olds.get("requested_revision") == requested
        and not olds.get("source_model_data_url")
        and olds.get("pinned_revision")
    )
    if same_request:
        inputs["pinned_revision"] = olds["pinned_revision"]
        return CheckResult(inputs, failures)
    if _COMMIT_SHA.match(requested):
        inputs["pinned_revision"] = requested
        return CheckResult(inputs, failures)
    from loader.errors import LoaderError
    from loader.hub import fetch_snapshot

    token = None if is_unknown(inputs.get("hf_token")) else inputs.get("hf_token")
    try:
        snapshot = fetch_snapshot(model_id, requested, token)
    except LoaderError as error:
        failures.append(CheckFailure("requested_revision", str(error)))
        return CheckResult(inputs, failures)
    inputs["pinned_revision"] = snapshot.revision
    if snapshot.gated and not token and not inputs.get("hf_token_secret_arn"):
        # Caught here, at preview, rather than after the loader Lambda was created.
        failures.append(
            CheckFailure(
                "hf_token",
                f"model '{model_id}' is gated on the Hub: accept its terms with your account, "
                "then `pulumi config set --secret embedding-endpoint:hfToken <token>`",
            )
        )
    return CheckResult(inputs, failures)


# --- running the loader ------------------------------------------------------------------------


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
    """Run `loader.handler.handler` in this process, against the stack's region and endpoints."""
    from loader.handler import handler

    environment = {"AWS_REGION": request.region, "AWS_DEFAULT_REGION": request.region}
    environment.update(endpoint_environment(dict(request.aws_endpoints)))
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = handler(request.event(), context)
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


def run_lambda(request: PackagingRequest) -> dict[str, Any]:
    """Invoke the loader Lambda synchronously; a FunctionError carries the loader's message."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client(
        "lambda",
        region_name=request.region,
        endpoint_url=dict(request.aws_endpoints).get("lambda"),
        config=Config(
            read_timeout=LAMBDA_READ_TIMEOUT_SECONDS,
            connect_timeout=LAMBDA_CONNECT_TIMEOUT_SECONDS,
            # A retry would start a second packaging run of up to 15 minutes.
            retries={"max_attempts": 0},
        ),
    )
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


# --- the artifact in S3 ------------------------------------------------------------------------


def s3_client(state: Mapping[str, Any]):
    """An S3 client for the stack's region and (emulator) endpoint."""
    import boto3

    endpoints = state.get("aws_endpoints") or {}
    return boto3.client("s3", region_name=state.get("region"), endpoint_url=endpoints.get("s3"))


def delete_artifact(state: Mapping[str, Any]) -> None:
    """Remove the archive and its manifest, unless the stack retains artifacts.

    Only while the manifest still records this resource's sha256: if a newer resource rebuilt the
    same key, its artifact is not this one to delete.
    """
    from botocore.exceptions import ClientError

    from loader.artifacts import delete_artifact as delete_recorded_artifact

    if state.get("retain_artifacts") or not state.get("model_data_url"):
        return
    try:
        delete_recorded_artifact(
            s3_client(state), state["model_data_url"], only_if_sha256=state.get("sha256")
        )
    except ClientError as error:
        # The bucket went first (deleted out of band): nothing of ours is left to remove.
        if error.response.get("Error", {}).get("Code") != "NoSuchBucket":
            raise


def read_artifact(resource_id: str, state: Mapping[str, Any]) -> ReadResult:
    """Report the resource gone when its archive was deleted or replaced out of band.

    An empty id tells Pulumi the resource no longer exists: `pulumi refresh` drops it from the
    state and the next `pulumi up` packages it again.
    """
    from loader.artifacts import find_existing
    from loader.keys import ArtifactLocation, parse_s3_url

    if not state.get("model_data_url"):
        return ReadResult(resource_id, dict(state))
    bucket, key = parse_s3_url(state["model_data_url"])
    recorded = find_existing(
        s3_client(state), ArtifactLocation(bucket, key), str(state.get("format_version"))
    )
    if recorded is None or recorded.sha256 != state.get("sha256"):
        return ReadResult("", {})
    if upstream_moved(state):
        # Drop the pin from the recorded inputs: the next `check` re-resolves the branch, so
        # `pulumi up --refresh` repackages the new commit (and plain `pulumi up` never does).
        inputs = {name: state.get(name) for name in STATE_INPUTS} | {"pinned_revision": None}
        return ReadResult(resource_id, dict(state), inputs)
    return ReadResult(resource_id, dict(state))


def upstream_moved(state: Mapping[str, Any]) -> bool:
    """True when the requested branch or tag now names another commit than the pinned one.

    Best effort: when the Hub cannot answer (offline, private repo without a token in the
    state), the pin stands and refresh reports no drift.
    """
    from loader.errors import LoaderError
    from loader.hub import resolve_revision

    requested, pinned = state.get("requested_revision"), state.get("pinned_revision")
    if state.get("source_model_data_url") or not requested or _COMMIT_SHA.match(requested):
        return False
    try:
        return resolve_revision(state["model_id"], requested) != pinned
    except LoaderError:
        return False


# --- provider operations (what the shell calls) --------------------------------------------------


def check(olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
    return check_inputs(olds, news)


def diff(resource_id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
    return diff_inputs(olds, news)


def create(props: dict[str, Any]) -> CreateResult:
    result = run_loader(PackagingRequest.from_inputs(props))
    expected_format = props.get("format_version")
    if expected_format and result["format_version"] != expected_format:
        # Otherwise every later diff would see a format change and replace the artifact again.
        raise PackagingError(
            f"the loader packaged format {result['format_version']} but this program's loader is "
            f"{expected_format}: the loader Lambda runs stale code; run `pulumi up` again after "
            "its code update, or use runner 'local'"
        )
    return CreateResult(result["model_data_url"], state_outputs(props, result))


def update(resource_id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
    """Only state changes reach here (see `diff_inputs`): the artifact itself stays as it is."""
    result = {name: olds.get(name) for name in RESULT_NAMES}
    expected = news.get("expected_sha256")
    if expected and expected != result["sha256"]:
        raise PackagingError(
            f"artifact {result['model_data_url']} has sha256 {result['sha256']}, not the "
            f"expected {expected}: update expectedArtifactSha256 or the model revision"
        )
    return UpdateResult(state_outputs(news, result))


def delete(resource_id: str, props: dict[str, Any]) -> None:
    delete_artifact(props)


def read(resource_id: str, props: dict[str, Any]) -> ReadResult:
    return read_artifact(resource_id, props)


# --- the pickled shell ---------------------------------------------------------------------------


class PackagerProvider(ResourceProvider):
    """Pickled by value; forwards each call to this module, imported from the project root."""

    def __init__(self, project_root: str | None = None) -> None:
        ResourceProvider.__init__(self)
        self.project_root = project_root or str(Path(__file__).resolve().parents[1])

    def _operations(self):
        import importlib
        import sys

        if self.project_root not in sys.path:
            sys.path.insert(0, self.project_root)
        return importlib.import_module("components.packager_provider")

    def check(self, olds, news):
        return self._operations().check(olds, news)

    def diff(self, _id, olds, news):
        return self._operations().diff(_id, olds, news)

    def create(self, props):
        return self._operations().create(props)

    def update(self, _id, olds, news):
        return self._operations().update(_id, olds, news)

    def delete(self, _id, props):
        return self._operations().delete(_id, props)

    def read(self, id_, props):
        return self._operations().read(id_, props)


def _pickle_by_value(cls: type) -> type:
    """Make dill serialize `cls` and its methods by value, as it does for `__main__` objects.

    dill pickles a class found at `module.qualname` by reference, i.e. as an import the provider
    process may be unable to do; objects of `__main__` are always pickled with their code.
    """
    cls.__module__ = "__main__"
    for member in vars(cls).values():
        function = getattr(member, "__func__", member)
        if inspect.isfunction(function):
            function.__module__ = "__main__"
    return cls


_pickle_by_value(PackagerProvider)
