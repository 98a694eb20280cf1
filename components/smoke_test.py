"""Post-deploy smoke test: a local command that fails the deploy when the endpoint answers badly.

`pulumi up` runs `python -m embedding_endpoint.smoke` once the endpoint is in service, and again
whenever something that changes its answers changes (the artifact's sha256, the endpoint's name
or settings), so a broken model or image stops the deploy instead of reaching clients.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_command as command

# `python -m embedding_endpoint.smoke` finds the package from here, wherever Pulumi runs commands.
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def smoke_command_line(
    python: str,
    endpoint_name: str,
    region: str,
    endpoint_url: str | None = None,
    expected_dimensions: int | None = None,
) -> str:
    """The shell command that smoke-tests a SageMaker endpoint (also exported for reruns)."""
    words = [python, "-m", "embedding_endpoint.smoke", "--endpoint", endpoint_name]
    words += ["--region", region]
    if endpoint_url:
        words += ["--endpoint-url", endpoint_url]
    if expected_dimensions is not None:
        words += ["--expected-dimensions", str(expected_dimensions)]
    return shlex.join(words)


@dataclass(frozen=True)
class PostDeploySmokeTestArgs:
    """Which endpoint to test, and what re-runs the test when it changes."""

    # The endpoint (resource or component): the test starts once it is created, i.e. InService.
    endpoint: pulumi.Resource
    endpoint_name: pulumi.Input[str]
    region: str
    # The sha256 of the deployed archive: a new artifact is tested before the deploy completes.
    artifact_sha256: pulumi.Input[str]
    # Anything else that changes the endpoint's answers (image, memory, concurrency, ...).
    endpoint_settings: Sequence[pulumi.Input[object]] = ()
    # sagemaker-runtime endpoint override (an emulator); None for AWS.
    endpoint_url: str | None = None
    expected_dimensions: int | None = None
    # The interpreter that runs the program has the client installed.
    python: str = field(default_factory=lambda: sys.executable)

    def __post_init__(self) -> None:
        if not self.region:
            raise ValueError("PostDeploySmokeTestArgs.region is empty: the endpoint's region")
        if self.expected_dimensions is not None and self.expected_dimensions <= 0:
            raise ValueError(
                f"PostDeploySmokeTestArgs.expected_dimensions is {self.expected_dimensions}: "
                "expected a positive integer or None"
            )


class PostDeploySmokeTest(pulumi.ComponentResource):
    """Runs the smoke test against a deployed endpoint; a failure fails `pulumi up`."""

    command_line: pulumi.Output[str]
    stdout: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: PostDeploySmokeTestArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("embedding-endpoint:index:PostDeploySmokeTest", name, None, opts)
        self.command_line = pulumi.Output.from_input(args.endpoint_name).apply(
            lambda endpoint_name: smoke_command_line(
                args.python,
                endpoint_name,
                args.region,
                args.endpoint_url,
                args.expected_dimensions,
            )
        )
        run = command.local.Command(
            f"{name}-run",
            create=self.command_line,
            dir=str(PROJECT_ROOT),
            # No `update`: a changed trigger replaces the resource, which runs `create` again.
            triggers=[args.endpoint_name, args.artifact_sha256, *args.endpoint_settings],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.endpoint]),
        )
        self.stdout = run.stdout
        self.register_outputs({"command_line": self.command_line, "stdout": self.stdout})
