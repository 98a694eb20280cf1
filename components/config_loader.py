"""Read this stack's config from Pulumi into a `StackConfig`, or stop the run with the reason.

The only module that reads `pulumi.Config`: the stack's own keys (validated by
components/config.py) and the AWS provider's settings the program's own boto3 sessions follow.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace

import pulumi

from components.config import (
    CONFIG_KEYS,
    NAMESPACE,
    ConfigError,
    StackConfig,
    check_known_keys,
    parse_config,
)
from components.config_rules import LOCAL_STACK
from deploy_account.session import AwsSettingsError, assume_roles_from_config

# AWS provider settings that choose credentials but that the packager and the post-deploy check
# (boto3 sessions of their own) do not follow: they use aws:profile, aws:assumeRoles and the
# environment's credentials.
UNFOLLOWED_AWS_KEYS = (
    "accessKey",
    "secretKey",
    "token",
    "sharedConfigFiles",
    "sharedCredentialsFiles",
    "assumeRoleWithWebIdentity",
)


def unfollowed_aws_warnings(keys: Iterable[str], stack: str = "") -> tuple[str, ...]:
    """A warning for each credential setting of the AWS provider our own sessions ignore.

    None on the local stack: its fake keys are there on purpose (Pulumi.local.yaml), and the
    emulator takes any credentials.
    """
    if stack == LOCAL_STACK:
        return ()
    present = set(keys)
    return tuple(
        f"aws:{name} is set: the AWS provider uses it, but the packager and the post-deploy check "
        "do not (they use aws:profile, aws:assumeRoles and the environment's credentials); "
        "give them the same account through a profile or environment variables"
        for name in UNFOLLOWED_AWS_KEYS
        if f"aws:{name}" in present
    )


def refuse_plain_token(key: str) -> None:
    """A Hub token written in plain text in Pulumi.<stack>.yaml is refused: `--secret` it."""
    from pulumi.runtime import config as runtime_config

    secret = runtime_config.is_config_secret(key) or key in (
        runtime_config.get_config_secret_keys_env()
    )
    if not secret:
        raise ConfigError(
            f"config key '{key}' is stored in plain text in Pulumi.{pulumi.get_stack()}.yaml, "
            "where anyone who can read the file or its history has the token: set it again "
            "with `pulumi config set --secret hfToken <token>` (or use hfTokenSecretArn)"
        )


def _all_config_keys() -> set[str]:
    """Every config key of the stack, however the language host passed them in."""
    from pulumi.runtime import config as runtime_config

    return set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())


def load_config() -> StackConfig:
    """This stack's validated config; a bad value: `pulumi.RunError` (no trace)."""
    try:
        return _load_config()
    except ConfigError as error:
        raise pulumi.RunError(str(error)) from None


def _load_config() -> StackConfig:
    keys = _all_config_keys()
    check_known_keys(keys)
    config = pulumi.Config(NAMESPACE)
    raw = {key: config.get(key) for key in CONFIG_KEYS if key != "hfToken"}
    token = config.get_secret("hfToken")
    if token is not None:
        # Only its presence is validated here; the value stays a secret Output.
        raw["hfToken"] = "<secret>"
    region = (
        pulumi.Config("aws").get("region")
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
    )
    parsed = parse_config(
        {k: v for k, v in raw.items() if v is not None}, stack=pulumi.get_stack(), region=region
    )
    if token is not None:
        refuse_plain_token(f"{NAMESPACE}:hfToken")
    aws = pulumi.Config("aws")
    endpoints: dict[str, str] = {}
    for entry in aws.get_object("endpoints") or []:
        endpoints.update({str(k): str(v) for k, v in dict(entry).items()})
    try:
        assume_roles = assume_roles_from_config(aws.get_object("assumeRoles"))
    except AwsSettingsError as error:
        raise ConfigError(f"config key {error}") from None
    return replace(
        parsed,
        hf_token=token,
        aws_endpoints=tuple(sorted(endpoints.items())),
        aws_profile=aws.get("profile") or None,
        aws_assume_roles=assume_roles,
        warnings=parsed.warnings + unfollowed_aws_warnings(keys, parsed.stack),
    )
