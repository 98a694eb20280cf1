"""SageMaker Batch Transform: what the platform tells a container, and the model server's caps.

Shipped in `code/facts/` (standard library only, Python 3.9-compatible): the container reads
these variables to size its limits inside a transform job, and `embed batch` sets the ones a job
may set, so the two never disagree about a name.

Inside a transform job SageMaker sets `SAGEMAKER_BATCH=true` and `SAGEMAKER_MAX_PAYLOAD_IN_MB`
(the job's MaxPayloadInMB; the inference toolkit reads it as MiB and gives it to the model server
as its request cap). The HF DLC's model server (MMS) runs with `enable_envvars_config=true`, so
`MMS_*` variables override its config: `MMS_MAX_RESPONSE_SIZE` is the one response cap (default
6,553,500 bytes). The toolkit turns `SAGEMAKER_MODEL_SERVER_TIMEOUT` into MMS's
`default_response_timeout` (default 60).
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
