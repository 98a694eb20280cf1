"""EndpointRecord: which endpoint the state holds, written where the failed-endpoint guard reads it.

An endpoint whose create the provider never recorded (Ctrl-C, a timeout while it waits) makes
every later `pulumi up` fail on "Cannot create already existing endpoint". This resource runs
after the Endpoint and writes its identity to `s3://{bucket}/{prefix}_endpoints/{name}.json`; the
guard removes an endpoint of this stack's tags that the record does not name (docs/failures.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, UpdateResult

from components.project_provider import ProjectProvider, aws_inputs, pickle_by_value
from deploy_account.session import AwsSettings

RECORD_FOLDER = "_endpoints"
INPUT_NAMES = ("endpoint_name", "endpoint_config_name", "bucket", "record_key")


def record_key(key_prefix: str, endpoint_name: str) -> str:
    """Where the record of `endpoint_name` lives in the artifact bucket."""
    return f"{key_prefix}{RECORD_FOLDER}/{endpoint_name}.json"


def endpoint_identity(described: Any) -> str:
    """Names one endpoint incarnation: a recreated endpoint has the same ARN, not the time."""
    created = described.get("CreationTime")
    stamp = created.isoformat() if hasattr(created, "isoformat") else str(created)
    return f"{described['EndpointArn']} created {stamp}"


def read_record(s3: Any, bucket: str, key: str) -> str | None:
    """The recorded identity; "" when there is no record; ClientError when S3 cannot answer."""
    from botocore.exceptions import ClientError

    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return ""
        raise
    try:
        return str(json.loads(body).get("identity") or "")
    except (ValueError, AttributeError):
        return ""


def _write(props: Any) -> dict[str, Any]:
    settings = AwsSettings.from_inputs(props)
    described = settings.client("sagemaker").describe_endpoint(EndpointName=props["endpoint_name"])
    identity = endpoint_identity(described)
    settings.client("s3").put_object(
        Bucket=props["bucket"],
        Key=props["record_key"],
        Body=json.dumps({"endpoint_name": props["endpoint_name"], "identity": identity}).encode(),
        ContentType="application/json",
    )
    return {**props, "identity": identity}


# --- the operations (called by the pickled shell) ---------------------------------------------


def check(_olds: Any, news: Any) -> CheckResult:
    return CheckResult(dict(news), [])


def diff(_id: str, olds: Any, news: Any) -> DiffResult:
    changed = [name for name in INPUT_NAMES if olds.get(name) != news.get(name)]
    return DiffResult(changes=bool(changed), replaces=[], stables=[], delete_before_replace=False)


def create(props: Any) -> CreateResult:
    return CreateResult(props["endpoint_name"], _write(props))


def update(_id: str, _olds: Any, news: Any) -> UpdateResult:
    return UpdateResult(_write(news))


def delete(_id: str, props: Any) -> None:
    """Forget the record (the endpoint goes first: it depends on nothing of ours)."""
    settings = AwsSettings.from_inputs(props)
    settings.client("s3").delete_object(Bucket=props["bucket"], Key=props["record_key"])


def read(id_: str, props: Any) -> ReadResult:
    return ReadResult(id_, dict(props))


class EndpointRecordProvider(ProjectProvider):
    OPERATIONS_MODULE = "components.endpoint_record"


pickle_by_value(EndpointRecordProvider)


@dataclass(frozen=True)
class EndpointRecordArgs:
    """The endpoint to record, and where its record goes."""

    endpoint_name: pulumi.Input[str]
    endpoint_config_name: pulumi.Input[str]
    bucket: pulumi.Input[str]
    record_key: str
    aws: AwsSettings


class EndpointRecord(pulumi.dynamic.Resource):
    """Records the identity of the endpoint the state holds (see the module's docstring)."""

    identity: pulumi.Output[str]

    def __init__(
        self, name: str, args: EndpointRecordArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props = {
            "endpoint_name": args.endpoint_name,
            "endpoint_config_name": args.endpoint_config_name,
            "bucket": args.bucket,
            "record_key": args.record_key,
            **aws_inputs(args.aws),
            "identity": None,
        }
        super().__init__(EndpointRecordProvider(), name, props, opts)
