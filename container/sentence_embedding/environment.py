"""The container's environment, read in one place: the deployment's settings and the platform's.

The Model's environment carries the stack's settings (names in facts/sagemaker_endpoints.py).
Inside a Batch Transform job SageMaker sizes the mini-batches itself (MaxPayloadInMB, given to
the container as SAGEMAKER_MAX_PAYLOAD_IN_MB) and the model server caps a response at
MMS_MAX_RESPONSE_SIZE (facts/batch_transform.py); a MultiRecord mini-batch of short lines holds
thousands of records, which the serverless endpoint's 4 MB bounds (facts/serverless.py) would
refuse. Read on each use (a few lookups, no I/O): `input_fn` gets no model to keep it on.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from facts import batch_transform
from facts.onnx_runtime import ENGINES
from facts.sagemaker_endpoints import (
    DEFAULT_PROMPT_VARIABLE,
    ENGINE_VARIABLE,
    MAX_BATCH_SIZE_VARIABLE,
    MAX_REQUEST_SECONDS_VARIABLE,
    MAX_SEQ_LENGTH_VARIABLE,
    MODEL_ID_VARIABLE,
    NUM_THREADS_VARIABLE,
)
from facts.serverless import COMPUTE_SECONDS, MAX_PAYLOAD_BYTES

from .threads import available_cpus

# At most this many texts per request (EMBEDDING_MAX_BATCH_SIZE lowers or raises it): as many
# as OpenAI's API takes. Responses must also fit their limit, which bounds wide float vectors.
# In a Batch Transform job SageMaker sizes the requests (MaxPayloadInMB), so only the response
# limit and an explicit EMBEDDING_MAX_BATCH_SIZE apply there.
MAX_BATCH_SIZE = 2048
UNBOUNDED = 2**31 - 1


class SettingError(ValueError):
    """A variable of the container's environment holds a value it cannot use (named in `str`)."""


@dataclass(frozen=True)
class ContainerSettings:
    """What the environment asks of the container, every value checked."""

    # The served model's name (the deployment's model id); None: config.json's.
    model_id: str | None
    # `torch` or `onnx` forced; None: the engine the archive carries.
    engine: str | None
    # Intra-op threads; None: one per vCPU the container may use.
    num_threads: int | None
    max_batch_size: int
    # The stack's default prompt name (checked against the model's prompts at load).
    default_prompt_name: str | None
    # The stack's maxSeqLength: lowers the model's own limit, never raises it.
    max_seq_length: int | None
    in_batch_transform: bool
    request_limit_bytes: int
    response_limit_bytes: int
    # Seconds a request's forward passes may take (time_budget.py); None: no bound (a
    # transform job's invocations have a timeout of the job's own).
    max_request_seconds: float | None = None

    def intra_op_threads(self) -> int:
        """The threads both engines size their pools to: the override, else the vCPUs."""
        return self.num_threads or available_cpus()


def read_environment(environ: Mapping[str, str] | None = None) -> ContainerSettings:
    """The settings in `environ` (default: this process's); SettingError naming a bad variable."""
    env = os.environ if environ is None else environ
    in_job = _in_transform_job(env)
    batch_size = _positive_int(env, MAX_BATCH_SIZE_VARIABLE)
    if batch_size is None:
        batch_size = UNBOUNDED if in_job else MAX_BATCH_SIZE
    return ContainerSettings(
        model_id=env.get(MODEL_ID_VARIABLE) or None,
        engine=_engine(env),
        num_threads=_positive_int(env, NUM_THREADS_VARIABLE),
        max_batch_size=batch_size,
        default_prompt_name=env.get(DEFAULT_PROMPT_VARIABLE) or None,
        max_seq_length=_positive_int(env, MAX_SEQ_LENGTH_VARIABLE),
        in_batch_transform=in_job,
        request_limit_bytes=request_limit_bytes(env),
        response_limit_bytes=_response_limit(env) if in_job else MAX_PAYLOAD_BYTES,
        max_request_seconds=_request_seconds(env, in_job),
    )


def request_limit_bytes(environ: Mapping[str, str] | None = None) -> int:
    """The request body limit alone: what input_fn checks on every request, at two lookups."""
    env = os.environ if environ is None else environ
    return _request_limit(env) if _in_transform_job(env) else MAX_PAYLOAD_BYTES


def _in_transform_job(env: Mapping[str, str]) -> bool:
    return env.get(batch_transform.BATCH_ENV, "").strip().lower() == "true"


def _positive_int(env: Mapping[str, str], name: str) -> int | None:
    """The variable `name` as a positive integer; None when it is not set."""
    raw = env.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise SettingError(f"{name} must be a positive integer, got {raw!r}")
    return value


def _request_seconds(env: Mapping[str, str], in_job: bool) -> float | None:
    """EMBEDDING_MAX_REQUEST_SECONDS (a positive number, or 0: no bound), else the default."""
    raw = env.get(MAX_REQUEST_SECONDS_VARIABLE)
    if raw is None:
        return None if in_job else float(COMPUTE_SECONDS)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise SettingError(
            f"{MAX_REQUEST_SECONDS_VARIABLE} must be a number of seconds (0: no bound), got {raw!r}"
        )
    return value or None


def _engine(env: Mapping[str, str]) -> str | None:
    forced = env.get(ENGINE_VARIABLE, "").strip().lower()
    if forced and forced not in ENGINES:
        raise SettingError(
            f"{ENGINE_VARIABLE} is {forced!r}; expected one of {list(ENGINES)} (or unset: the "
            "archive's engine)"
        )
    return forced or None


def _platform_size(env: Mapping[str, str], name: str, default: int) -> int:
    """A size the platform sets: its value when a positive integer, else `default`."""
    try:
        value = int(env.get(name, "").strip())
    except ValueError:
        return default
    return value if value > 0 else default


def _request_limit(env: Mapping[str, str]) -> int:
    """In a transform job: the job's MaxPayloadInMB (0: chunked, the model server's cap)."""
    megabytes = _platform_size(env, batch_transform.MAX_PAYLOAD_ENV, 0)
    if megabytes == 0:
        return batch_transform.MAX_RESPONSE_BYTES
    return megabytes * batch_transform.MIB


def _response_limit(env: Mapping[str, str]) -> int:
    """In a transform job: the model server's response cap."""
    return min(
        _platform_size(
            env, batch_transform.RESPONSE_SIZE_ENV, batch_transform.DEFAULT_RESPONSE_BYTES
        ),
        batch_transform.MAX_RESPONSE_BYTES,
    )
