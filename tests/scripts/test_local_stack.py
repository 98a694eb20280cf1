"""Pulumi.local.yaml: a valid stack config that keeps every AWS call on the local emulator."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pulumi_aws.config.outputs as aws_config_outputs
import pulumi_aws.config.vars as aws_config_vars
import pytest
from ruamel.yaml import YAML

from components.config import NAMESPACE, parse_config
from scripts.emulator import emulator_address

LOCAL_CONFIG = Path(__file__).resolve().parents[2] / "Pulumi.local.yaml"
SERVICES_THE_PROGRAM_CALLS = {"s3", "iam", "lambda", "sagemaker", "sts", "logs", "cloudwatch"}


@pytest.fixture(scope="module")
def local_config() -> dict:
    return YAML(typ="safe").load(LOCAL_CONFIG.read_text())["config"]


def _program_keys(config: dict) -> dict[str, str]:
    prefix = f"{NAMESPACE}:"
    return {k.removeprefix(prefix): str(v) for k, v in config.items() if k.startswith(prefix)}


def test_local_stack_config_passes_validation(local_config: dict) -> None:
    parsed = parse_config(_program_keys(local_config), stack="local", region="us-east-1")
    assert parsed.model_id == "sentence-transformers/all-MiniLM-L6-v2"


def test_local_stack_packages_in_process(local_config: dict) -> None:
    parsed = parse_config(_program_keys(local_config), stack="local", region="us-east-1")
    assert parsed.packaging_runner == "local"


def test_local_stack_leaves_smoke_test_to_up_script(local_config: dict) -> None:
    parsed = parse_config(_program_keys(local_config), stack="local", region="us-east-1")
    assert parsed.smoke_test is False


def test_local_stack_redirects_every_service_the_program_calls(local_config: dict) -> None:
    (endpoints,) = local_config["aws:endpoints"]
    assert SERVICES_THE_PROGRAM_CALLS <= set(endpoints)


def test_local_stack_endpoint_names_are_pulumi_aws_endpoint_fields(local_config: dict) -> None:
    source = inspect.getsource(aws_config_outputs.Endpoints)
    known = set(re.findall(r'@pulumi\.getter\(name="(\w+)"\)', source)) | set(
        re.findall(r"def (\w+)\(self\)", source)
    )
    (endpoints,) = local_config["aws:endpoints"]
    assert set(endpoints) <= known, set(endpoints) - known


def test_local_stack_aws_keys_are_pulumi_aws_config_names(local_config: dict) -> None:
    known = set(re.findall(r"__config__\.get\w*\('(\w+)'\)", inspect.getsource(aws_config_vars)))
    aws_keys = {k.removeprefix("aws:") for k in local_config if k.startswith("aws:")}
    assert aws_keys <= known, aws_keys - known


def test_local_stack_signs_with_fake_keys_and_skips_account_checks(local_config: dict) -> None:
    assert local_config["aws:accessKey"] == local_config["aws:secretKey"] == "testing"
    for flag in ("skipCredentialsValidation", "skipRequestingAccountId", "skipMetadataApiCheck"):
        assert local_config[f"aws:{flag}"] is True, flag
    assert local_config["aws:s3UsePathStyle"] is True


def test_local_stack_endpoints_all_name_one_loopback_emulator(local_config: dict) -> None:
    address = emulator_address(LOCAL_CONFIG)
    (endpoints,) = local_config["aws:endpoints"]
    assert set(endpoints.values()) == {address.url}
    assert address.host == "127.0.0.1"
