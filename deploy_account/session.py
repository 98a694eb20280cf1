"""The AWS account and region the stack deploys to, as one boto3 session: profile, roles, region.

Every boto3 session besides the AWS provider's is built here from the provider's settings, so all
act in the account it deploys to; only names and ARNs travel, never keys. Below the program and
the client, importing nothing of this project.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

# What AssumeRole accepts for DurationSeconds (the provider's `duration` must fall in it).
MIN_ROLE_SECONDS = 15 * 60
MAX_ROLE_SECONDS = 12 * 60 * 60
# Go's duration units, as the AWS provider parses `duration` ("1h", "90m", "1h30m").
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


class AwsSettingsError(ValueError):
    """An `aws:` setting this module cannot use; the message names it (e.g. aws:assumeRoles[0])."""


def duration_seconds(text: str, where: str) -> int:
    """Seconds of a Go duration string such as `1h` or `45m`; AwsSettingsError names `where`."""
    parts = _DURATION_PART.findall(text)
    if not text or "".join(number + unit for number, unit in parts) != text:
        raise AwsSettingsError(
            f"'{where}' has invalid value {text!r}: expected a duration such as 1h, 45m or 3600s"
        )
    seconds = int(sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts))
    if not MIN_ROLE_SECONDS <= seconds <= MAX_ROLE_SECONDS:
        raise AwsSettingsError(
            f"'{where}' has invalid value {text!r}: expected between 15 minutes and 12 hours"
        )
    return seconds


def _setting(config: str, sts: str, default: Any = None) -> Any:
    """A role setting: its key in `aws:assumeRoles` and its STS AssumeRole parameter."""
    return field(default=default, metadata={"config": config, "sts": sts})


@dataclass(frozen=True)
class AssumeRole:
    """One entry of `aws:assumeRoles`, in the provider's order: each is assumed from the last."""

    role_arn: str = field(metadata={"config": "roleArn", "sts": "RoleArn"})
    session_name: str | None = _setting("sessionName", "RoleSessionName")
    external_id: str | None = _setting("externalId", "ExternalId")
    duration: str | None = _setting("duration", "DurationSeconds")
    policy: str | None = _setting("policy", "Policy")
    policy_arns: tuple[str, ...] = _setting("policyArns", "PolicyArns", ())
    tags: tuple[tuple[str, str], ...] = _setting("tags", "Tags", ())
    transitive_tag_keys: tuple[str, ...] = _setting("transitiveTagKeys", "TransitiveTagKeys", ())
    source_identity: str | None = _setting("sourceIdentity", "SourceIdentity")

    @classmethod
    def from_config(cls, entry: object, where: str) -> AssumeRole:
        """An entry as `pulumi config set --path 'aws:assumeRoles[0].roleArn' …` stores it."""
        if not isinstance(entry, Mapping):
            raise AwsSettingsError(f"'{where}' has invalid value {entry!r}: expected an object")
        known = {item.metadata["config"]: item for item in fields(cls)}
        unknown = sorted(set(entry) - set(known))
        if unknown:
            raise AwsSettingsError(
                f"'{where}.{unknown[0]}' is not a setting of an assumed role: expected one of "
                + ", ".join(sorted(known))
            )
        role_arn = entry.get("roleArn")
        if not isinstance(role_arn, str) or not re.match(
            r"^arn:aws[a-z-]*:iam::\d{12}:role/", role_arn
        ):
            raise AwsSettingsError(
                f"'{where}.roleArn' has invalid value {role_arn!r}: expected an IAM role ARN "
                "(arn:<partition>:iam::<account>:role/<name>)"
            )
        values = {item.name: entry.get(key) or item.default for key, item in known.items()}
        values["tags"] = tuple(sorted(dict(values["tags"]).items()))
        role = cls(**{name: tuple(v) if isinstance(v, list) else v for name, v in values.items()})
        if role.duration is not None:
            duration_seconds(role.duration, f"{where}.duration")
        return role

    def as_config(self) -> dict[str, Any]:
        """The provider's shape again (camelCase, unset keys left out): what inputs carry."""
        document = {item.metadata["config"]: getattr(self, item.name) for item in fields(self)}
        document["tags"] = dict(self.tags)
        return {key: list(v) if isinstance(v, tuple) else v for key, v in document.items() if v}

    def assume_role_arguments(self) -> dict[str, Any]:
        """STS AssumeRole parameters besides RoleArn (botocore names a session when none is set)."""
        arguments = {item.metadata["sts"]: getattr(self, item.name) for item in fields(self)[1:]}
        arguments["PolicyArns"] = [{"arn": arn} for arn in self.policy_arns]
        arguments["Tags"] = [{"Key": key, "Value": value} for key, value in self.tags]
        if self.duration:
            arguments["DurationSeconds"] = duration_seconds(self.duration, "duration")
        return {key: list(v) if isinstance(v, tuple) else v for key, v in arguments.items() if v}


def assume_roles_from_config(
    entries: object, key: str = "aws:assumeRoles"
) -> tuple[AssumeRole, ...]:
    """`aws:assumeRoles` (a list of objects, or a JSON text of one) as AssumeRole values."""
    if entries in (None, "", []):
        return ()
    if isinstance(entries, str):
        try:
            entries = json.loads(entries)
        except ValueError:
            raise AwsSettingsError(f"'{key}' is not JSON: expected a list of objects") from None
    if not isinstance(entries, Sequence) or isinstance(entries, (str, bytes)):
        raise AwsSettingsError(f"'{key}' has invalid value {entries!r}: expected a list of objects")
    return tuple(AssumeRole.from_config(entry, f"{key}[{i}]") for i, entry in enumerate(entries))


@dataclass(frozen=True)
class AwsSettings:
    """Where the stack deploys: region, the named profile and the roles assumed on top of it."""

    region: str
    profile: str | None = None
    assume_roles: tuple[AssumeRole, ...] = ()
    # Per-service endpoint overrides from `aws:endpoints` (emulator stacks).
    endpoints: tuple[tuple[str, str], ...] = ()

    def endpoint(self, service: str) -> str | None:
        """The endpoint URL override for `service` (e.g. "s3"), or None for AWS's own."""
        return dict(self.endpoints).get(service)

    @classmethod
    def from_inputs(cls, inputs: Mapping[str, Any]) -> AwsSettings:
        """The settings a dynamic resource recorded with `as_inputs` (its inputs or state)."""
        return cls(
            region=inputs["region"],
            profile=inputs.get("aws_profile") or None,
            assume_roles=assume_roles_from_config(inputs.get("aws_assume_roles")),
            endpoints=tuple(sorted((inputs.get("aws_endpoints") or {}).items())),
        )

    @property
    def carries_secrets(self) -> bool:
        """True when a role names an external id or a session policy: keep the chain secret
        wherever it is written (state, command line, stack output).
        """
        return any(role.external_id or role.policy for role in self.assume_roles)

    def as_inputs(self) -> dict[str, Any]:
        """Names only (region, profile, role chain, endpoints): what a dynamic resource records."""
        return {
            "region": self.region,
            "aws_profile": self.profile,
            "aws_assume_roles": [role.as_config() for role in self.assume_roles],
            "aws_endpoints": dict(self.endpoints),
        }

    def assume_roles_json(self) -> str:
        """The role chain as compact JSON in the provider's shape (for inputs, command lines)."""
        return json.dumps([role.as_config() for role in self.assume_roles], separators=(",", ":"))

    def session(self) -> Any:
        """A boto3 Session with this profile's credentials, each role assumed in turn, the region.

        Assumed-role credentials refresh themselves: a run may outlast a role session.
        """
        import boto3
        import botocore.session

        base = botocore.session.Session(profile=self.profile)
        if not self.assume_roles:
            return boto3.Session(botocore_session=base, region_name=self.region)
        from botocore.credentials import (
            AssumeRoleCredentialFetcher,
            CredentialResolver,
            DeferredRefreshableCredentials,
        )

        credentials = base.get_credentials()
        if credentials is None:
            source = f"profile {self.profile!r}" if self.profile else "the environment"
            raise AwsSettingsError(
                f"no AWS credentials in {source} to assume {self.assume_roles[0].role_arn} from"
            )

        def sts_client(service: str, **keys: Any) -> Any:
            return base.create_client(
                service, region_name=self.region, endpoint_url=self.endpoint("sts"), **keys
            )

        for role in self.assume_roles:
            fetcher = AssumeRoleCredentialFetcher(
                client_creator=sts_client,
                source_credentials=credentials,
                role_arn=role.role_arn,
                extra_args=role.assume_role_arguments(),
            )
            credentials = DeferredRefreshableCredentials(
                refresh_using=fetcher.fetch_credentials, method="assume-role"
            )
        chained = botocore.session.Session(profile=self.profile)
        chained.register_component("credential_provider", CredentialResolver([_Given(credentials)]))
        return boto3.Session(botocore_session=chained, region_name=self.region)

    def client(self, service: str, **kwargs: Any) -> Any:
        """A client of `service` from `session()`, at the stack's endpoint override if any."""
        kwargs.setdefault("endpoint_url", self.endpoint(service))
        return self.session().client(service, **kwargs)


class _Given:
    """A credential provider that hands out the assumed-role credentials built above."""

    METHOD = "assume-role-chain"
    CANONICAL_NAME = "AssumeRoleChain"

    def __init__(self, credentials: Any) -> None:
        self._credentials = credentials

    def load(self) -> Any:
        return self._credentials
