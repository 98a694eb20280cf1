"""FailedEndpointGuard: removes a `Failed` endpoint of the stack's name, so the next up recovers.

SageMaker leaves a first create that never became healthy `Failed`, accepting only DeleteEndpoint,
and the next `pulumi up` would fail forever. This dynamic resource runs before the Endpoint:
`check` records a `Failed`, `Deleting`, absent or unrecorded endpoint in `failed_endpoint` (a
change replaces the guard and the Endpoint with it), `create`/`update` delete it, and an endpoint
without this stack's tags is never touched. The whole story: docs/failures.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    UpdateResult,
)

from components.endpoint_record import endpoint_identity as identity
from components.endpoint_record import read_record
from components.project_provider import ProjectProvider, aws_inputs, is_unknown, pickle_by_value
from deploy_account.session import AwsSettings
from facts.sagemaker_endpoints import describe_endpoint as describe

# The provider's own deadline (dynamic providers ignore CustomTimeouts). Deleting a serverless
# endpoint takes minutes; Terraform waits 10 for the same thing.
DELETE_TIMEOUT_SECONDS = 900
DELETE_POLL_SECONDS = 10
OUTPUT_NAMES = ("failed_endpoint", "failure_reason")
# `failed_endpoint` when no endpoint of the name exists: "absent <unique>", new at every check.
ABSENT_MARKER = "absent"
# `failed_endpoint` for this stack's endpoint that the state never recorded: "untracked <id>".
UNTRACKED_MARKER = "untracked"
# Statuses an endpoint leaves by itself; an unrecorded one is waited for before it is removed.
SETTLING = ("Creating", "Updating", "SystemUpdating", "RollingBack")
# The tag that tells two stacks of one project and stack name apart (another backend, another
# person): the name of the stack's own artifact bucket, which S3 auto-names uniquely.
OWNER_ID_TAG = "embedding-endpoint:owner"
INPUT_NAMES = (
    "endpoint_name",
    "owner_tags",
    "import_command",
    "record_bucket",
    "record_key",
    "region",
    "aws_profile",
    "aws_assume_roles",
    "aws_endpoints",
    "failed_endpoint",
    "failure_reason",
    "delete_timeout_seconds",
    "delete_poll_seconds",
)


def sagemaker_client(props: Any) -> Any:
    """A SageMaker client in the stack's account and region (the resource's recorded settings)."""
    return AwsSettings.from_inputs(props).client("sagemaker")


def endpoint_tags(client: Any, described: Any) -> dict[str, str]:
    tags: dict[str, str] = {}
    pages = client.get_paginator("list_tags").paginate(ResourceArn=described["EndpointArn"])
    for page in pages:
        tags.update({tag["Key"]: tag["Value"] for tag in page.get("Tags", [])})
    return tags


def foreign_owner(tags: dict[str, str], owner_tags: dict[str, str]) -> bool:
    """True unless the endpoint carries this stack's owner tags (none declared: no check).

    `OWNER_ID_TAG` is compared only when both sides have it: older endpoints lack it, and a new
    stack does not know it at preview.
    """
    for key, value in owner_tags.items():
        known = value is not None and not is_unknown(value)
        if key == OWNER_ID_TAG:
            if known and key in tags and tags[key] != value:
                return True
        elif key not in tags or (known and tags[key] != value):
            return True
    return False


def foreign_endpoint_failure(name: str, tags: dict[str, str], import_command: str) -> str:
    shown = ", ".join(f"{key}={value}" for key, value in sorted(tags.items())) or "no tags"
    return (
        f"an endpoint named {name} already exists and is not this stack's (its tags: {shown}); "
        "it is left alone. Another stack of the same project and stack name (in another "
        "backend?) or someone else created it. Choose another stack name, delete that endpoint "
        f"if it is unused, or adopt it into this stack: {import_command}"
    )


def unrecorded(props: Any, described: Any, tags: dict[str, str]) -> bool:
    """True for this stack's endpoint that the state never recorded (components/endpoint_record.py).

    Anything uncertain (no OWNER_ID_TAG, an unknown bucket, S3 unreadable) counts as recorded.
    """
    bucket, key = props.get("record_bucket"), props.get("record_key")
    if OWNER_ID_TAG not in tags or not bucket or not key or is_unknown(bucket):
        return False
    try:
        recorded = read_record(AwsSettings.from_inputs(props).client("s3"), bucket, key)
    except Exception:  # noqa: BLE001 - uncertain: never remove on a guess
        return False
    return recorded != identity(described)


def _wait(client: Any, name: str, deadline: float, poll: float, until: Any, late: str) -> Any:
    """DescribeEndpoint once `until(described)` holds (None: gone); TimeoutError `late` if never."""
    import time

    while not until(described := describe(client, name)):
        if time.monotonic() >= deadline:
            raise TimeoutError(late.format(status=described["EndpointStatus"]))
        time.sleep(poll)
    return described


def remove_failed(props: Any) -> None:
    """Delete the endpoint `failed_endpoint` names, if it is still that `Failed` endpoint.

    An unrecorded one (`UNTRACKED_MARKER`) is first waited for while it settles.
    """
    import time

    name, wanted = props["endpoint_name"], props.get("failed_endpoint") or ""
    if not wanted:
        return
    client = sagemaker_client(props)
    timeout = float(props.get("delete_timeout_seconds") or DELETE_TIMEOUT_SECONDS)
    deadline = time.monotonic() + timeout
    poll = float(props.get("delete_poll_seconds") or 0)
    untracked = wanted.startswith(UNTRACKED_MARKER)
    described = _wait(
        client,
        name,
        deadline,
        poll,
        lambda found: not untracked or found is None or found["EndpointStatus"] not in SETTLING,
        f"the endpoint {name} the state does not hold is still {{status}}; run `pulumi up` again "
        "once it settled",
    )
    if described is None:
        return  # gone already
    status = described["EndpointStatus"]
    marker = f"{UNTRACKED_MARKER} {identity(described)}" if untracked else identity(described)
    if status in (("Failed", "InService", "OutOfService") if untracked else ("Failed",)):
        if marker != wanted:
            return
        client.delete_endpoint(EndpointName=name)
    elif status != "Deleting":
        return  # recreated healthy since `check`: nothing of ours to delete
    _wait(
        client,
        name,
        deadline,
        poll,
        lambda found: found is None,
        f"the failed endpoint {name} was not deleted within {timeout:g} s; run `pulumi up` again "
        f"once it is gone (aws sagemaker describe-endpoint --endpoint-name {name})",
    )


def _outputs(props: Any) -> dict[str, Any]:
    return {name: props.get(name) for name in INPUT_NAMES}


# --- the operations (called by the pickled shell) ---------------------------------------------


def check(olds: Any, news: Any) -> CheckResult:
    """Record a `Failed`, `Deleting` or absent endpoint of this name; else keep the state's."""
    inputs = dict(news)
    inputs["failed_endpoint"] = (olds or {}).get("failed_endpoint") or ""
    inputs["failure_reason"] = (olds or {}).get("failure_reason") or ""
    name = inputs["endpoint_name"]
    try:
        client = sagemaker_client(inputs)
        described = describe(client, name)
        tags = endpoint_tags(client, described) if described is not None else {}
    except Exception as error:  # noqa: BLE001 - reported as a failure naming the endpoint
        return CheckResult(
            inputs,
            [CheckFailure("endpoint_name", f"cannot read SageMaker endpoint {name}: {error}")],
        )
    if described is None:
        # Always a new value: an Endpoint still in state for a deleted endpoint is recreated,
        # and one missing from state is created anyway.
        inputs["failed_endpoint"] = f"{ABSENT_MARKER} {uuid.uuid4().hex}"
        return CheckResult(inputs, [])
    if foreign_owner(tags, inputs.get("owner_tags") or {}):
        message = foreign_endpoint_failure(name, tags, inputs.get("import_command") or "")
        return CheckResult(inputs, [CheckFailure("endpoint_name", message)])
    if described["EndpointStatus"] in ("Failed", "Deleting"):
        inputs["failed_endpoint"] = identity(described)
        inputs["failure_reason"] = described.get("FailureReason") or ""
    elif unrecorded(inputs, described, tags):
        inputs["failed_endpoint"] = f"{UNTRACKED_MARKER} {identity(described)}"
        inputs["failure_reason"] = "an endpoint of this stack that the state does not hold"
    return CheckResult(inputs, [])


def diff(_id: str, olds: Any, news: Any) -> DiffResult:
    """A new `failed_endpoint` replaces the guard, and with it the Endpoint (`replace_with`)."""
    changed = [name for name in INPUT_NAMES if olds.get(name) != news.get(name)]
    replaces = [name for name in ("failed_endpoint",) if name in changed]
    return DiffResult(
        changes=bool(changed), replaces=replaces, stables=[], delete_before_replace=False
    )


def create(props: Any) -> CreateResult:
    remove_failed(props)
    return CreateResult(props["endpoint_name"], _outputs(props))


def update(_id: str, olds: Any, news: Any) -> UpdateResult:
    if news.get("failed_endpoint") != olds.get("failed_endpoint"):
        remove_failed(news)
    return UpdateResult(_outputs(news))


def delete(_id: str, props: Any) -> None:
    """On destroy, remove a `Failed` endpoint of this name that never made it into state."""
    client = sagemaker_client(props)
    described = describe(client, props["endpoint_name"])
    if described is None or described["EndpointStatus"] != "Failed":
        return
    if foreign_owner(endpoint_tags(client, described), props.get("owner_tags") or {}):
        return  # another stack's: never ours to delete
    remove_failed({**props, "failed_endpoint": identity(described)})


def read(id_: str, props: Any) -> ReadResult:
    return ReadResult(id_, dict(props))


class FailedEndpointGuardProvider(ProjectProvider):
    OPERATIONS_MODULE = "components.failed_endpoint_guard"


pickle_by_value(FailedEndpointGuardProvider)


@dataclass(frozen=True)
class FailedEndpointGuardArgs:
    """Which endpoint name to watch, where."""

    endpoint_name: str
    region: str
    # The stack's profile, role chain and endpoint overrides (None: default credentials).
    aws: AwsSettings | None = None
    # The tags that make an endpoint of this name this stack's (see `foreign_owner`); an
    # endpoint without them is never touched, and preview says how to adopt it.
    owner_tags: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    import_command: pulumi.Input[str] = ""
    # Where components/endpoint_record.py records the endpoint the state holds (None: nowhere,
    # and an unrecorded endpoint is never removed).
    record_bucket: pulumi.Input[str] | None = None
    record_key: str | None = None
    delete_timeout_seconds: int = DELETE_TIMEOUT_SECONDS
    delete_poll_seconds: int = DELETE_POLL_SECONDS

    def __post_init__(self) -> None:
        if not self.endpoint_name or not self.region:
            raise ValueError(
                "FailedEndpointGuardArgs.endpoint_name and .region must be set: the endpoint "
                "to watch and its region"
            )
        if self.aws is not None and self.aws.region != self.region:
            raise ValueError(
                f"FailedEndpointGuardArgs.aws.region {self.aws.region!r} differs from region "
                f"{self.region!r}: expected the endpoint's region"
            )
        if self.delete_timeout_seconds <= 0 or self.delete_poll_seconds < 0:
            raise ValueError(
                "FailedEndpointGuardArgs.delete_timeout_seconds must be positive and "
                "delete_poll_seconds not negative"
            )


class FailedEndpointGuard(pulumi.dynamic.Resource):
    """Removes a `Failed` endpoint of the watched name; its `failed_endpoint` says which."""

    # The endpoint removed last (failed, deleting or unrecorded), or the absent marker: the
    # Endpoint's replacement trigger.
    failed_endpoint: pulumi.Output[str]
    failure_reason: pulumi.Output[str]

    def __init__(
        self, name: str, args: FailedEndpointGuardArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        aws = args.aws or AwsSettings(region=args.region)
        props = {
            "endpoint_name": args.endpoint_name,
            "owner_tags": dict(args.owner_tags),
            "import_command": args.import_command,
            "record_bucket": args.record_bucket,
            "record_key": args.record_key,
            **aws_inputs(aws),
            "delete_timeout_seconds": args.delete_timeout_seconds,
            "delete_poll_seconds": args.delete_poll_seconds,
        }
        # Outputs must exist as properties for Pulumi to expose them; `check` fills them in.
        seeded = {key: None for key in OUTPUT_NAMES} | props
        super().__init__(FailedEndpointGuardProvider(), name, seeded, opts)
