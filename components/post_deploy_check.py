"""Post-deploy check: a local command that fails `pulumi up` when the endpoint answers badly.

`pulumi up` runs `python -m embedding_client.smoke` once the endpoint is in service, and again
whenever the endpoint moves to a new configuration (any change of model, image or settings
creates one), so a broken model or image stops the deploy instead of reaching clients. The same
command line is exported as `smokeTestCommand`, to re-run the check by hand.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_command as command

from embedding_client.aws_session import AwsSettings

# `python -m embedding_client.smoke` finds the package from here, wherever Pulumi runs commands.
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def check_command_line(
    python: str,
    endpoint_name: str,
    region: str,
    endpoint_url: str | None = None,
    aws: AwsSettings | None = None,
) -> str:
    """The shell command that checks a deployed SageMaker endpoint, in the stack's account.

    The profile name and the role chain (ARNs, session names) travel on the command line; the
    credentials they stand for are looked up when the command runs.
    """
    words = [python, "-m", "embedding_client.smoke", "--endpoint", endpoint_name]
    words += ["--region", region]
    if endpoint_url:
        words += ["--endpoint-url", endpoint_url]
    if aws is not None and aws.profile:
        words += ["--profile", aws.profile]
    if aws is not None and aws.assume_roles:
        words += ["--assume-roles", aws.assume_roles_json()]
    return shlex.join(words)


@dataclass(frozen=True)
class PostDeployCheckArgs:
    """Which endpoint to check, and whether `pulumi up` runs the check itself."""

    # The endpoint component: the check starts once it is created, i.e. InService.
    endpoint: pulumi.Resource
    endpoint_name: pulumi.Input[str]
    # What re-runs the check: every change of model, image or settings makes a new one.
    endpoint_config_name: pulumi.Input[str]
    region: str
    # sagemaker-runtime endpoint override (an emulator); None for AWS.
    endpoint_url: str | None = None
    # The stack's profile and assumed roles (`aws:profile`, `aws:assumeRoles`).
    aws: AwsSettings | None = None
    # False: only the command line is computed (to export), nothing runs during `pulumi up`.
    run_on_deploy: bool = True
    # The interpreter that runs the program has the client installed.
    python: str = field(default_factory=lambda: sys.executable)

    def __post_init__(self) -> None:
        if not self.region:
            raise ValueError("PostDeployCheckArgs.region is empty: the endpoint's region")


class PostDeployCheck(pulumi.ComponentResource):
    """Runs the check against a deployed endpoint; a failure fails `pulumi up`."""

    command_line: pulumi.Output[str]
    stdout: pulumi.Output[str] | None

    def __init__(
        self,
        name: str,
        args: PostDeployCheckArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("embedding-endpoint:index:PostDeployCheck", name, None, opts)
        self.command_line = pulumi.Output.from_input(args.endpoint_name).apply(
            lambda endpoint_name: check_command_line(
                args.python, endpoint_name, args.region, args.endpoint_url, args.aws
            )
        )
        self.stdout = None
        if args.run_on_deploy:
            run = command.local.Command(
                f"{name}-run",
                create=self.command_line,
                dir=str(PROJECT_ROOT),
                # No `update`: a changed trigger replaces the resource, which runs `create` again.
                triggers=[args.endpoint_config_name],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[args.endpoint]),
            )
            self.stdout = run.stdout
        self.register_outputs({"command_line": self.command_line, "stdout": self.stdout})
