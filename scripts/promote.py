"""Promote the exact artifact a stack deployed to another stack (`make promote FROM=dev TO=prod`).

Reads the source stack's outputs and pins three keys in the target's `Pulumi.<to>.yaml`:
`modelId`, `modelRevision` (the commit sha the source packaged) and `expectedArtifactSha256`
(the sha256 of the archive it built), and a fourth, `inferenceEngine`, with the engine the source
settled on (`torch` or `onnx`, when its outputs name one). The source config's keys that shape
the archive (`ARCHIVE_KEYS`: the image, the ONNX graph, fusion, quantization) are set or unset in
the target as the source has them (the ONNX keys unset for a PyTorch archive). The
packager rebuilds the same reproducible archive for the target and fails the deploy if its
sha256 differs, so prod serves byte-for-byte what dev tested. Every other key and comment of the
target file is kept; the result is checked as the program would check it before it is written,
and the diff is printed for review.

    python -m scripts.promote --from dev --to prod [--outputs-file F] [--config-dir .]
"""

from __future__ import annotations

import argparse
import difflib
import io
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.util import load_yaml_guess_indent

from embedding_client.backend import TargetError
from embedding_client.stack_outputs import load_outputs
from facts import stack as stack_facts
from facts.identifiers import COMMIT_SHA, MODEL_ID, SHA256
from facts.onnx_runtime import ENGINES as _ENGINES
from facts.stack import CONFIG_NAMESPACE as NAMESPACE

_STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
REQUIRED_OUTPUTS = (stack_facts.MODEL_ID, stack_facts.MODEL_REVISION, stack_facts.ARTIFACT_SHA256)
# The source's settings that shape the archive's bytes besides the pinned keys: the image (whose
# Python an ONNX archive's runtime is for) and the graph's choice, fusion and quantization. The
# target gets each as the source has it, or unset where the source leaves it unset.
ARCHIVE_KEYS = ("imageTag", "onnxFile", "onnxFusion", "onnxQuantization")
# The ONNX keys among them: a torch archive has none, so they are unset in the target then.
ONNX_KEYS = ("onnxFile", "onnxFusion", "onnxQuantization")


class PromotionError(RuntimeError):
    """Promotion cannot go ahead; the message names the stack, key or file at fault."""


@dataclass(frozen=True)
class Promotion:
    """What the target stack must deploy: one Hub commit and the sha256 of its archive."""

    model_id: str
    model_revision: str
    artifact_sha256: str
    # The engine the archive was built for; None for stacks deployed before there was a choice.
    inference_engine: str | None = None
    # ARCHIVE_KEYS as the source stack's config sets them (None: unset there).
    archive_settings: Mapping[str, object] = field(default_factory=dict)

    def config_values(self) -> dict[str, str]:
        values = {
            f"{NAMESPACE}:modelId": self.model_id,
            f"{NAMESPACE}:modelRevision": self.model_revision,
            f"{NAMESPACE}:expectedArtifactSha256": self.artifact_sha256,
        }
        if self.inference_engine:
            values[f"{NAMESPACE}:inferenceEngine"] = self.inference_engine
        return values


def promotion_from_outputs(outputs: Mapping[str, object], source: str) -> Promotion:
    """Validate the source stack's outputs and take the pinned model and artifact from them."""
    backend = outputs.get(stack_facts.BACKEND, "sagemaker")
    if backend != "sagemaker":
        raise PromotionError(
            f"stack '{source}' uses backend {backend!r}: only the sagemaker backend builds an "
            "artifact to promote"
        )
    missing = [key for key in REQUIRED_OUTPUTS if not outputs.get(key)]
    if missing:
        raise PromotionError(
            f"outputs of stack '{source}' lack {', '.join(missing)} (needed: "
            f"{', '.join(REQUIRED_OUTPUTS)}); deploy it with `pulumi up -s {source}` first"
        )
    model_id, revision, sha256 = (str(outputs[key]) for key in REQUIRED_OUTPUTS)
    rules = (MODEL_ID, COMMIT_SHA, SHA256)
    for key, value, rule in zip(REQUIRED_OUTPUTS, (model_id, revision, sha256), rules, strict=True):
        if not rule.matches(value):
            raise PromotionError(
                f"output {key} of stack '{source}' is {value!r}: {rule.problem(value)}"
            )
    engine = outputs.get(stack_facts.INFERENCE_ENGINE)
    if engine is not None and engine not in _ENGINES:
        raise PromotionError(
            f"output inferenceEngine of stack '{source}' is {engine!r}, not one of "
            f"{', '.join(_ENGINES)}"
        )
    return Promotion(model_id, revision, sha256, engine)


def _config_section(path: Path) -> Mapping[str, object]:
    if not path.is_file():
        return {}
    document = YAML(typ="safe").load(path.read_text()) or {}
    return document.get("config") or {}


def check_no_prebuilt_artifact(config_path: Path, stack: str) -> None:
    """Refuse stacks that deploy a prebuilt archive: a Hub revision pin would not apply there."""
    url = _config_section(config_path).get(f"{NAMESPACE}:sourceModelDataUrl")
    if url:
        raise PromotionError(
            f"stack '{stack}' sets {NAMESPACE}:sourceModelDataUrl ({url}) in {config_path.name}: "
            "it deploys a prebuilt archive, not a packaged Hub revision; promote by copying that "
            "URL instead, or remove the key"
        )


def source_archive_settings(config_path: Path, engine: str | None) -> dict[str, object]:
    """ARCHIVE_KEYS as the source's config file sets them (None where it does not, and for the
    ONNX keys when the source's archive is PyTorch's)."""
    section = _config_section(config_path)
    settings = {name: section.get(f"{NAMESPACE}:{name}") for name in ARCHIVE_KEYS}
    if engine == "torch":
        settings.update(dict.fromkeys(ONNX_KEYS))
    return settings


def check_target_config(config_text: str, target: str) -> None:
    """PromotionError, before anything is written, when the program would refuse the promoted
    config (a Bedrock target, an engine key the promoted engine cannot take, ...)."""
    from components.config import ConfigError, check_known_keys, parse_config

    section = YAML(typ="safe").load(config_text).get("config") or {}
    prefix = f"{NAMESPACE}:"
    raw = {
        key[len(prefix) :]: _config_text(value)
        for key, value in section.items()
        if key.startswith(prefix) and not _unreadable_secret(key, value)
    }
    region = section.get("aws:region") or os.environ.get("AWS_REGION")
    region = region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    try:
        check_known_keys(section)
        parse_config(raw, stack=target, region=str(region))
    except ConfigError as error:
        raise PromotionError(
            f"Pulumi.{target}.yaml would be refused by the program once promoted ({error}); "
            "nothing was written: make the two stacks' settings agree first"
        ) from None


def _unreadable_secret(key: str, value: object) -> bool:
    """A secure value promotion cannot decrypt (the program checks it at preview); hfToken's is
    kept, as the program reads only whether it is there."""
    return value is None or (isinstance(value, dict) and not key.endswith(":hfToken"))


def _config_text(value: object) -> str:
    """A config value as Pulumi hands it to the program: a string (hfToken as a stand-in)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "<secret>" if isinstance(value, dict) else str(value)


def apply_promotion(config_text: str, promotion: Promotion, target: str) -> str:
    """The target config file's text with the promoted keys set; the rest kept as written."""
    yaml = _round_trip_yaml(config_text)
    data = yaml.load(config_text) if config_text.strip() else None
    if data is None:
        data = yaml.load("config: {}\n")
    if not isinstance(data, Mapping):
        raise PromotionError(f"Pulumi.{target}.yaml is not a YAML mapping")
    config = data.get("config")
    if config is None:
        config = data["config"] = YAML().load("{}")
    if not isinstance(config, Mapping):
        raise PromotionError(f"Pulumi.{target}.yaml: 'config' is not a mapping")
    if config.get(f"{NAMESPACE}:sourceModelDataUrl"):
        raise PromotionError(
            f"stack '{target}' sets {NAMESPACE}:sourceModelDataUrl in Pulumi.{target}.yaml: it "
            "would deploy that archive instead of the promoted revision; remove the key first"
        )
    config.fa.set_block_style()
    for key, value in promotion.config_values().items():
        # Quoted: a hex sha such as "123e4567…" would otherwise read back as a number.
        quoted = not key.endswith((":modelId", ":inferenceEngine"))
        config[key] = DoubleQuotedScalarString(value) if quoted else value
    for name, value in promotion.archive_settings.items():
        key = f"{NAMESPACE}:{name}"
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()


def _round_trip_yaml(config_text: str) -> YAML:
    """A round-trip YAML that writes with the indentation the file already uses."""
    mapping_indents = [
        len(line) - len(line.lstrip(" "))
        for line in config_text.splitlines()
        if line.startswith(" ") and not line.lstrip().startswith(("#", "-")) and line.strip()
    ]
    mapping = min(mapping_indents, default=2)
    _, sequence, offset = load_yaml_guess_indent(config_text) if config_text.strip() else (0, 0, 0)
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    if offset is None or not sequence:
        sequence, offset = mapping + 2, mapping
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def config_diff(old: str, new: str, file_name: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"a/{file_name}",
            tofile=f"b/{file_name}",
        )
    )


def read_stack_outputs(stack: str, cwd: Path, outputs_file: Path | None = None) -> dict:
    """The source stack's outputs: `pulumi stack output --json -s STACK`, or a saved copy."""
    try:
        file = str(outputs_file) if outputs_file else None
        return load_outputs(stack, file, cwd=str(cwd), instead="--outputs-file")
    except TargetError as error:
        raise PromotionError(str(error)) from None


def promote(
    source: str, target: str, *, config_dir: Path, outputs: Mapping[str, object]
) -> tuple[Path, str]:
    """Write the promoted keys into the target's config file; returns (file, diff)."""
    for name, stack in (("--from", source), ("--to", target)):
        if not _STACK_NAME.match(stack):
            raise PromotionError(f"{name} {stack!r} is not a stack name (letters, digits, _ . -)")
    if source == target:
        raise PromotionError(f"--from and --to are both '{source}': pick two different stacks")
    source_file = config_dir / f"Pulumi.{source}.yaml"
    check_no_prebuilt_artifact(source_file, source)
    promotion = promotion_from_outputs(outputs, source)
    settings = source_archive_settings(source_file, promotion.inference_engine)
    promotion = replace(promotion, archive_settings=settings)
    target_file = config_dir / f"Pulumi.{target}.yaml"
    if not target_file.is_file():
        raise PromotionError(
            f"{target_file} does not exist: create the stack first (`pulumi stack init {target}` "
            f"and `pulumi config set aws:region <region> -s {target}`)"
        )
    old = target_file.read_text()
    new = apply_promotion(old, promotion, target)
    check_target_config(new, target)
    if new != old:
        target_file.write_text(new)
    return target_file, config_diff(old, new, target_file.name)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", required=True, help="stack that was tested")
    parser.add_argument("--to", dest="target", required=True, help="stack to pin")
    parser.add_argument(
        "--outputs-file",
        type=Path,
        help="JSON of the source outputs (default: `pulumi stack output --json -s FROM`)",
    )
    parser.add_argument(
        "--config-dir", type=Path, default=Path("."), help="where Pulumi.*.yaml are"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        outputs = read_stack_outputs(args.source, args.config_dir, args.outputs_file)
        target_file, diff = promote(
            args.source, args.target, config_dir=args.config_dir, outputs=outputs
        )
    except PromotionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not diff:
        print(
            f"{target_file.name} already pins what stack '{args.source}' deployed.", file=sys.stderr
        )
        return 0
    sys.stdout.write(diff)
    print(
        f"\nWrote {target_file}. Review the diff, commit it, then deploy: "
        f"pulumi up -s {args.target}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
