"""The transform job `embed batch` starts, pure: its spec, the checks that refuse what SageMaker
or the container would refuse (before anything is created), and its CreateTransformJob request.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from facts import batch_transform, identifiers
from facts.embedding_api import JSONLINES_CONTENT_TYPE

# Defaults (docs/bulk.md says why each).
DEFAULT_INSTANCE_TYPE = "ml.c5.xlarge"  # 4 vCPUs, 8 GiB: compute-optimized CPU
DEFAULT_INSTANCE_COUNT = 1
DEFAULT_MAX_PAYLOAD_MB = 1  # mini-batches of at most 1 MiB: thousands of short records
DEFAULT_CONCURRENCY_PER_INSTANCE = 2  # one request computing, the next one already delivered
INVOCATION_TIMEOUT_SECONDS = batch_transform.MAX_INVOCATION_TIMEOUT_SECONDS
INVOCATION_RETRIES = 1
# The model server's response cap in the job (MMS_MAX_RESPONSE_SIZE). 1 GB holds the float
# vectors of a 1 MiB mini-batch whose records average 20 bytes (a JSON string of ~17 characters)
# at 1024 dimensions; a mini-batch of shorter records is refused with a 413 naming the limit.
RESPONSE_BYTES = 1_000_000_000
# The DLC image is a CPU build: accelerated instance families cannot run it.
_ACCELERATED = re.compile(r"^ml\.(p\d|g\d|inf\d|trn\d|dl\d)")
_INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


class BatchUsageError(Exception):
    """The command line asks for a job that cannot be started; nothing was created."""


@dataclass(frozen=True)
class JobSpec:
    """Everything a transform job of `embed batch` is made of."""

    job_name: str
    model_name: str
    input_url: str
    output_url: str
    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_count: int = DEFAULT_INSTANCE_COUNT
    max_payload_mb: int = DEFAULT_MAX_PAYLOAD_MB
    concurrency_per_instance: int = DEFAULT_CONCURRENCY_PER_INSTANCE
    text_field: str = "text"  # "": each record is a bare JSON string
    id_field: str = "id"
    keep_input: bool = False


def check_spec(spec: JobSpec) -> None:
    """Refuse what SageMaker or the container would refuse, before anything is created."""
    for name in ("input_url", "output_url"):
        problem = identifiers.S3_PREFIX_URL.problem(getattr(spec, name))
        if problem:
            raise BatchUsageError(f"{getattr(spec, name)!r}: {problem}")
    if spec.output_url.startswith(spec.input_url) or spec.input_url.startswith(spec.output_url):
        raise BatchUsageError("the output folder must be outside the input folder and vice versa")
    if not _INSTANCE_TYPE.match(spec.instance_type):
        raise BatchUsageError(f"--instance-type {spec.instance_type!r}: expected e.g. ml.c5.xlarge")
    if _ACCELERATED.match(spec.instance_type):
        raise BatchUsageError(
            f"--instance-type {spec.instance_type}: the Model's image is the DLC's CPU build; "
            "choose a CPU type such as ml.c5.xlarge or ml.m5.xlarge"
        )
    if not 1 <= spec.max_payload_mb <= batch_transform.MAX_PAYLOAD_MB_LIMIT:
        raise BatchUsageError(
            f"--max-payload-mb {spec.max_payload_mb}: expected 1-"
            f"{batch_transform.MAX_PAYLOAD_MB_LIMIT} (a record may not be larger)"
        )
    if spec.instance_count < 1 or spec.concurrency_per_instance < 1:
        raise BatchUsageError("--instance-count and --concurrency-per-instance must be at least 1")
    # An empty --text-field means bare string records (no id to keep); an id is kept otherwise.
    fields = [("--text-field", spec.text_field)]
    if spec.text_field:
        fields.append(("--id-field", spec.id_field))
    for flag, field in fields:
        if field and not _FIELD.match(field) or flag == "--id-field" and not field:
            raise BatchUsageError(
                f"{flag} {field!r}: expected a plain field name (letters, digits, _ and -, "
                "starting with a letter or _)"
            )
    if not _JOB_NAME.match(spec.job_name):
        raise BatchUsageError(f"job name {spec.job_name!r}: 1-63 of [a-zA-Z0-9-]")
    for name, value in (("InputFilter", input_filter(spec)), ("OutputFilter", output_filter(spec))):
        if len(value) > batch_transform.MAX_FILTER_LENGTH:
            raise BatchUsageError(f"{name} {value!r} is over 63 characters: shorten the field")


def input_filter(spec: JobSpec) -> str:
    """JSONPath of the text in each record: the container gets a JSON string per line."""
    return f"$.{spec.text_field}" if spec.text_field else "$"


def output_filter(spec: JobSpec) -> str:
    """JSONPath of what each output line keeps of the joined record: the id and the vector."""
    if spec.keep_input:
        return "$"
    if not spec.text_field:  # a bare string record is joined as {"SageMakerInput", ...Output}
        return f"$['{batch_transform.OUTPUT_KEY}']"
    return f"$['{spec.id_field}','{batch_transform.OUTPUT_KEY}']"


def job_environment() -> dict[str, str]:
    """Container variables the job adds to the Model's: a response cap and a request timeout
    large enough for a MultiRecord mini-batch (the container reads SageMaker's own variables)."""
    return {
        batch_transform.RESPONSE_SIZE_ENV: str(RESPONSE_BYTES),
        batch_transform.MODEL_SERVER_TIMEOUT_ENV: str(INVOCATION_TIMEOUT_SECONDS),
    }


def transform_job_request(spec: JobSpec) -> dict[str, Any]:
    """The CreateTransformJob request for `spec` (checked first)."""
    check_spec(spec)
    return {
        "TransformJobName": spec.job_name,
        "ModelName": spec.model_name,
        "MaxConcurrentTransforms": spec.concurrency_per_instance,
        "MaxPayloadInMB": spec.max_payload_mb,
        "BatchStrategy": "MultiRecord",
        "ModelClientConfig": {
            "InvocationsTimeoutInSeconds": INVOCATION_TIMEOUT_SECONDS,
            "InvocationsMaxRetries": INVOCATION_RETRIES,
        },
        "Environment": job_environment(),
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": spec.input_url}},
            "ContentType": JSONLINES_CONTENT_TYPE,
            "CompressionType": "None",
            "SplitType": "Line",
        },
        "TransformOutput": {
            "S3OutputPath": spec.output_url,
            "Accept": JSONLINES_CONTENT_TYPE,
            "AssembleWith": "Line",
        },
        "TransformResources": {
            "InstanceType": spec.instance_type,
            "InstanceCount": spec.instance_count,
        },
        "DataProcessing": {
            "InputFilter": input_filter(spec),
            "JoinSource": "Input",
            "OutputFilter": output_filter(spec),
        },
    }


def job_name_for(prefix: str, now: float | None = None) -> str:
    """The prefix (the stack's, which its role may log under) and the start time."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    return f"{prefix}{stamp}"


def check_within(url: str, allowed: str, what: str) -> None:
    """Refuse a folder outside the one the stack's role was granted."""
    if not url.startswith(allowed):
        raise BatchUsageError(
            f"{what} {url} is outside the stack's {allowed}: the job's role may only use that "
            "folder (stack config batchInputPrefix/batchOutputPrefix; docs/bulk.md)"
        )
