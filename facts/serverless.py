"""SageMaker Serverless Inference limits (API `ProductionVariantServerlessConfig`, service quotas).

Read by the stack config, the endpoint, the container (in `code/facts/`) and the clients.
"""

MEMORY_SIZES_MB = (1024, 2048, 3072, 4096, 5120, 6144)
# MaxConcurrency, and ProvisionedConcurrency (which must also be <= MaxConcurrency).
CONCURRENCY_MIN = 1
CONCURRENCY_MAX = 200
# Request and response payloads: 4 MB, not 4 MiB.
MAX_PAYLOAD_BYTES = 4_000_000
# `/invocations` answers within 60 s or the caller gets a ModelError.
INVOCATION_TIMEOUT_SECONDS = 60
# The part of it a request's forward passes may take: the rest is the model server's, the
# response's and the network's.
COMPUTE_SECONDS = 55
