"""The loader event: parsed and validated into a `LoaderRequest` before any network call (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any

from facts import engine_choice, identifiers
from facts.engine_choice import EngineAsk, EngineProblem, choose_engine
from facts.identifiers import Rule
from facts.loader_contract import EVENT_FIELDS, LoaderRequest
from facts.onnx_quantization import QUANTIZATIONS
from facts.onnx_runtime import ENGINES, ONNX_MODEL_FILE, RUNTIME_WHEELS
from loader.errors import EventError

# An absent or null field means the request's own default: one home for each (LoaderRequest).
_DEFAULT = {item.name: item.default for item in fields(LoaderRequest)}


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


def _required(event: Mapping[str, Any], name: str, rule: Rule, what: str) -> str:
    value = _optional_str(event, name)
    if value is None:
        raise EventError(name, f"is required ({what})")
    return str(_checked(value, name, rule))


def parse_event(event: Mapping[str, Any]) -> LoaderRequest:
    """A `LoaderRequest`, or EventError naming the field, the value and what is allowed."""
    if not isinstance(event, Mapping):
        raise EventError("<event>", f"must be a JSON object, got {type(event).__name__}")
    unknown = sorted(set(event) - set(EVENT_FIELDS))
    if unknown:
        raise EventError(unknown[0], f"is not a loader event field; allowed: {list(EVENT_FIELDS)}")
    model_id = _required(event, "model_id", identifiers.MODEL_ID, identifiers.MODEL_ID.expected)
    bucket = _required(event, "bucket", identifiers.BUCKET, "the artifact bucket name")
    revision = _optional_str(event, "revision") or _DEFAULT["revision"]
    _checked(revision, "revision", identifiers.REVISION)
    key_prefix = event.get("key_prefix", _DEFAULT["key_prefix"])
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
    expected = _checked(expected and expected.lower(), "expected_sha256", identifiers.SHA256)
    request = LoaderRequest(
        model_id=model_id,
        bucket=bucket,
        revision=revision,
        key_prefix=key_prefix,
        hf_token=hf_token,
        hf_token_secret_arn=secret_arn,
        source_model_data_url=source_url,
        expected_sha256=expected,
        allow_pickled_weights=_optional_bool(event, "allow_pickled_weights"),
    )
    return _with_engine(request, event)


def _optional_bool(event: Mapping[str, Any], name: str) -> bool:
    """A true/false field; absent or null: false."""
    value = event.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise EventError(name, f"must be true or false, got {value!r}")
    return value


def _with_engine(request: LoaderRequest, event: Mapping[str, Any]) -> LoaderRequest:
    """`request` with the event's engine fields, checked by the rules the stack config follows.

    The event's `engine` is what the packager's `check` decided once it found the export, so it
    is taken as found; the loader looks for the graph again when it lists the commit.
    """
    engine = _optional_str(event, "engine") or _DEFAULT["engine"]
    if engine not in ENGINES:
        raise EventError("engine", f"is {engine!r}; expected one of {list(ENGINES)}")
    container_python = _optional_str(event, "container_python")
    onnx_file = _optional_str(event, "onnx_file") or _DEFAULT["onnx_file"]
    fusion = event.get("onnx_fusion")
    if fusion is not None and not isinstance(fusion, bool):
        raise EventError("onnx_fusion", f"must be true or false, got {fusion!r}")
    quantization = _optional_str(event, "onnx_quantization") or _DEFAULT["onnx_quantization"]
    if quantization not in QUANTIZATIONS:
        raise EventError(
            "onnx_quantization", f"is {quantization!r}; expected one of {list(QUANTIZATIONS)}"
        )
    choice = choose_engine(
        EngineAsk(
            engine=engine,
            python=container_python,
            onnx_file=None if onnx_file == ONNX_MODEL_FILE else onnx_file,
            # The program writes false for PyTorch archives: only true asks for a fusion there.
            onnx_fusion=fusion if engine == "onnx" or fusion else None,
            onnx_quantization=quantization,
            source_archive=request.source_model_data_url is not None,
            onnx_export=True,
        )
    )
    if choice.problems:
        raise _event_error(choice.problems[0], container_python, onnx_file)
    return replace(
        request,
        engine=choice.engine,
        container_python=container_python if choice.engine == "onnx" else None,
        onnx_file=onnx_file,
        onnx_fusion=choice.fusion,
        onnx_quantization=choice.quantization,
    )


def _event_error(problem: EngineProblem, python: str | None, onnx_file: str) -> EventError:
    """The engine rule's problem in the event's terms."""
    if problem.field == engine_choice.PYTHON:
        return EventError(
            "container_python",
            f"is {python!r}; engine 'onnx' needs the container's Python, one of "
            f"{sorted(RUNTIME_WHEELS)} (the Pythons an ONNX Runtime wheel is known for)",
        )
    if problem.field == engine_choice.ENGINE:
        return EventError(
            "engine", "'onnx' needs a Hub model with onnx/model.onnx, not a source archive"
        )
    if problem.field == engine_choice.ONNX_QUANTIZATION:
        return EventError(
            "onnx_quantization",
            "is 'int8', but only engine 'onnx' packages a graph to quantize "
            "(a Hub model with its ONNX export); send 'none' for this archive",
        )
    if problem.field == engine_choice.ONNX_FUSION:
        return EventError("onnx_fusion", "is true, but only engine 'onnx' packages a graph to fuse")
    if problem.reason == engine_choice.BAD_NAME:
        return EventError("onnx_file", f"is {onnx_file!r}: {problem.detail}")
    return EventError("onnx_file", f"is {onnx_file!r}, which only engine 'onnx' runs")
