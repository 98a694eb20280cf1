"""The loader event: parsed and validated before any network call (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from facts import identifiers
from facts.identifiers import Rule
from facts.onnx_runtime import (
    ENGINES,
    ONNX_MODEL_FILE,
    RUNTIME_WHEELS,
    RuntimeWheel,
    onnx_file_problem,
    runtime_wheel,
)
from loader.errors import EventError

EVENT_FIELDS = (
    "model_id",
    "revision",
    "bucket",
    "key_prefix",
    "hf_token",
    "hf_token_secret_arn",
    "source_model_data_url",
    "expected_sha256",
    "engine",
    "container_python",
    "onnx_file",
    "onnx_fusion",
    "allow_pickled_weights",
)


@dataclass(frozen=True)
class LoaderRequest:
    """What to package and where to put it."""

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
    # Fuse that graph before packaging it (loader/graph_fusion.py); absent from an event: yes,
    # with engine "onnx".
    onnx_fusion: bool = False
    # Package weights that exist only as pickles (`.bin`): the stack trusts the repository.
    allow_pickled_weights: bool = False

    @property
    def runtime(self) -> RuntimeWheel | None:
        """The ONNX Runtime wheel vendored into `code/` (None for the torch engine)."""
        return runtime_wheel(self.container_python) if self.engine == "onnx" else None

    @property
    def artifact_variant(self) -> str | None:
        """The artifact key's engine folder (`onnx-py310`), None for the torch engine."""
        if self.runtime is None:
            return None
        return self.runtime.variant(self.onnx_file, fused=self.onnx_fusion)


def _optional_str(event: Mapping[str, Any], name: str) -> str | None:
    value = event.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise EventError(name, f"must be a string or null, got {type(value).__name__}")
    return value or None


def _checked(value: str | None, name: str, rule: Rule) -> str | None:
    if value is not None and not rule.matches(value):
        raise EventError(name, f"is {value!r}; {rule.problem(value)}")
    return value


def parse_event(event: Mapping[str, Any]) -> LoaderRequest:
    """A `LoaderRequest`, or EventError naming the field, the value and what is allowed."""
    if not isinstance(event, Mapping):
        raise EventError("<event>", f"must be a JSON object, got {type(event).__name__}")
    unknown = sorted(set(event) - set(EVENT_FIELDS))
    if unknown:
        raise EventError(unknown[0], f"is not a loader event field; allowed: {list(EVENT_FIELDS)}")
    model_id = _optional_str(event, "model_id")
    if model_id is None:
        raise EventError("model_id", f"is required ({identifiers.MODEL_ID.expected})")
    _checked(model_id, "model_id", identifiers.MODEL_ID)
    bucket = _optional_str(event, "bucket")
    if bucket is None:
        raise EventError("bucket", "is required (the artifact bucket name)")
    _checked(bucket, "bucket", identifiers.BUCKET)
    revision = _optional_str(event, "revision") or "main"
    _checked(revision, "revision", identifiers.REVISION)
    key_prefix = event.get("key_prefix", "models/")
    if key_prefix is None:
        key_prefix = ""
    if not isinstance(key_prefix, str):
        raise EventError("key_prefix", f"must be a string, got {type(key_prefix).__name__}")
    _checked(key_prefix, "key_prefix", identifiers.KEY_PREFIX)
    hf_token = _optional_str(event, "hf_token")
    secret_arn = _checked(
        _optional_str(event, "hf_token_secret_arn"), "hf_token_secret_arn", identifiers.SECRET_ARN
    )
    if hf_token and secret_arn:
        raise EventError("hf_token_secret_arn", "cannot be combined with hf_token; give one")
    source_url = _checked(
        _optional_str(event, "source_model_data_url"),
        "source_model_data_url",
        identifiers.S3_TARBALL_URL,
    )
    expected = _optional_str(event, "expected_sha256")
    expected = _checked(
        expected.lower() if expected else None, "expected_sha256", identifiers.SHA256
    )
    engine = _optional_str(event, "engine") or "torch"
    if engine not in ENGINES:
        raise EventError("engine", f"is {engine!r}; expected one of {list(ENGINES)}")
    container_python = _optional_str(event, "container_python")
    onnx_file = _optional_str(event, "onnx_file") or ONNX_MODEL_FILE
    problem = onnx_file_problem(onnx_file)
    if problem is not None:
        raise EventError("onnx_file", f"is {onnx_file!r}: {problem}")
    if onnx_file != ONNX_MODEL_FILE and engine != "onnx":
        raise EventError("onnx_file", f"is {onnx_file!r}, which only engine 'onnx' runs")
    onnx_fusion = event.get("onnx_fusion")
    if onnx_fusion is None:
        onnx_fusion = engine == "onnx"
    if not isinstance(onnx_fusion, bool):
        raise EventError("onnx_fusion", f"must be true or false, got {onnx_fusion!r}")
    if onnx_fusion and engine != "onnx":
        raise EventError("onnx_fusion", "is true, but only engine 'onnx' packages a graph to fuse")
    allow_pickles = event.get("allow_pickled_weights")
    if allow_pickles is None:
        allow_pickles = False
    if not isinstance(allow_pickles, bool):
        raise EventError("allow_pickled_weights", f"must be true or false, got {allow_pickles!r}")
    if engine == "onnx":
        if source_url:
            raise EventError(
                "engine", "'onnx' needs a Hub model with onnx/model.onnx, not a source archive"
            )
        if runtime_wheel(container_python) is None:
            raise EventError(
                "container_python",
                f"is {container_python!r}; engine 'onnx' needs the container's Python, one of "
                f"{sorted(RUNTIME_WHEELS)} (the Pythons an ONNX Runtime wheel is known for)",
            )
    return LoaderRequest(
        model_id=model_id,
        bucket=bucket,
        revision=revision,
        key_prefix=key_prefix,
        hf_token=hf_token,
        hf_token_secret_arn=secret_arn,
        source_model_data_url=source_url,
        expected_sha256=expected,
        engine=engine,
        container_python=container_python if engine == "onnx" else None,
        onnx_file=onnx_file,
        onnx_fusion=onnx_fusion,
        allow_pickled_weights=allow_pickles,
    )
