"""Deploy check: is the live endpoint serving what this deploy created?

SageMaker rolls a failed update back to `InService` on the old configuration, which the provider
takes for success. So the deploy fails unless the live configuration is this deploy's, the status
is `InService` (waited for, bounded), `FailureReason` is empty and the live Model records this
deploy's archive (`EMBEDDING_ARTIFACT_SHA256`). docs/failures.md: what the message says to do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from facts.sagemaker_endpoints import (
    ARTIFACT_SHA256_VARIABLE,
    FAILED,
    IN_SERVICE,
    TRANSITIONAL_STATUSES,
    describe_endpoint,
    endpoint_log_group,
    not_found,
)

DEFAULT_WAIT_SECONDS = 1800
DEFAULT_POLL_SECONDS = 15.0
# What a FailureReason usually means, for the message (the log group has the details).
FAILURE_HINTS = (
    (
        "memory",
        "the model needs more memory than the endpoint has: raise memorySizeMb "
        "(up to 6144) or choose a smaller model",
    ),
    (
        "ping health check",
        "the container never answered /ping: loading the model failed (model_fn raised, or "
        "the model does not fit memorySizeMb); the log group shows which",
    ),
    ("image", "SageMaker could not pull the image: check imageTag and the region's DLC registry"),
    (
        "model data",
        "SageMaker could not read model.tar.gz: check the execution role and the archive",
    ),
)


class DeployCheckFailure(Exception):
    """The live endpoint is not serving what this deploy created."""


@dataclass(frozen=True)
class ExpectedDeploy:
    """What this deploy created: the configuration it moved the endpoint to, and its archive."""

    endpoint_name: str
    region: str
    config_name: str
    # None: the deploy did not record the archive (the check then skips that comparison).
    artifact_sha256: str | None = None


@dataclass(frozen=True)
class LiveEndpoint:
    """The endpoint as DescribeEndpoint (and the Model behind its configuration) report it."""

    status: str
    config_name: str | None
    failure_reason: str | None
    # EMBEDDING_ARTIFACT_SHA256 of the Model the live configuration serves; None if unknown.
    artifact_sha256: str | None


def served_artifact_sha256(client: Any, config_name: str) -> str | None:
    """The archive hash recorded on the Model behind `config_name`, or None when not recorded."""
    try:
        config = client.describe_endpoint_config(EndpointConfigName=config_name)
        (variant, *_) = config["ProductionVariants"]
        model = client.describe_model(ModelName=variant["ModelName"])
    except Exception as error:  # noqa: BLE001 - a config or model deleted out of band
        if not_found(error):
            return None
        raise
    environment = (model.get("PrimaryContainer") or {}).get("Environment") or {}
    return environment.get(ARTIFACT_SHA256_VARIABLE)


def read_live_endpoint(client: Any, endpoint_name: str) -> LiveEndpoint | None:
    """The endpoint now, or None when no endpoint of that name exists."""
    described = describe_endpoint(client, endpoint_name)
    if described is None:
        return None
    config_name = described.get("EndpointConfigName")
    return LiveEndpoint(
        status=described["EndpointStatus"],
        config_name=config_name,
        failure_reason=described.get("FailureReason") or None,
        artifact_sha256=served_artifact_sha256(client, config_name) if config_name else None,
    )


def wait_until_settled(
    client: Any,
    endpoint_name: str,
    *,
    timeout_s: float = DEFAULT_WAIT_SECONDS,
    poll_s: float = DEFAULT_POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> LiveEndpoint | None:
    """The endpoint once its status stops changing by itself, or as it is when time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        live = read_live_endpoint(client, endpoint_name)
        if live is None or live.status not in TRANSITIONAL_STATUSES or time.monotonic() >= deadline:
            return live
        sleep(poll_s)


def deploy_problems(expected: ExpectedDeploy, live: LiveEndpoint | None) -> list[str]:
    """Every way the live endpoint differs from what the deploy created; empty when it matches."""
    if live is None:
        return [f"no endpoint named {expected.endpoint_name} exists"]
    problems = []
    if live.config_name != expected.config_name:
        problems.append(
            f"the endpoint serves configuration {live.config_name}, not {expected.config_name} "
            "that this deploy created"
        )
    if live.status != IN_SERVICE:
        problems.append(f"the endpoint is {live.status}, not {IN_SERVICE}")
    if live.failure_reason:
        problems.append("SageMaker reports a FailureReason: the last create or update failed")
    if (
        expected.artifact_sha256
        and live.config_name == expected.config_name
        and live.artifact_sha256 != expected.artifact_sha256
    ):
        problems.append(
            f"the served Model records archive sha256 {live.artifact_sha256}, not "
            f"{expected.artifact_sha256} that this deploy packaged"
        )
    return problems


def failure_hint(reason: str | None) -> str | None:
    """What a FailureReason usually means, when it matches a known pattern."""
    text = (reason or "").lower()
    for pattern, hint in FAILURE_HINTS:
        if pattern in text:
            return hint
    return None


def next_step(expected: ExpectedDeploy, live: LiveEndpoint | None) -> str:
    """What the user does now, for the state the endpoint is in."""
    if live is None:
        return "Run `pulumi up` again: it creates the endpoint."
    if live.status == FAILED:
        return (
            "The endpoint could not be created. Fix the cause, then run `pulumi up`: it deletes "
            "the failed endpoint and creates it again."
        )
    if live.status == IN_SERVICE and live.config_name != expected.config_name:
        return (
            "SageMaker rolled the update back: the previous configuration keeps serving, and "
            "Pulumi keeps its Model and EndpointConfiguration. Fix the cause, then run "
            "`pulumi up`: it retries the update and this check."
        )
    if live.status in TRANSITIONAL_STATUSES:
        return "The endpoint is still changing: run this check again later."
    return "Fix the cause, then run `pulumi up` again."


def failure_message(expected: ExpectedDeploy, live: LiveEndpoint | None) -> str:
    """The message `pulumi up` and `smokeTestCommand` print when the check fails."""
    log_group = endpoint_log_group(expected.endpoint_name)
    lines = [
        f"deploy check failed: endpoint {expected.endpoint_name} ({expected.region}) is not "
        "serving this deploy",
        *(f"  - {problem}" for problem in deploy_problems(expected, live)),
        f"  expected configuration: {expected.config_name}",
        f"  live configuration:     {live.config_name if live else '(no endpoint)'}",
        f"  status:                 {live.status if live else '(no endpoint)'}",
        f"  FailureReason:          {(live.failure_reason if live else None) or '(none)'}",
        f"  logs:                   CloudWatch log group {log_group}",
        f"                          (aws logs tail {log_group} --region {expected.region} "
        "--since 1h)",
    ]
    hint = failure_hint(live.failure_reason if live else None)
    if hint:
        lines.append(f"  likely cause:           {hint}")
    lines.append(next_step(expected, live))
    return "\n".join(lines)


def verify_deploy(
    client: Any,
    expected: ExpectedDeploy,
    *,
    timeout_s: float = DEFAULT_WAIT_SECONDS,
    poll_s: float = DEFAULT_POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> LiveEndpoint:
    """The live endpoint when it serves this deploy; else raise DeployCheckFailure."""
    live = wait_until_settled(
        client, expected.endpoint_name, timeout_s=timeout_s, poll_s=poll_s, sleep=sleep
    )
    if deploy_problems(expected, live):
        raise DeployCheckFailure(failure_message(expected, live))
    assert live is not None
    return live
