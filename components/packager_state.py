"""The packager resource's inputs as its state keeps them, typed, and what changes replace it.

Pulumi hands the provider plain dicts; `PackagerInputs.from_mapping` reads one (a state written
by an older version may lack fields: each absent field reads as its default) and `as_dict`
writes one back. Fields marked `replaces` identify the artifact. Imports no Pulumi.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from facts.loader_contract import RESULT_FIELDS, LoaderResult

_REPLACES = {"replaces": True}


def _identity(default: Any = None) -> Any:
    """A field that identifies the artifact: a change to it packages a new one (a replacement)."""
    return field(default=default, metadata=_REPLACES)


@dataclass(frozen=True)
class PackagerInputs:
    """The inputs delete, read and update need, kept in the state (never the token)."""

    bucket: str | None = _identity()
    key_prefix: str | None = _identity()
    model_id: str | None = _identity()
    # The commit `check` pinned the requested revision to (None for a source archive).
    pinned_revision: str | None = _identity()
    source_model_data_url: str | None = _identity()
    format_version: str | None = _identity()
    # What `check` settled `inference_engine` into; a state from before the choice: PyTorch's.
    engine: str = _identity("torch")
    container_python: str | None = _identity()
    onnx_file: str | None = _identity()
    onnx_fusion: bool | None = _identity()
    # "int8" when the graph is quantized; None otherwise (a state from before it: fp32).
    onnx_quantization: str | None = _identity()
    requested_revision: str | None = None
    expected_sha256: str | None = None
    retain_artifacts: bool | None = None
    runner: str | None = None
    region: str | None = None
    aws_endpoints: Mapping[str, str] | None = None
    aws_profile: str | None = None
    aws_assume_roles: list[Mapping[str, Any]] | None = None
    function_name: str | None = None
    hf_token_secret_arn: str | None = None
    local_timeout_seconds: float | None = None
    inference_engine: str | None = None
    # Whether the pinned commit ships the graph; the commit whose config.json passed the check.
    onnx_export: bool | None = None
    model_code_checked: str | None = None
    # The stack's allowPickledWeights: never changes what is packaged, only whether.
    allow_pickled_weights: bool = False

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> PackagerInputs:
        """The fields found in `values` (inputs or a state); absent or null ones: defaults."""
        found = {item.name: values.get(item.name) for item in fields(cls)}
        return cls(**{name: value for name, value in found.items() if value is not None})

    def as_dict(self) -> dict[str, Any]:
        return {item.name: getattr(self, item.name) for item in fields(self)}

    def given(self) -> dict[str, Any]:
        """The fields set to other than their defaults: the resource's inputs, before `check`."""
        return {
            name: value
            for name, value in self.as_dict().items()
            if value is not self.__dataclass_fields__[name].default
        }

    def changed(self, other: PackagerInputs, *, replacing: bool) -> list[str]:
        """The fields (identifying ones, or the others) whose values differ from `other`'s."""
        return [
            item.name
            for item in fields(self)
            if bool(item.metadata.get("replaces")) == replacing
            and getattr(self, item.name) != getattr(other, item.name)
        ]


REPLACING_INPUTS = tuple(item.name for item in fields(PackagerInputs) if item.metadata)
# Properties the dynamic resource exposes (declared on the Resource class, seeded as None).
OUTPUT_NAMES = (*RESULT_FIELDS, "pinned_revision", "engine")


def state_outputs(inputs: Mapping[str, Any], result: LoaderResult | Mapping[str, Any]):
    """Outputs = the inputs delete/read need (never the token) plus the loader's result.

    The pin stays what `check` decided, so that the next diff compares like with like.
    """
    recorded = result.as_dict() if isinstance(result, LoaderResult) else dict(result)
    return PackagerInputs.from_mapping(inputs).as_dict() | recorded


def recorded_result(state: Mapping[str, Any]) -> dict[str, Any]:
    """The loader's result as a state records it (fields it lacks: None)."""
    return {name: state.get(name) for name in RESULT_FIELDS}
