"""The stack's names the world reads: its config namespace and its outputs.

The program declares both; `scripts/promote.py` reads the outputs and writes config keys, and the
client reads the outputs to find what the stack deployed.
"""

from __future__ import annotations

# The project's name: the namespace of every config key (`embedding-endpoint:modelId`).
CONFIG_NAMESPACE = "embedding-endpoint"

BACKEND = "backend"
REGION = "region"
# backend sagemaker
ENDPOINT_NAME = "endpointName"
ENDPOINT_ARN = "endpointArn"
ENDPOINT_CONFIG_NAME = "endpointConfigName"
MODEL_NAME = "modelName"
IMAGE_URI = "imageUri"
BUCKET_NAME = "bucketName"
MODEL_DATA_URL = "modelDataUrl"
MODEL_ID = "modelId"
MODEL_REVISION = "modelRevision"
ARTIFACT_SHA256 = "artifactSha256"
INFERENCE_ENGINE = "inferenceEngine"
SMOKE_TEST_COMMAND = "smokeTestCommand"
SAGEMAKER_RUNTIME_URL = "sagemakerRuntimeUrl"
WARNINGS = "warnings"
# Batch Transform access (batchInputPrefix / batchOutputPrefix set)
BATCH_INPUT_PREFIX = "batchInputPrefix"
BATCH_OUTPUT_PREFIX = "batchOutputPrefix"
BATCH_JOB_PREFIX = "batchJobPrefix"
# backend bedrock
BEDROCK_MODEL_ID = "bedrockModelId"
BEDROCK_MODEL_ARN = "bedrockModelArn"
BEDROCK_INVOKE_POLICY_ARN = "bedrockInvokePolicyArn"
# httpApi true
HTTP_API_URL = "httpApiUrl"
HTTP_API_OPENAI_BASE_URL = "httpApiOpenAiBaseUrl"
HTTP_API_INVOKE_POLICY_ARN = "httpApiInvokePolicyArn"
HTTP_API_KEY = "httpApiKey"
HTTP_API_KEY_SECRET_ARN = "httpApiKeySecretArn"
