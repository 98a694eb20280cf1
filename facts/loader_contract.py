"""The loader's contract (docs/contracts.md): its event and its result, each one dataclass.

The program sends `LoaderRequest.to_event()`, loader/event.py parses it back; the loader returns
`LoaderResult.as_dict()`, which the manifest records and the program reads with `from_dict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from facts.engine_choice import fusion_default
from facts.onnx_quantization import NO_QUANTIZATION
from facts.onnx_runtime import ONNX_MODEL_FILE, RuntimeWheel, runtime_wheel


@dataclass(frozen=True)
class LoaderRequest:
    """What to package and where to put it: the loader event's fields and their defaults."""

    model_id: str
    bucket: str
    revision: str = "main"
    key_prefix: str = "models/"
    hf_token: str | None = field(default=None, repr=False)
    hf_token_secret_arn: str | None = None
    source_model_data_url: str | None = None
    expected_sha256: str | None = None
    # "onnx": package the repo's ONNX export and vendor ONNX Runtime for `container_python`.
    engine: str = "torch"
    container_python: str | None = None
    # The export the ONNX engine runs: the repo's onnx/model.onnx unless the stack asked for
    # another (`onnxFile`, e.g. optimum's onnx/model_O2.onnx).
    onnx_file: str = ONNX_MODEL_FILE
    # Fuse that graph before packaging it (loader/graph_fusion.py); None: `fusion_default`.
    onnx_fusion: bool | None = None
    # "int8": quantize that graph and ship it only if it passes the quality check
    # (loader/quantization_check.py); "none": the fp32 graph.
    onnx_quantization: str = NO_QUANTIZATION
    # Package weights that exist only as pickles (`.bin`): the stack trusts the repository.
    allow_pickled_weights: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "onnx_fusion", fusion_default(self.engine, self.onnx_fusion))

    def to_event(self) -> dict[str, Any]:
        """The event the loader parses back into this request (the token included)."""
        return {item.name: getattr(self, item.name) for item in fields(self)}

    @property
    def runtime(self) -> RuntimeWheel | None:
        """The ONNX Runtime wheel vendored into `code/` (None for the torch engine)."""
        return runtime_wheel(self.container_python) if self.engine == "onnx" else None

    @property
    def artifact_variant(self) -> str | None:
        """The artifact key's engine folder (`onnx-py310`), None for the torch engine."""
        if self.runtime is None:
            return None
        quantized = None if self.onnx_quantization == NO_QUANTIZATION else self.onnx_quantization
        return self.runtime.variant(self.onnx_file, bool(self.onnx_fusion), quantized)


EVENT_FIELDS = tuple(item.name for item in fields(LoaderRequest))


@dataclass(frozen=True)
class LoaderResult:
    """What the loader returns, and what its manifest records beside the archive."""

    model_data_url: str
    revision: str
    sha256: str
    size_bytes: int
    weights_bytes: int
    files: tuple[str, ...]
    format_version: str
    # The int8 graph's quality check (loader/quantization_check.py's figures); None: fp32.
    quantization_report: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        result = asdict(self)
        result["files"] = list(self.files)
        return result

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> LoaderResult:
        """The result recorded in `values`; KeyError, ValueError or TypeError if it is not one."""
        return cls(
            model_data_url=values["model_data_url"],
            revision=values["revision"],
            sha256=values["sha256"],
            size_bytes=int(values["size_bytes"]),
            weights_bytes=int(values["weights_bytes"]),
            files=tuple(values["files"]),
            format_version=values["format_version"],
            quantization_report=values.get("quantization_report"),
        )


RESULT_FIELDS = tuple(item.name for item in fields(LoaderResult))
# Result fields that may be null: the quality report exists for int8 archives only.
OPTIONAL_RESULT_FIELDS = ("quantization_report",)
