"""Clients for every place the embeddings can come from, behind one `EmbeddingBackend` protocol.

- `HttpBackend(url)`: the local endpoint (`python -m embedding_client serve`), POST /invocations.
- `SageMakerBackend(endpoint_name, region)`: the deployed serverless endpoint (sagemaker-runtime).
- `BedrockBackend(model_id, region)`: Amazon Bedrock embedding models, each in its own shape.
- `HttpApiBackend(url, region)`: the optional IAM-authorized HTTP API (SigV4, execute-api).

Each `embed(texts, options)` takes the embedding API's options (facts/embedding_api.py: normalize,
truncate, prompts, dimensions, encoding). Long inputs are split into requests under each target's
payload and per-request text limits (for an endpoint, the limits it states in answer to an info
request); throttling is retried with backoff (botocore's adaptive retry mode for AWS APIs); errors
from the endpoint are raised as `EndpointError` with the endpoint's own message, unchanged.
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from facts import bedrock_formats
from facts import stack as stack_facts
from facts.embedding_api import EmbeddingOptions, ResponseError, read_response
from facts.http_api import MAX_BODY_BYTES as HTTP_API_MAX_BODY_BYTES
from facts.http_api import MAX_INPUTS as HTTP_API_MAX_TEXTS
from facts.serverless import MAX_PAYLOAD_BYTES as SAGEMAKER_MAX_BODY_BYTES

CONTENT_TYPE = "application/json"
# Texts per request when the endpoint states no limit (an older artifact without info requests).
DEFAULT_BATCH_SIZE = 32
# At most this many texts per request even when the endpoint takes more: each request must also
# finish within SageMaker's 60 s invocation timeout on a few vCPUs.
MAX_AUTO_BATCH_SIZE = 256
MAX_ATTEMPTS = 8
# 60 s invocation limit plus a cold start's queueing; the SDK default of 60 s would cut it off.
READ_TIMEOUT_SECONDS = 90
RETRYABLE_STATUS = (429, 502, 503, 504)
THROTTLING_CODES = ("ThrottlingException", "Throttling", "TooManyRequestsException")
# Answers that mean "send less, later": throttling, and a serverless endpoint still scaling up.
RETRY_LATER_CODES = (*THROTTLING_CODES, "ModelNotReadyException")
# 4xx statuses that refuse the caller or the address, whatever the request holds.
TARGET_STATUSES = (401, 403, 404, 405, 407)


@dataclass(frozen=True)
class EmbeddingResult:
    """One vector per input text, in input order; the tokens the model read, when it says."""

    vectors: list[list[float]]
    dimensions: int
    model: str
    prompt_tokens: int | None = None


DEFAULT_OPTIONS = EmbeddingOptions(normalize=True)


class EmbeddingBackend(Protocol):
    def embed(
        self, texts: list[str], options: EmbeddingOptions = DEFAULT_OPTIONS
    ) -> EmbeddingResult:
        """Vectors for `texts` with the embedding API's `options`."""
        ...


class EmbeddingClientError(Exception):
    """Base class: anything the `embed` command reports instead of a traceback."""


class InputTooLargeError(EmbeddingClientError):
    """A single text cannot fit one request to this target."""


class TargetError(EmbeddingClientError):
    """The target cannot be resolved (missing stack outputs, unknown backend, no credentials)."""


class EndpointError(EmbeddingClientError):
    """The endpoint or service answered with an error; `message` is its text, verbatim."""

    def __init__(
        self,
        target: str,
        status: int | None,
        message: str,
        code: str = "",
        *,
        from_model: bool = True,
    ) -> None:
        self.target = target
        self.status = status
        self.code = code
        self.message = message
        # False: the service in front of the model answered (SageMaker's own 4xx: no such
        # endpoint, credentials), so no input would fare better.
        self.from_model = from_model
        if status is None:
            super().__init__(f"{target}: {message}")
        else:
            super().__init__(
                f"{target} answered HTTP {status}{f' {code}' if code else ''}: {message}"
            )

    @property
    def is_throttling(self) -> bool:
        """The target asks for fewer requests (throttling, 429, a model still scaling up)."""
        return self.code in RETRY_LATER_CODES or self.status == 429

    @property
    def is_client_error(self) -> bool:
        """The request was refused (4xx, not throttling): sending it again will not help."""
        if self.is_throttling:
            return False
        return self.status is not None and 400 <= self.status < 500

    @property
    def refuses_the_input(self) -> bool:
        """A 4xx about these inputs: other inputs may pass. Not auth, not a wrong target."""
        return self.is_client_error and self.from_model and self.status not in TARGET_STATUSES


class ResponseFormatError(EmbeddingClientError):
    """The target answered 2xx with a body that is not `{"embeddings", "model", "dimensions"}`."""


# ---------------------------------------------------------------------------------------------
# Batching and responses (pure)


def request_body(texts: Sequence[str], options: EmbeddingOptions = DEFAULT_OPTIONS) -> bytes:
    """The native request: `{"inputs": [...], "parameters": {...}}` (only options that are set)."""
    document: dict[str, Any] = {"inputs": list(texts)}
    parameters = options.as_parameters()
    if parameters:
        document["parameters"] = parameters
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def plan_batches(
    texts: Sequence[str],
    *,
    max_texts: int,
    max_body_bytes: int,
    options: EmbeddingOptions = DEFAULT_OPTIONS,
) -> list[list[str]]:
    """Consecutive groups of texts whose request bodies fit `max_body_bytes` and `max_texts`."""
    if max_texts < 1:
        raise ValueError(f"max_texts must be at least 1, got {max_texts}")
    envelope = len(request_body([], options))
    batches: list[list[str]] = []
    current: list[str] = []
    size = envelope
    for index, text in enumerate(texts):
        encoded = len(json.dumps(text, ensure_ascii=False).encode("utf-8")) + 1  # and a comma
        if envelope + encoded > max_body_bytes:
            raise InputTooLargeError(
                f"text {index} is {len(text.encode('utf-8'))} bytes; one request to this target "
                f"holds at most {max_body_bytes} bytes: split the text"
            )
        if current and (len(current) >= max_texts or size + encoded > max_body_bytes):
            batches.append(current)
            current, size = [], envelope
        current.append(text)
        size += encoded
    if current:
        batches.append(current)
    return batches


def parse_embeddings(raw: bytes | str, expected: int, target: str) -> EmbeddingResult:
    """Check and decode a native or OpenAI response (float or base64) for `expected` texts."""
    try:
        document = json.loads(raw)
    except ValueError as error:
        raise ResponseFormatError(
            f"{target} answered with a body that is not JSON: {error}"
        ) from None
    try:
        response = read_response(document, expected)
    except ResponseError as error:
        raise ResponseFormatError(f"{target}: {error}") from None
    return EmbeddingResult(
        response.vectors, response.dimensions, response.model, response.prompt_tokens
    )


def merge_results(parts: Sequence[EmbeddingResult], target: str) -> EmbeddingResult:
    """One result from the results of consecutive batches."""
    dimensions = {part.dimensions for part in parts}
    if len(dimensions) != 1:
        raise ResponseFormatError(f"{target} returned different dimensions across batches")
    tokens = [part.prompt_tokens for part in parts]
    return EmbeddingResult(
        vectors=[vector for part in parts for vector in part.vectors],
        dimensions=parts[0].dimensions,
        model=parts[0].model,
        prompt_tokens=None if None in tokens else sum(tokens),  # type: ignore[arg-type]
    )


def embed_in_batches(
    texts: Sequence[str],
    options: EmbeddingOptions,
    *,
    max_texts: int,
    max_body_bytes: int,
    send: Callable[[bytes], bytes],
    target: str,
) -> EmbeddingResult:
    """Send the texts in planned batches through `send(body) -> answer`; one merged result."""
    _check_texts(texts)
    parts = [
        parse_embeddings(send(request_body(batch, options)), len(batch), target)
        for batch in plan_batches(
            texts, max_texts=max_texts, max_body_bytes=max_body_bytes, options=options
        )
    ]
    return merge_results(parts, target)


def endpoint_batch_size(
    requested: int | None, info: Mapping[str, Any] | None, options: EmbeddingOptions
) -> int:
    """Texts per request: the caller's number, else what the endpoint states (capped), else 32."""
    if requested is not None:
        return requested
    limits = (info or {}).get("max_texts_per_request") or {}
    stated = limits.get(options.encoding_format)
    if isinstance(stated, int) and stated > 0:
        return min(stated, MAX_AUTO_BATCH_SIZE)
    return DEFAULT_BATCH_SIZE


INFO_REQUEST = b'{"info":true}'


def cached_info(cache: dict[str, Any], send: Callable[[bytes], bytes]) -> dict[str, Any] | None:
    """The endpoint's info, asked once per backend (None when it refuses the request as unknown)."""
    if "answer" not in cache:
        try:
            cache["answer"] = read_info(send(INFO_REQUEST))
        except EndpointError as error:
            if not error.refuses_the_input:
                raise
            cache["answer"] = None
    return cache["answer"]


def read_info(raw: bytes) -> dict[str, Any] | None:
    """An endpoint's answer to `{"info": true}`, or None when it is not one (an older artifact)."""
    try:
        document = json.loads(raw)
    except ValueError:
        return None
    return document if isinstance(document, dict) and "max_texts_per_request" in document else None


def _check_texts(texts: Sequence[str]) -> None:
    if not texts:
        raise InputTooLargeError("no texts to embed")


# ---------------------------------------------------------------------------------------------
# Plain HTTP (local endpoint, HTTP API)


def backoff_delays(attempts: int, base: float = 0.5, cap: float = 20.0) -> list[float]:
    """Full-jitter exponential backoff delays between `attempts` tries."""
    return [random.uniform(0, min(cap, base * 2**n)) for n in range(attempts - 1)]


def _error_message(body: bytes) -> str:
    """The `message` of a JSON error body when there is one, else the body as text."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        document = json.loads(text)
    except ValueError:
        return text
    if isinstance(document, dict) and isinstance(document.get("message"), str):
        return document["message"]
    return text


def post_with_retries(
    request_factory: Callable[[], urllib.request.Request],
    target: str,
    *,
    attempts: int = MAX_ATTEMPTS,
    timeout: float = READ_TIMEOUT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> bytes:
    """POST, retrying 429/502/503/504 with jittered backoff; other errors raise at once."""
    delays = backoff_delays(attempts)
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(request_factory(), timeout=timeout) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            body = error.read()
            if error.code not in RETRYABLE_STATUS or attempt == attempts - 1:
                raise EndpointError(target, error.code, _error_message(body)) from None
        except TimeoutError:
            raise EndpointError(target, None, f"no answer within {timeout:g} s") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise EndpointError(target, None, f"cannot connect: {reason}") from None
        sleep(delays[attempt])
    raise AssertionError("unreachable")


class ProjectEndpointBackend(ABC):
    """What an endpoint serving this project's container offers: `info`, and `embed` in batches.

    Its subclasses say how one request body is sent (`sender`) and name the target; batches are
    as the caller says (`batch_size`), else as the endpoint states in its info answer, which is
    asked for only when the texts do not fit one default batch.
    """

    batch_size: int | None
    _info: dict[str, Any]

    @property
    @abstractmethod
    def target(self) -> str:
        """The endpoint as error messages name it."""

    @abstractmethod
    def sender(self) -> Callable[[bytes], bytes]:
        """Sends one request body, returns the response body."""

    def info(self) -> dict[str, Any] | None:
        """What the endpoint serves and its per-request limits (None for an older artifact)."""
        return cached_info(self._info, self.sender())

    def embed(
        self, texts: list[str], options: EmbeddingOptions = DEFAULT_OPTIONS
    ) -> EmbeddingResult:
        _check_texts(texts)
        batch_size = self.batch_size
        if batch_size is None and len(texts) > DEFAULT_BATCH_SIZE:
            batch_size = endpoint_batch_size(None, self.info(), options)
        return embed_in_batches(
            texts,
            options,
            max_texts=batch_size or DEFAULT_BATCH_SIZE,
            max_body_bytes=SAGEMAKER_MAX_BODY_BYTES,
            send=self.sender(),
            target=self.target,
        )


@dataclass(frozen=True)
class HttpBackend(ProjectEndpointBackend):
    """The local endpoint (or any server with SageMaker's container contract)."""

    url: str
    # None: as many texts per request as the endpoint states (see `endpoint_batch_size`).
    batch_size: int | None = None
    timeout: float = READ_TIMEOUT_SECONDS
    max_attempts: int = MAX_ATTEMPTS
    _info: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def _post(self, body: bytes) -> bytes:
        invocations = self.url.rstrip("/") + "/invocations"

        def factory() -> urllib.request.Request:
            return urllib.request.Request(
                invocations,
                data=body,
                method="POST",
                headers={"Content-Type": CONTENT_TYPE, "Accept": CONTENT_TYPE},
            )

        return post_with_retries(
            factory, self.url, attempts=self.max_attempts, timeout=self.timeout
        )

    @property
    def target(self) -> str:
        return self.url

    def sender(self) -> Callable[[bytes], bytes]:
        return self._post


@dataclass(frozen=True)
class HttpApiBackend:
    """The stack's optional HTTP API: `POST {url}` signed with SigV4 for execute-api."""

    url: str
    region: str
    batch_size: int = DEFAULT_BATCH_SIZE

    def embed(
        self, texts: list[str], options: EmbeddingOptions = DEFAULT_OPTIONS
    ) -> EmbeddingResult:
        import boto3
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        _check_texts(texts)
        credentials = boto3.Session(region_name=self.region).get_credentials()
        if credentials is None:
            raise TargetError("no AWS credentials found to sign the HTTP API request")

        def send(body: bytes) -> bytes:
            def factory() -> urllib.request.Request:
                # Signed afresh on every attempt: a retried request needs a current timestamp.
                signed = AWSRequest(
                    method="POST", url=self.url, data=body, headers={"Content-Type": CONTENT_TYPE}
                )
                SigV4Auth(
                    credentials.get_frozen_credentials(), "execute-api", self.region
                ).add_auth(signed)
                return urllib.request.Request(
                    self.url, data=body, method="POST", headers=dict(signed.headers.items())
                )

            return post_with_retries(factory, self.url)

        return embed_in_batches(
            texts,
            options,
            max_texts=min(self.batch_size, HTTP_API_MAX_TEXTS),
            max_body_bytes=HTTP_API_MAX_BODY_BYTES,
            send=send,
            target=self.url,
        )


# ---------------------------------------------------------------------------------------------
# AWS APIs


def aws_client(
    service: str,
    region: str | None,
    endpoint_url: str | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    session: Any = None,
) -> Any:
    """A boto3 client with adaptive retries (throttling backs off client-side) and a long read.

    With `max_attempts=1` the caller paces itself (`embed file`), so no client-side rate limiter.
    """
    import boto3
    from botocore.config import Config

    config = Config(
        retries={
            "mode": "adaptive" if max_attempts > 1 else "standard",
            "total_max_attempts": max_attempts,
        },
        read_timeout=READ_TIMEOUT_SECONDS,
        connect_timeout=10,
    )
    # A session of its own unless given: credentials and region are read now, not cached.
    session = session or boto3.session.Session(region_name=region)
    return session.client(service, region_name=region, endpoint_url=endpoint_url, config=config)


def _botocore_failure(error: Exception, target: str) -> EmbeddingClientError:
    """No credentials or region: the target cannot be reached at all; else the call failed."""
    from botocore.exceptions import NoCredentialsError, NoRegionError, PartialCredentialsError

    if isinstance(error, (NoCredentialsError, PartialCredentialsError, NoRegionError)):
        return TargetError(f"{target}: {error} (configure AWS credentials, or pass --region)")
    return EndpointError(target, None, str(error))


def _client_error(error: Any, target: str, *, service_is_model: bool = False) -> EndpointError:
    """An EndpointError from a botocore ClientError, keeping the container's own message.

    SageMaker's own 4xx (not a ModelError) is about the call, not the texts; Bedrock's
    (`service_is_model`) can be about the texts.
    """
    response = error.response
    details = response.get("Error", {})
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = details.get("Code", "")
    if "OriginalStatusCode" in response or "OriginalMessage" in response:
        # ModelError: the container answered non-2xx; report what the container said.
        original_status = response.get("OriginalStatusCode", status)
        return EndpointError(target, original_status, response.get("OriginalMessage", ""), code)
    return EndpointError(
        target, status, details.get("Message", str(error)), code, from_model=service_is_model
    )


@dataclass(frozen=True)
class SageMakerBackend(ProjectEndpointBackend):
    """A deployed SageMaker endpoint through sagemaker-runtime InvokeEndpoint."""

    endpoint_name: str
    region: str | None = None
    endpoint_url: str | None = None
    # None: as many texts per request as the endpoint states (see `endpoint_batch_size`).
    batch_size: int | None = None
    max_attempts: int = MAX_ATTEMPTS
    # A boto3 Session to call from (a stack's profile and assumed roles); None: the default one.
    session: Any = None
    _info: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # One boto3 client per backend (thread-safe), not one per call: `embed file` calls often.
    _clients: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def target(self) -> str:
        return f"SageMaker endpoint {self.endpoint_name}"

    def sender(self) -> Callable[[bytes], bytes]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            key = f"runtime/{self.max_attempts}"  # a copy with other retries gets its own
            client = self._clients.get(key) or self._clients.setdefault(
                key,
                aws_client(
                    "sagemaker-runtime",
                    self.region,
                    self.endpoint_url,
                    self.max_attempts,
                    session=self.session,
                ),
            )
        except BotoCoreError as error:
            raise _botocore_failure(error, self.target) from None

        def invoke(body: bytes) -> bytes:
            try:
                response = client.invoke_endpoint(
                    EndpointName=self.endpoint_name,
                    ContentType=CONTENT_TYPE,
                    Accept=CONTENT_TYPE,
                    Body=body,
                )
                return response["Body"].read()
            except ClientError as error:
                raise _client_error(error, self.target) from None
            except BotoCoreError as error:
                raise _botocore_failure(error, self.target) from None

        return invoke


@dataclass(frozen=True)
class BedrockBackend:
    """An Amazon Bedrock embedding model through bedrock-runtime InvokeModel."""

    model_id: str
    region: str | None = None
    endpoint_url: str | None = None
    max_attempts: int = MAX_ATTEMPTS
    _clients: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def embed(
        self, texts: list[str], options: EmbeddingOptions = DEFAULT_OPTIONS
    ) -> EmbeddingResult:
        from botocore.exceptions import BotoCoreError, ClientError

        _check_texts(texts)
        target = f"Bedrock model {self.model_id}"
        try:
            key = f"runtime/{self.max_attempts}"
            client = self._clients.get(key) or self._clients.setdefault(
                key,
                aws_client("bedrock-runtime", self.region, self.endpoint_url, self.max_attempts),
            )
        except BotoCoreError as error:
            raise _botocore_failure(error, target) from None

        def invoke(body: bytes) -> tuple[bytes, int | None]:
            response = client.invoke_model(
                modelId=self.model_id, contentType=CONTENT_TYPE, accept=CONTENT_TYPE, body=body
            )
            headers = response["ResponseMetadata"].get("HTTPHeaders", {})
            return response["body"].read(), bedrock_formats.input_token_count(headers)

        try:
            bedrock_options = bedrock_formats.EmbedOptions.from_api(options)
            result = bedrock_formats.embed_texts(invoke, self.model_id, texts, bedrock_options)
        except bedrock_formats.BedrockRequestError as error:
            raise InputTooLargeError(str(error)) from None
        except bedrock_formats.BedrockResponseError as error:
            raise ResponseFormatError(f"{target}: {error}") from None
        except ClientError as error:
            raise _client_error(error, target, service_is_model=True) from None
        except BotoCoreError as error:
            raise _botocore_failure(error, target) from None
        return EmbeddingResult(result.vectors, result.dimensions, result.model, result.input_tokens)


# ---------------------------------------------------------------------------------------------
# Stack outputs


def _output(outputs: Mapping[str, Any], key: str) -> str:
    value = outputs.get(key)
    if not isinstance(value, str) or not value:
        raise TargetError(
            f"stack output {key!r} is missing; the stack has: {sorted(outputs) or 'no outputs'} "
            "(was `pulumi up` run for this stack?)"
        )
    return value


def backend_for_stack(
    outputs: Mapping[str, Any], *, use_http_api: bool = False, batch_size: int | None = None
) -> EmbeddingBackend:
    """The backend a stack deployed, from its `pulumi stack output --json`."""
    region = _output(outputs, stack_facts.REGION)
    if use_http_api:
        return HttpApiBackend(
            _output(outputs, stack_facts.HTTP_API_URL),
            region,
            batch_size=batch_size or DEFAULT_BATCH_SIZE,
        )
    backend = outputs.get(stack_facts.BACKEND, "sagemaker")
    if backend == "sagemaker":
        # A local stack's endpoint is served on this machine; its outputs say where.
        runtime_url = outputs.get(stack_facts.SAGEMAKER_RUNTIME_URL) or None
        return SageMakerBackend(
            _output(outputs, stack_facts.ENDPOINT_NAME),
            region,
            endpoint_url=runtime_url,
            batch_size=batch_size,
        )
    if backend == "bedrock":
        return BedrockBackend(_output(outputs, stack_facts.BEDROCK_MODEL_ID), region)
    raise TargetError(f"stack output 'backend' is {backend!r}; expected 'sagemaker' or 'bedrock'")
