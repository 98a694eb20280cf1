"""SageMaker Batch Transform: what the platform tells a container, and the model server's caps.

Shipped in `code/facts/`: the container sizes its limits from these variables and `embed batch`
sets them (docs/bulk.md: SAGEMAKER_BATCH, SAGEMAKER_MAX_PAYLOAD_IN_MB, MMS_* overrides).
"""

BATCH_ENV = "SAGEMAKER_BATCH"
MAX_PAYLOAD_ENV = "SAGEMAKER_MAX_PAYLOAD_IN_MB"
MIB = 1024 * 1024
RESPONSE_SIZE_ENV = "MMS_MAX_RESPONSE_SIZE"
DEFAULT_RESPONSE_BYTES = 6_553_500
# MMS parses its sizes as a Java int.
MAX_RESPONSE_BYTES = 2**31 - 1
MODEL_SERVER_TIMEOUT_ENV = "SAGEMAKER_MODEL_SERVER_TIMEOUT"

# CreateTransformJob bounds (botocore's service model and the API reference).
MAX_PAYLOAD_MB_LIMIT = 100
MAX_ENVIRONMENT_ENTRIES = 16
MAX_INVOCATION_TIMEOUT_SECONDS = 3600
MAX_FILTER_LENGTH = 63
# The joined record's key for the container's answer (DataProcessing.JoinSource=Input), and for
# the input when the input record is not a JSON object.
OUTPUT_KEY = "SageMakerOutput"
INPUT_KEY = "SageMakerInput"
