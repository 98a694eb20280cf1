"""scripts/promote.py: pins the tested artifact in the target stack's config, keeping the rest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from scripts import promote

ROOT = Path(__file__).resolve().parents[2]
REVISION = "1234567890123456789012345678901234567890"  # all digits: must stay a string
SHA256 = "123e4567" + "0" * 56  # reads as a float if written unquoted
OUTPUTS = {
    "endpointName": "embedding-dev-1a2b3c",
    "modelId": "sentence-transformers/all-MiniLM-L6-v2",
    "modelRevision": REVISION,
    "artifactSha256": SHA256,
    "backend": "sagemaker",
    "warnings": [],
}
PROD_CONFIG = """\
# Production stack: keep artifacts, more memory.
encryptionsalt: v1:c2FsdA==:v1:bm9uY2U=:Y2lwaGVy
config:
  aws:region: eu-west-1   # Ireland
  aws:endpoints:
    - sts: https://sts.eu-west-1.amazonaws.com
  # The model prod serves.
  embedding-endpoint:modelId: sentence-transformers/all-MiniLM-L6-v2
  embedding-endpoint:modelRevision: main
  embedding-endpoint:memorySizeMb: "4096"
  embedding-endpoint:hfToken:
    secure: v1:AAAABBBB:CCCCDDDD
  embedding-endpoint:retainArtifacts: 'true'
"""


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.prod.yaml").write_text(PROD_CONFIG)
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  aws:region: us-east-1\n")
    return tmp_path


def _run(config_dir: Path, outputs: dict, *extra: str) -> subprocess.CompletedProcess[str]:
    outputs_file = config_dir / "outputs.json"
    outputs_file.write_text(json.dumps(outputs))
    return subprocess.run(  # as `make promote` runs it, from the repository's root
        [sys.executable, "-m", "scripts.promote", "--from", "dev", "--to", "prod"]
        + ["--outputs-file", str(outputs_file), "--config-dir", str(config_dir), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def _config(path: Path) -> dict:
    return YAML(typ="safe").load(path.read_text())["config"]


def test_promotion_pins_model_revision_and_artifact_sha_in_target_config(config_dir: Path) -> None:
    result = _run(config_dir, OUTPUTS)
    assert result.returncode == 0, result.stderr
    config = _config(config_dir / "Pulumi.prod.yaml")
    assert config["embedding-endpoint:modelId"] == OUTPUTS["modelId"]
    assert config["embedding-endpoint:modelRevision"] == REVISION
    assert config["embedding-endpoint:expectedArtifactSha256"] == SHA256


def test_promotion_pins_the_engine_the_source_archive_was_built_for(config_dir: Path) -> None:
    result = _run(config_dir, {**OUTPUTS, "inferenceEngine": "onnx"})
    assert result.returncode == 0, result.stderr
    assert _config(config_dir / "Pulumi.prod.yaml")["embedding-endpoint:inferenceEngine"] == "onnx"


def test_outputs_from_before_the_engine_choice_pin_no_engine(config_dir: Path) -> None:
    _run(config_dir, OUTPUTS)
    assert "embedding-endpoint:inferenceEngine" not in _config(config_dir / "Pulumi.prod.yaml")


def test_an_unknown_engine_output_is_refused(config_dir: Path) -> None:
    result = _run(config_dir, {**OUTPUTS, "inferenceEngine": "auto"})
    assert result.returncode == 1
    assert "inferenceEngine" in result.stderr and "torch, onnx" in result.stderr


def test_promotion_keeps_other_keys_comments_and_formatting(config_dir: Path) -> None:
    _run(config_dir, OUTPUTS)
    new_lines = (config_dir / "Pulumi.prod.yaml").read_text().splitlines()
    changed = {"  embedding-endpoint:modelRevision: main"}
    kept = [line for line in PROD_CONFIG.splitlines() if line not in changed]
    assert [line for line in new_lines if line in kept] == kept


def test_promotion_prints_unified_diff_of_the_target_file(config_dir: Path) -> None:
    result = _run(config_dir, OUTPUTS)
    assert result.stdout.startswith("--- a/Pulumi.prod.yaml\n+++ b/Pulumi.prod.yaml\n")
    assert "-  embedding-endpoint:modelRevision: main\n" in result.stdout
    assert f'+  embedding-endpoint:modelRevision: "{REVISION}"\n' in result.stdout
    assert f'+  embedding-endpoint:expectedArtifactSha256: "{SHA256}"\n' in result.stdout


def test_second_promotion_of_same_outputs_changes_nothing(config_dir: Path) -> None:
    _run(config_dir, OUTPUTS)
    first = (config_dir / "Pulumi.prod.yaml").read_text()
    result = _run(config_dir, OUTPUTS)
    assert result.returncode == 0
    assert result.stdout == ""
    assert "already pins" in result.stderr
    assert (config_dir / "Pulumi.prod.yaml").read_text() == first


def test_outputs_missing_keys_fail_naming_them(config_dir: Path) -> None:
    outputs = {k: v for k, v in OUTPUTS.items() if k not in ("modelRevision", "artifactSha256")}
    result = _run(config_dir, outputs)
    assert result.returncode == 1
    assert "modelRevision, artifactSha256" in result.stderr
    assert (config_dir / "Pulumi.prod.yaml").read_text() == PROD_CONFIG


def test_unpinned_source_revision_is_refused(config_dir: Path) -> None:
    result = _run(config_dir, {**OUTPUTS, "modelRevision": "main"})
    assert result.returncode == 1
    assert "modelRevision" in result.stderr and "40-hex" in result.stderr
    assert (config_dir / "Pulumi.prod.yaml").read_text() == PROD_CONFIG


def test_malformed_artifact_sha_is_refused(config_dir: Path) -> None:
    result = _run(config_dir, {**OUTPUTS, "artifactSha256": "ABC"})
    assert result.returncode == 1
    assert "artifactSha256" in result.stderr


def test_source_deploying_prebuilt_artifact_is_refused(config_dir: Path) -> None:
    (config_dir / "Pulumi.dev.yaml").write_text(
        "config:\n  embedding-endpoint:sourceModelDataUrl: s3://bucket/m/model.tar.gz\n"
    )
    result = _run(config_dir, OUTPUTS)
    assert result.returncode == 1
    assert "sourceModelDataUrl" in result.stderr and "'dev'" in result.stderr
    assert (config_dir / "Pulumi.prod.yaml").read_text() == PROD_CONFIG


def test_target_deploying_prebuilt_artifact_is_refused(config_dir: Path) -> None:
    text = PROD_CONFIG + "  embedding-endpoint:sourceModelDataUrl: s3://bucket/m/model.tar.gz\n"
    (config_dir / "Pulumi.prod.yaml").write_text(text)
    result = _run(config_dir, OUTPUTS)
    assert result.returncode == 1
    assert "sourceModelDataUrl" in result.stderr and "'prod'" in result.stderr
    assert (config_dir / "Pulumi.prod.yaml").read_text() == text


def test_bedrock_source_has_nothing_to_promote(config_dir: Path) -> None:
    result = _run(
        config_dir, {"backend": "bedrock", "bedrockModelId": "amazon.titan-embed-text-v2:0"}
    )
    assert result.returncode == 1
    assert "bedrock" in result.stderr


def test_missing_target_config_file_is_refused_with_how_to_create_it(config_dir: Path) -> None:
    (config_dir / "Pulumi.prod.yaml").unlink()
    result = _run(config_dir, OUTPUTS)
    assert result.returncode == 1
    assert "pulumi stack init prod" in result.stderr
    assert not (config_dir / "Pulumi.prod.yaml").exists()


def test_same_source_and_target_is_refused(config_dir: Path) -> None:
    with pytest.raises(promote.PromotionError, match="both 'dev'"):
        promote.promote("dev", "dev", config_dir=config_dir, outputs=OUTPUTS)


def test_target_without_config_section_gets_one() -> None:
    promotion = promote.promotion_from_outputs(OUTPUTS, "dev")
    text = promote.apply_promotion("encryptionsalt: v1:x\n", promotion, "prod")
    document = YAML(typ="safe").load(text)
    assert document["encryptionsalt"] == "v1:x"
    assert document["config"]["embedding-endpoint:modelRevision"] == REVISION


def test_missing_pulumi_cli_is_reported_with_install_command(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(promote.PromotionError, match="get.pulumi.com"):
        promote.read_stack_outputs("dev", config_dir)


def test_outputs_come_from_pulumi_stack_output_without_secrets(
    config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The Pulumi CLI cannot be installed here: a stand-in records its arguments and prints
    # what `pulumi stack output --json` prints.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.txt"
    (tmp_path / "outputs.json").write_text(json.dumps(OUTPUTS))
    fake = bin_dir / "pulumi"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\ncat {tmp_path / "outputs.json"}\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    assert promote.read_stack_outputs("dev", config_dir) == OUTPUTS
    assert calls.read_text().split() == ["stack", "output", "--json", "-s", "dev"]


def test_the_settings_that_shape_the_archive_follow_the_source(config_dir: Path) -> None:
    """prod must build dev's bytes: same image, graph, fusion and quantization."""
    (config_dir / "Pulumi.dev.yaml").write_text(
        "config:\n  aws:region: us-east-1\n"
        "  embedding-endpoint:imageTag: 2.3.0-transformers4.48.0-cpu-py311-ubuntu22.04\n"
        "  embedding-endpoint:onnxFile: onnx/model_O2.onnx\n"
        "  embedding-endpoint:onnxQuantization: int8\n"
    )
    prod = config_dir / "Pulumi.prod.yaml"
    prod.write_text(PROD_CONFIG + "  embedding-endpoint:onnxFusion: false\n")
    assert _run(config_dir, OUTPUTS | {"inferenceEngine": "onnx"}).returncode == 0
    config = _config(prod)
    assert config["embedding-endpoint:imageTag"] == "2.3.0-transformers4.48.0-cpu-py311-ubuntu22.04"
    assert config["embedding-endpoint:onnxFile"] == "onnx/model_O2.onnx"
    assert config["embedding-endpoint:onnxQuantization"] == "int8"
    assert "embedding-endpoint:onnxFusion" not in config  # dev leaves it at its default


def test_a_target_the_program_would_refuse_once_promoted_is_left_unwritten(
    config_dir: Path,
) -> None:
    prod = config_dir / "Pulumi.prod.yaml"
    prod.write_text("config:\n  aws:region: eu-west-1\n  embedding-endpoint:backend: bedrock\n")
    result = _run(config_dir, OUTPUTS)
    assert result.returncode == 1
    assert "Pulumi.prod.yaml would be refused by the program once promoted" in result.stderr
    assert "'embedding-endpoint:modelId'" in result.stderr
    assert (
        prod.read_text()
        == "config:\n  aws:region: eu-west-1\n  embedding-endpoint:backend: bedrock\n"
    )


def test_a_torch_archive_leaves_the_onnx_keys_unset_in_the_target(config_dir: Path) -> None:
    """dev may set onnxFusion while its engine settled on torch (auto, no export)."""
    (config_dir / "Pulumi.dev.yaml").write_text(
        'config:\n  aws:region: us-east-1\n  embedding-endpoint:onnxFusion: "false"\n'
    )
    result = _run(config_dir, OUTPUTS | {"inferenceEngine": "torch"})
    assert result.returncode == 0, result.stderr
    assert "embedding-endpoint:onnxFusion" not in _config(config_dir / "Pulumi.prod.yaml")


def test_secure_values_promotion_cannot_decrypt_are_left_to_the_program(config_dir: Path) -> None:
    prod = config_dir / "Pulumi.prod.yaml"
    prod.write_text(
        PROD_CONFIG.replace(
            "  embedding-endpoint:hfToken:\n    secure: v1:AAAABBBB:CCCCDDDD\n",
            "  embedding-endpoint:hfTokenSecretArn:\n    secure: v1:AAAABBBB:CCCCDDDD\n",
        )
    )
    result = _run(config_dir, OUTPUTS)
    assert result.returncode == 0, result.stderr
