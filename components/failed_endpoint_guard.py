"""FailedEndpointGuard: removes a `Failed` endpoint of the stack's name, so the next up recovers.

When the first CreateEndpoint never becomes healthy, SageMaker leaves the endpoint in status
`Failed`, and DeleteEndpoint is the only operation it accepts. Depending on the provider version
the endpoint is then missing from Pulumi's state (the next create collides with the fixed name)
or in state with an initialization error (the next update is refused). Either way the next
`pulumi up` would fail forever. This dynamic resource runs before the Endpoint (which depends on
it) and makes that next `pulumi up` recover by itself:

- `check` (run by `pulumi preview` and `pulumi up`) reads DescribeEndpoint and records the
  endpoint's identity in `failed_endpoint` when it is `Failed`; otherwise it keeps the value it
  had, so the resource shows a change exactly when there is a failed endpoint to remove;
- `create`/`update` delete that endpoint, if it is still `Failed`, and wait until it is gone;
- the Endpoint's `replacement_trigger` is `failed_endpoint`: an Endpoint still in state is
  replaced (delete first, its name is fixed), one missing from state is simply created;
- `delete` (on destroy) removes a `Failed` endpoint the state never recorded.

Its SageMaker client is the stack's: region, `aws:profile`, `aws:assumeRoles` and `aws:endpoints`
(deploy_account/session.py), so it looks in the account the provider deploys to. The
pickled part is a `ProjectProvider` shell (components/project_provider.py) calling this module's
functions of the same name; clients are created per call.
"""

from __future__ import annotations

from dataclasses import dataclass
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

from components.project_provider import ProjectProvider, pickle_by_value
from deploy_account.session import AwsSettings

# The provider's own deadline (dynamic providers ignore CustomTimeouts). Deleting a serverless
# endpoint takes minutes; Terraform waits 10 for the same thing.
DELETE_TIMEOUT_SECONDS = 900
DELETE_POLL_SECONDS = 10
OUTPUT_NAMES = ("failed_endpoint", "failure_reason")
INPUT_NAMES = (
    "endpoint_name",
    "region",
    "aws_profile",
    "aws_assume_roles",
    "aws_endpoints",
    "failed_endpoint",
    "failure_reason",
    "delete_timeout_seconds",
    "delete_poll_seconds",
)


# --- SageMaker ------------------------------------------------------------------------------------


def sagemaker_client(props: Any) -> Any:
    """A SageMaker client in the stack's account and region (the resource's recorded settings)."""
    return AwsSettings.from_inputs(props).client("sagemaker")


def describe(client: Any, name: str) -> Any:
    """DescribeEndpoint, or None when no endpoint of that name exists."""
    from botocore.exceptions import ClientError

    try:
        return client.describe_endpoint(EndpointName=name)
    except ClientError as error:
        if "Could not find endpoint" in error.response.get("Error", {}).get("Message", ""):
            return None
        raise


def identity(described: Any) -> str:
    """Names one endpoint incarnation: a recreated endpoint has the same ARN, not the time."""
    created = described.get("CreationTime")
    stamp = created.isoformat() if hasattr(created, "isoformat") else str(created)
    return f"{described['EndpointArn']} created {stamp}"


def remove_failed(props: Any) -> None:
    """Delete the endpoint `failed_endpoint` names, if it is still that `Failed` endpoint."""
    import time

    name, wanted = props["endpoint_name"], props.get("failed_endpoint")
    if not wanted:
        return
    client = sagemaker_client(props)
    described = describe(client, name)
    if described is None or described["EndpointStatus"] not in ("Failed", "Deleting"):
        return  # gone already, or recreated healthy since `check`: nothing of ours to delete
    if described["EndpointStatus"] == "Failed":
        if identity(described) != wanted:
            return
        client.delete_endpoint(EndpointName=name)
    timeout = float(props.get("delete_timeout_seconds") or DELETE_TIMEOUT_SECONDS)
    poll = float(props.get("delete_poll_seconds") or 0)
    deadline = time.monotonic() + timeout
    while describe(client, name) is not None:
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"the failed endpoint {name} was not deleted within {timeout:g} s; "
                "run `pulumi up` again once it is gone (aws sagemaker describe-endpoint "
                f"--endpoint-name {name})"
            )
        time.sleep(poll)


def _outputs(props: Any) -> dict[str, Any]:
    return {name: props.get(name) for name in INPUT_NAMES}


# --- the operations (called by the pickled shell) ---------------------------------------------


def check(olds: Any, news: Any) -> CheckResult:
    """Record a `Failed` endpoint of this name; else keep what the state says."""
    inputs = dict(news)
    inputs["failed_endpoint"] = (olds or {}).get("failed_endpoint") or ""
    inputs["failure_reason"] = (olds or {}).get("failure_reason") or ""
    name = inputs["endpoint_name"]
    try:
        described = describe(sagemaker_client(inputs), name)
    except Exception as error:  # noqa: BLE001 - reported as a failure naming the endpoint
        return CheckResult(
            inputs,
            [CheckFailure("endpoint_name", f"cannot read SageMaker endpoint {name}: {error}")],
        )
    if described is not None and described["EndpointStatus"] == "Failed":
        inputs["failed_endpoint"] = identity(described)
        inputs["failure_reason"] = described.get("FailureReason") or ""
    return CheckResult(inputs, [])


def diff(_id: str, olds: Any, news: Any) -> DiffResult:
    changed = [name for name in INPUT_NAMES if olds.get(name) != news.get(name)]
    return DiffResult(changes=bool(changed), replaces=[], stables=[], delete_before_replace=False)


def create(props: Any) -> CreateResult:
    remove_failed(props)
    return CreateResult(props["endpoint_name"], _outputs(props))


def update(_id: str, olds: Any, news: Any) -> UpdateResult:
    if news.get("failed_endpoint") != olds.get("failed_endpoint"):
        remove_failed(news)
    return UpdateResult(_outputs(news))


def delete(_id: str, props: Any) -> None:
    """On destroy, remove a `Failed` endpoint of this name that never made it into state.

    The Endpoint depends on the guard, so Pulumi deletes it first; what is left here is the
    failed endpoint of a create the provider did not record.
    """
    described = describe(sagemaker_client(props), props["endpoint_name"])
    if described is not None and described["EndpointStatus"] == "Failed":
        remove_failed({**props, "failed_endpoint": identity(described)})


def read(id_: str, props: Any) -> ReadResult:
    return ReadResult(id_, dict(props))


class FailedEndpointGuardProvider(ProjectProvider):
    """Pickled by value; each method calls this module's function of the same name."""

    OPERATIONS_MODULE = "components.failed_endpoint_guard"


pickle_by_value(FailedEndpointGuardProvider)


@dataclass(frozen=True)
class FailedEndpointGuardArgs:
    """Which endpoint name to watch, where."""

    endpoint_name: str
    region: str
    # The stack's profile, role chain and endpoint overrides (None: default credentials).
    aws: AwsSettings | None = None
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

    # The last failed endpoint removed ("" if none): the Endpoint's replacement trigger.
    failed_endpoint: pulumi.Output[str]
    failure_reason: pulumi.Output[str]

    def __init__(
        self, name: str, args: FailedEndpointGuardArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        aws = args.aws or AwsSettings(region=args.region)
        props = {
            "endpoint_name": args.endpoint_name,
            **aws.as_inputs(),
            "delete_timeout_seconds": args.delete_timeout_seconds,
            "delete_poll_seconds": args.delete_poll_seconds,
        }
        # Outputs must exist as properties for Pulumi to expose them; `check` fills them in.
        seeded = {key: None for key in OUTPUT_NAMES} | props
        super().__init__(FailedEndpointGuardProvider(), name, seeded, opts)
