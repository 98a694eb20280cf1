"""What SageMaker names after an endpoint, and what this project records on the endpoint's Model.

Read by the program, the deploy check and the container, so each name is written down once.
"""

from __future__ import annotations

from typing import Any

# The one production variant of every endpoint this project declares (serverless allows one).
VARIANT_NAME = "AllTraffic"
# The Model's environment names the served model (the container's responses and logs name it).
MODEL_ID_VARIABLE = "EMBEDDING_MODEL_ID"
MODEL_REVISION_VARIABLE = "EMBEDDING_MODEL_REVISION"
# The Model's environment records the sha256 of the archive it serves under this name; the DLC
# ignores it. The deploy check compares it with the archive the deploy packaged.
ARTIFACT_SHA256_VARIABLE = "EMBEDDING_ARTIFACT_SHA256"
# Stack settings the Model's environment hands to code/inference.py (which reads this file from
# code/facts/): the prompt applied when a request names none, and a cap on tokens per text.
DEFAULT_PROMPT_VARIABLE = "EMBEDDING_DEFAULT_PROMPT_NAME"
MAX_SEQ_LENGTH_VARIABLE = "EMBEDDING_MAX_SEQ_LENGTH"
# The other variables the container reads (container/sentence_embedding/environment.py):
# overrides of the engine, the intra-op threads, texts per request and seconds per request.
ENGINE_VARIABLE = "EMBEDDING_ENGINE"
NUM_THREADS_VARIABLE = "EMBEDDING_NUM_THREADS"
MAX_BATCH_SIZE_VARIABLE = "EMBEDDING_MAX_BATCH_SIZE"
MAX_REQUEST_SECONDS_VARIABLE = "EMBEDDING_MAX_REQUEST_SECONDS"
# DescribeEndpoint statuses that change by themselves; any other status is where it stays.
TRANSITIONAL_STATUSES = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")
IN_SERVICE = "InService"
FAILED = "Failed"


def endpoint_log_group(endpoint_name: str) -> str:
    """The CloudWatch Logs group SageMaker writes an endpoint's container logs to."""
    return f"/aws/sagemaker/Endpoints/{endpoint_name}"


def not_found(error: Exception) -> bool:
    """True for SageMaker's answer to a Describe* of an endpoint, config or model that is gone."""
    details = getattr(error, "response", None) or {}
    return "Could not find" in str(details.get("Error", {}).get("Message", ""))


def describe_endpoint(client: Any, name: str) -> Any:
    """DescribeEndpoint, or None when no endpoint of that name exists."""
    try:
        return client.describe_endpoint(EndpointName=name)
    except Exception as error:
        if not_found(error):
            return None
        raise
