"""Post-deploy check: a local command that fails `pulumi up` unless the endpoint serves this deploy.

Run on every new endpoint configuration. SageMaker rolls a failed update back and reports
`InService`; the deploy check catches it, and since the check depends on the endpoint, Pulumi
then deletes nothing replaced. `smokeTest: false` skips only the invocations, never the deploy
check. The command is exported as `smokeTestCommand` (docs/failures.md).
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_command as command

from components.config import StackConfig
from components.endpoint import ServerlessEmbeddingEndpoint
from components.packager import HfModelPackager
from deploy_account.session import AwsSettings

# `python -m embedding_client.smoke` finds the package from here, wherever Pulumi runs commands.
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def check_command_line(
    python: str,
    endpoint_name: str,
    region: str,
    endpoint_url: str | None = None,
    aws: AwsSettings | None = None,
    expected_config: str | None = None,
    expected_sha256: str | None = None,
    sagemaker_endpoint_url: str | None = None,
    invocations: bool = True,
) -> str:
    """The shell command that checks a deployed SageMaker endpoint, in the stack's account.

    With `expected_config` it first checks the live endpoint serves this deploy; `invocations=False`
    stops there. Only the profile name and role chain travel on the command line, never keys.
    """
    flags = {
        "--endpoint": endpoint_name,
        "--region": region,
        "--endpoint-url": endpoint_url,
        "--sagemaker-endpoint-url": sagemaker_endpoint_url,
        "--profile": aws.profile if aws else None,
        "--assume-roles": aws.assume_roles_json() if aws and aws.assume_roles else None,
        "--expected-config": expected_config,
        "--expected-sha256": expected_sha256 if expected_config else None,
    }
    words = [python, "-m", "embedding_client.smoke"]
    words += [word for flag, value in flags.items() if value for word in (flag, value)]
    if expected_config and not invocations:
        words.append("--skip-invocations")
    return shlex.join(words)


@dataclass(frozen=True)
class PostDeployCheckArgs:
    """Which endpoint to check, and whether `pulumi up` runs the check itself."""

    # The Endpoint resource: the check runs once it is created or updated, and again whenever it
    # is replaced (a recreated endpoint keeps its name and configuration).
    endpoint: pulumi.Resource
    endpoint_name: pulumi.Input[str]
    # The configuration this deploy created: the live endpoint must serve it. Every change of
    # model, image or settings makes a new one, and re-runs the check.
    endpoint_config_name: pulumi.Input[str]
    region: str
    # The archive this deploy packaged: the live Model must record it. None: not compared.
    artifact_sha256: pulumi.Input[str] | None = None
    # sagemaker-runtime endpoint override (the local stack's local endpoint); None for AWS.
    endpoint_url: str | None = None
    # SageMaker API endpoint override for the deploy check (an emulator); None for AWS.
    sagemaker_endpoint_url: str | None = None
    # The stack's profile and assumed roles (`aws:profile`, `aws:assumeRoles`).
    aws: AwsSettings | None = None
    # False (`smokeTest: false`): `pulumi up` runs the deploy check alone, no invocations. The
    # exported command line always has both.
    invoke_on_deploy: bool = True
    # The interpreter that runs the program has the client installed.
    python: str = field(default_factory=lambda: sys.executable)

    @classmethod
    def for_stack(
        cls, cfg: StackConfig, endpoint: ServerlessEmbeddingEndpoint, packager: HfModelPackager
    ) -> PostDeployCheckArgs:
        """The stack's endpoint, the configuration and archive this deploy made, its account."""
        return cls(
            endpoint=endpoint.endpoint_resource,
            endpoint_name=endpoint.endpoint_name,
            endpoint_config_name=endpoint.endpoint_config_name,
            region=cfg.region,
            artifact_sha256=packager.sha256,
            endpoint_url=cfg.runtime_endpoint_url,
            sagemaker_endpoint_url=cfg.aws.endpoint("sagemaker"),
            aws=cfg.aws,
            invoke_on_deploy=cfg.smoke_test,
        )

    def __post_init__(self) -> None:
        if not self.region:
            raise ValueError("PostDeployCheckArgs.region is empty: the endpoint's region")


class PostDeployCheck(pulumi.ComponentResource):
    """Runs the check against a deployed endpoint; a failure fails `pulumi up`."""

    command_line: pulumi.Output[str]
    stdout: pulumi.Output[str]

    def __init__(
        self, name: str, args: PostDeployCheckArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("embedding-endpoint:index:PostDeployCheck", name, None, opts)
        self.command_line = self._check_line(args, invocations=True)
        run = command.local.Command(
            f"{name}-run",
            create=self._check_line(args, invocations=args.invoke_on_deploy),
            dir=str(PROJECT_ROOT),
            # No `update`: a changed trigger replaces the resource, which runs `create` again.
            triggers=[args.endpoint_config_name],
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[args.endpoint],
                # A replaced endpoint (recovery from `Failed`, `pulumi up --replace`) is
                # checked again although its name and configuration stay the same.
                replace_with=[args.endpoint],
            ),
        )
        self.stdout = run.stdout
        self.register_outputs({"command_line": self.command_line, "stdout": self.stdout})

    @staticmethod
    def _check_line(args: PostDeployCheckArgs, invocations: bool) -> pulumi.Output[str]:
        line = pulumi.Output.all(
            args.endpoint_name, args.endpoint_config_name, args.artifact_sha256
        ).apply(
            lambda values: check_command_line(
                args.python,
                values[0],
                args.region,
                args.endpoint_url,
                args.aws,
                values[1],
                values[2],
                args.sagemaker_endpoint_url,
                invocations=invocations,
            )
        )
        # An external id or a session policy on the line: secret in the state and the output.
        secret = args.aws is not None and args.aws.carries_secrets
        return pulumi.Output.secret(line) if secret else line
