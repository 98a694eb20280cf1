"""How large one request and one response may be, on the platform the container runs on.

On a serverless endpoint both are 4 MB (facts/serverless.py). In a Batch Transform job
SageMaker sizes the mini-batches itself (MaxPayloadInMB, given to the container as
SAGEMAKER_MAX_PAYLOAD_IN_MB) and the model server caps a response at MMS_MAX_RESPONSE_SIZE
(facts/batch_transform.py). A MultiRecord mini-batch of short lines holds thousands of records,
which the serverless endpoint's 4 MB response bound would refuse.
"""

from __future__ import annotations

import os

from facts import batch_transform
from facts.serverless import MAX_PAYLOAD_BYTES


def in_batch_transform() -> bool:
    """True inside a SageMaker Batch Transform job (SageMaker sets SAGEMAKER_BATCH=true)."""
    return os.environ.get(batch_transform.BATCH_ENV, "").strip().lower() == "true"


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        value = int(raw)
    except ValueError:
        return default
    return value if value > 0 else default


def request_limit_bytes() -> int:
    """The largest request body served: the job's MaxPayloadInMB in a transform job, else 4 MB."""
    if not in_batch_transform():
        return MAX_PAYLOAD_BYTES
    megabytes = _positive_int(batch_transform.MAX_PAYLOAD_ENV, 0)
    if megabytes == 0:  # MaxPayloadInMB=0: chunked; the model server's own cap applies
        return batch_transform.MAX_RESPONSE_BYTES
    return megabytes * batch_transform.MIB


def response_limit_bytes() -> int:
    """The largest response answered: the model server's cap in a transform job, else 4 MB."""
    if not in_batch_transform():
        return MAX_PAYLOAD_BYTES
    return min(
        _positive_int(batch_transform.RESPONSE_SIZE_ENV, batch_transform.DEFAULT_RESPONSE_BYTES),
        batch_transform.MAX_RESPONSE_BYTES,
    )
