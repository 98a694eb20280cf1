"""The stack config's cross-field rules: each a small function of the values it relates.

Each key's own rule is its parser (declared on its field in components/config.py); these are the
rules that need two keys, or a key and the backend. Every error names a key, the value and what
is allowed; the engine rules (torch/onnx, onnxFile, onnxFusion) stay in components/config.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components import images
from components.config_keys import ConfigError, declared, invalid, qualified
from components.endpoint_monitoring import AlarmThresholds
from facts import bedrock_models, serverless

PROVISIONED_ALLOWED = (
    f"expected 0 (off) or an integer {serverless.CONCURRENCY_MIN}-{serverless.CONCURRENCY_MAX} "
    "and <= maxConcurrency"
)


def checked_region(region: str | None, backend: str) -> str:
    """`aws:region`: set, and for SageMaker one with a Hugging Face DLC registry."""
    if not region:
        raise ConfigError(
            "config key 'aws:region' is not set: run `pulumi config set aws:region <region>` "
            "(or export AWS_REGION)"
        )
    if backend == "sagemaker":
        problem = images.region_problem(region)
        if problem:
            raise ConfigError(f"config key 'aws:region' has invalid value {region!r}: {problem}")
    return region


# Keys only the SageMaker backend reads (the model it packages, the endpoint it sizes, checks and
# watches): set under `backend: bedrock` they would do nothing, and provisionedConcurrency would
# even warn of a bill that never comes. maxSeqLength, the batch prefixes and the other engine keys
# have their own refusals (below and in facts/engine_choice.py).
SAGEMAKER_ONLY_KEYS = (
    "modelId",
    "modelRevision",
    "memorySizeMb",
    "maxConcurrency",
    "provisionedConcurrency",
    "imageTag",
    "hfToken",
    "hfTokenSecretArn",
    "sourceModelDataUrl",
    "expectedArtifactSha256",
    "defaultPromptName",
    "allowPickledWeights",
    "inferenceEngine",
    "retainArtifacts",
    "packagingRunner",
    "smokeTest",
    "runtimeEndpointUrl",
    "alarmTopicArn",
    *(spec.name for _, spec in declared(AlarmThresholds)),
)
# The Hub keys: a stack that packages `sourceModelDataUrl` reads no Hub revision or token.
HUB_ONLY_KEYS = ("modelRevision", "hfToken", "hfTokenSecretArn")


def refuse_sagemaker_keys(backend: str, raw: Mapping[str, str]) -> None:
    """Under `backend: bedrock`, the first SageMaker-only key set away from its default is
    refused (`raw`: the keys so set)."""
    if backend != "bedrock":
        return
    for name in SAGEMAKER_ONLY_KEYS:
        if raw.get(name) not in (None, ""):
            raise invalid(
                name,
                raw[name],
                "a SageMaker key, and this stack's backend is bedrock (it names its model in "
                "bedrockModelId): unset it, or set backend: sagemaker",
            )


_NOT_BEDROCK = (
    "a Bedrock key, and this stack's backend is sagemaker (it names its model in modelId): "
    "unset it, or set backend: bedrock"
)
_NO_HTTP_API = (
    "it chooses the HTTP API's auth, and httpApi is not true: unset it, or set httpApi: true"
)
_SOURCE_ARCHIVE = (
    "a Hub key, and sourceModelDataUrl packages that S3 archive instead of a Hub revision: "
    "unset it, or unset sourceModelDataUrl"
)


def refuse_unread_keys(raw: Mapping[str, str], values: Mapping[str, Any]) -> None:
    """A key that another setting leaves unread, set away from its default (`raw`: the keys so
    set), is refused, naming that setting.

    bedrockModelId without `backend: bedrock`, httpApiAuth without `httpApi: true`, and the Hub
    keys beside sourceModelDataUrl would do nothing, silently.
    """
    unread = [("bedrockModelId", values["backend"] != "bedrock", _NOT_BEDROCK)]
    unread.append(("httpApiAuth", not values["http_api"], _NO_HTTP_API))
    source = bool(values["source_model_data_url"])
    unread.extend((name, source, _SOURCE_ARCHIVE) for name in HUB_ONLY_KEYS)
    for name, is_unread, why in unread:
        if is_unread and raw.get(name) not in (None, ""):
            raise invalid(name, raw[name], why)


def require_model_id(backend: str, model_id: str | None) -> None:
    """modelId is required on the SageMaker backend (Bedrock names its model in bedrockModelId)."""
    if backend == "sagemaker" and model_id is None:
        raise ConfigError(
            f"config key '{qualified('modelId')}' is required: a Hugging Face Hub repo id such as "
            "'sentence-transformers/all-MiniLM-L6-v2'"
        )


def provisioned_warnings(provisioned: int, max_concurrency: int, memory_mb: int) -> list[str]:
    """provisionedConcurrency: 0 or within the serverless range and <= maxConcurrency; it bills."""
    low, high = serverless.CONCURRENCY_MIN, serverless.CONCURRENCY_MAX
    if provisioned != 0 and not (low <= provisioned <= high and provisioned <= max_concurrency):
        raise invalid(
            "provisionedConcurrency", provisioned, f"{PROVISIONED_ALLOWED} ({max_concurrency})"
        )
    if not provisioned:
        return []
    return [
        f"provisionedConcurrency={provisioned} keeps {provisioned} warm instance(s) of "
        f"{memory_mb} MB billed around the clock, even with no traffic"
    ]


# The stack `make up` deploys to the emulator. Its passphrase is public (scripts/local_env.sh
# defaults it, and the salt it adds to Pulumi.local.yaml may be committed).
LOCAL_STACK = "local"


def refuse_local_secrets(hf_token: object, stack: str) -> None:
    """A secret on the local stack is readable by anyone with the repository: refused."""
    if stack == LOCAL_STACK and hf_token:
        raise ConfigError(
            f"config key '{qualified('hfToken')}' is set on the '{LOCAL_STACK}' stack, whose "
            "passphrase is public (default `local-stack-only`): anyone with this repository can "
            "decrypt it from Pulumi.local.yaml. Remove it (`pulumi config rm -s local hfToken`), "
            "revoke the token on the Hub, and use the local stack with public models; private "
            "or gated models go to a dev stack with a passphrase or backend of your own"
        )


def check_token_sources(hf_token: object, token_secret_arn: str | None) -> None:
    """hfToken and hfTokenSecretArn are two ways to give the same token: not both."""
    if token_secret_arn is not None and hf_token:
        raise invalid(
            "hfTokenSecretArn",
            token_secret_arn,
            f"set either '{qualified('hfToken')}' (secret config) or "
            f"'{qualified('hfTokenSecretArn')}', not both",
        )


def check_bedrock_model(backend: str, model_id: str) -> None:
    """bedrockModelId: one of the Bedrock model table's, when the backend is Bedrock."""
    if backend == "bedrock":
        problem = bedrock_models.model_problem(model_id)
        if problem:
            raise invalid("bedrockModelId", model_id, problem)


def check_max_seq_length(backend: str, value: int | None) -> None:
    """maxSeqLength caps the container's tokenizer: SageMaker only (Bedrock has its own)."""
    if value is not None and backend != "sagemaker":
        raise invalid(
            "maxSeqLength", value, "the token cap needs backend sagemaker (Bedrock's own)"
        )


def check_batch_prefixes(backend: str, source: str | None, target: str | None) -> None:
    """batchInputPrefix and batchOutputPrefix: both or neither, separate folders, SageMaker only."""
    if (source is None) != (target is None):
        missing = "batchOutputPrefix" if target is None else "batchInputPrefix"
        raise ConfigError(
            f"config key '{qualified(missing)}' is required with "
            f"'{qualified('batchInputPrefix' if target is None else 'batchOutputPrefix')}': "
            "Batch Transform reads one folder and writes another"
        )
    if source is not None and target is not None:
        if backend != "sagemaker":
            raise invalid("batchInputPrefix", source, "Batch Transform needs backend sagemaker")
        if source.startswith(target) or target.startswith(source):
            raise invalid(
                "batchOutputPrefix",
                target,
                f"expected a folder outside batchInputPrefix {source!r} and not containing it "
                "(a job would read its own output)",
            )
