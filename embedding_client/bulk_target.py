"""What `embed file` sends to: a backend built for one request per call, its limits (the endpoint's
`{"info": true}` answer), its concurrency (MaxConcurrency unless `--concurrency`) and prices.
Base64 vectors where the endpoint takes them: the same float32s in a third of the bytes.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from embedding_client.backend import (
    EmbeddingBackend,
    EmbeddingClientError,
    EndpointError,
    InputTooLargeError,
    TargetError,
)
from embedding_client.backend_bedrock import BedrockBackend
from embedding_client.backend_local import HttpBackend
from embedding_client.backend_sagemaker import SageMakerBackend
from embedding_client.batching import endpoint_batch_size
from embedding_client.bulk_batches import Limits
from embedding_client.bulk_output import Signature, recorded_options
from embedding_client.bulk_pacing import DEFAULT_TOKEN_BUDGET, RetryPolicy
from embedding_client.bulk_progress import Pricing
from embedding_client.transport import aws_client
from facts import bedrock_formats, pricing
from facts.embedding_api import EmbeddingOptions
from facts.serverless import MAX_PAYLOAD_BYTES as SAGEMAKER_MAX_BODY_BYTES

# In flight at once when the target states no limit of its own.
LOCAL_CONCURRENCY = 2  # the local endpoint serves one request at a time; one more hides latency
BEDROCK_CONCURRENCY = 8  # Bedrock's quotas are per minute; throttling halves this as needed
SAGEMAKER_FALLBACK_CONCURRENCY = 4  # when the endpoint's configuration cannot be read


class OptionError(EmbeddingClientError):
    """An option the model cannot honour (`--dimensions`, `--prompt-name`); nothing was sent."""


@dataclass(frozen=True)
class ServerlessConfig:
    max_concurrency: int
    memory_mb: int


@dataclass(frozen=True)
class BulkTarget:
    """A backend with one attempt per call, and how hard `embed file` may drive it."""

    backend: EmbeddingBackend
    label: str
    options: EmbeddingOptions
    limits: Limits
    concurrency: int
    concurrency_source: str
    pricing: Pricing | None
    notes: tuple[str, ...] = ()
    # What the endpoint says every vector of this run will be (None: not stated, e.g. Bedrock).
    signature: Signature | None = None


@dataclass(frozen=True)
class PriceOverrides:
    per_gb_second: float | None = None
    per_1k_tokens: float | None = None


def serverless_config(
    endpoint_name: str, region: str | None, session: object = None
) -> ServerlessConfig:
    """The endpoint's MaxConcurrency and memory: DescribeEndpoint → DescribeEndpointConfig."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client = aws_client("sagemaker", region, session=session)
        config_name = client.describe_endpoint(EndpointName=endpoint_name)["EndpointConfigName"]
        variants = client.describe_endpoint_config(EndpointConfigName=config_name)[
            "ProductionVariants"
        ]
    except (BotoCoreError, ClientError) as error:
        raise TargetError(
            f"cannot read the configuration of endpoint {endpoint_name}: {error}"
        ) from None
    serverless = (variants[0] if variants else {}).get("ServerlessConfig")
    if not serverless:
        raise TargetError(f"endpoint {endpoint_name} has no ServerlessConfig (not serverless)")
    return ServerlessConfig(int(serverless["MaxConcurrency"]), int(serverless["MemorySizeInMB"]))


def refuse_options_the_model_lacks(info: dict, options: EmbeddingOptions) -> None:
    """--dimensions and --prompt-name checked once, before the corpus is sent: refused per request,
    each batch would split down to single documents.
    """
    model, dimensions = info.get("model") or "the model", info.get("dimensions")
    if options.dimensions is not None and isinstance(dimensions, int):
        if not 1 <= options.dimensions <= dimensions:
            raise OptionError(
                f"--dimensions {options.dimensions}: {model} gives 1 to {dimensions} dimensions"
            )
    prompts = info.get("prompts") or {}
    if options.prompt_name is not None and options.prompt is None:
        if options.prompt_name not in prompts:
            offered = ", ".join(sorted(prompts)) or "none"
            raise OptionError(
                f"--prompt-name {options.prompt_name!r}: the prompts of {model} are {offered} "
                "(or pass a literal --prompt)"
            )


def endpoint_info(
    backend: HttpBackend | SageMakerBackend,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict | None:
    """The endpoint's info, asked again while it throttles or is still scaling up from zero
    (ModelNotReadyException): a cold serverless endpoint's first request meets exactly that."""
    retry = retry or RetryPolicy()
    for attempt in itertools.count():
        try:
            return backend.info()
        except EndpointError as error:
            if not error.is_throttling or attempt + 1 >= retry.max_throttled:
                raise
            sleep(retry.backoff.delay(attempt))
    raise AssertionError("unreachable")


def run_signature(info: dict | None, options: EmbeddingOptions) -> Signature | None:
    """The model and size of this run's vectors, as the endpoint states them, and its options."""
    if not info or not isinstance(info.get("dimensions"), int) or not info.get("model"):
        return None
    dimensions = options.dimensions or info["dimensions"]
    return Signature(str(info["model"]), dimensions, recorded_options(options))


def _endpoint_limits(
    backend: HttpBackend | SageMakerBackend, options: EmbeddingOptions, max_tokens: int | None
) -> tuple[EmbeddingOptions, Limits, list[str], dict | None]:
    info = endpoint_info(backend)
    notes = []
    if info is None:
        notes.append("the endpoint answers no info request (an older artifact): 32 texts/request")
    else:
        refuse_options_the_model_lacks(info, options)
        options = replace(options, encoding_format="base64")
    limits = Limits(
        max_texts=endpoint_batch_size(info, options),
        max_body_bytes=int((info or {}).get("max_request_bytes") or SAGEMAKER_MAX_BODY_BYTES),
        max_sequence_length=(info or {}).get("max_sequence_length"),
        token_budget=max_tokens,
    )
    return options, limits, notes, info


def bulk_target(
    backend: EmbeddingBackend,
    options: EmbeddingOptions,
    *,
    concurrency: int | None = None,
    max_tokens: int | None = None,
    prices: PriceOverrides = PriceOverrides(),
) -> BulkTarget:
    """Limits, concurrency and pricing for `backend`; asks the endpoint what it can take."""
    if isinstance(backend, HttpBackend):
        # A fixed token budget: the local endpoint has no 60 s invocation limit to keep inside,
        # and it serves one request at a time, so latency there measures queueing, not size.
        options, limits, notes, info = _endpoint_limits(
            backend, options, max_tokens or DEFAULT_TOKEN_BUDGET
        )
        return BulkTarget(
            backend=replace(backend, batch_size=limits.max_texts, max_attempts=1),
            label=f"local endpoint {backend.url}",
            options=options,
            limits=limits,
            concurrency=concurrency or LOCAL_CONCURRENCY,
            concurrency_source="--concurrency" if concurrency else "default for a local endpoint",
            pricing=None,
            notes=tuple(notes),
            signature=run_signature(info, options),
        )
    if isinstance(backend, SageMakerBackend):
        options, limits, notes, info = _endpoint_limits(backend, options, max_tokens)
        config: ServerlessConfig | None = None
        try:
            config = serverless_config(backend.endpoint_name, backend.region, backend.session)
        except TargetError as error:
            notes.append(f"{error}; no MaxConcurrency or memory size to go by")
        if concurrency:
            chosen, source = concurrency, "--concurrency"
        elif config is not None:
            chosen, source = config.max_concurrency, "the endpoint's MaxConcurrency"
        else:
            chosen, source = SAGEMAKER_FALLBACK_CONCURRENCY, "a fallback"
        cost = None
        if config is not None:
            cost = Pricing(
                "serverless",
                memory_mb=config.memory_mb,
                per_gb_second=prices.per_gb_second or pricing.SERVERLESS_PER_GB_SECOND,
                overridden=prices.per_gb_second is not None,
            )
        return BulkTarget(
            backend=replace(backend, batch_size=limits.max_texts, max_attempts=1),
            label=backend.target,
            options=options,
            limits=limits,
            concurrency=chosen,
            concurrency_source=source,
            pricing=cost,
            notes=tuple(notes),
            signature=run_signature(info, options),
        )
    if isinstance(backend, BedrockBackend):
        try:
            model = bedrock_formats.model_format(backend.model_id)
            bedrock_formats.check_options(model, options)
        except bedrock_formats.BedrockRequestError as error:
            raise InputTooLargeError(str(error)) from None
        price = prices.per_1k_tokens or pricing.BEDROCK_PER_1K_TOKENS.get(backend.model_id)
        return BulkTarget(
            backend=replace(backend, max_attempts=1),
            label=f"Bedrock model {backend.model_id}",
            options=options,
            limits=Limits(model.max_texts_per_call, None, None, max_tokens),
            concurrency=concurrency or BEDROCK_CONCURRENCY,
            concurrency_source="--concurrency" if concurrency else "the default for Bedrock",
            pricing=Pricing(
                "bedrock", per_1k_tokens=price, overridden=prices.per_1k_tokens is not None
            )
            if price
            else None,
        )
    raise TargetError(
        "embed file sends to --stack, --outputs-file, --endpoint, --url or --bedrock targets"
    )
