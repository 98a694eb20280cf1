"""Request bodies and response parsing for each Bedrock embedding model's InvokeModel API.

Pure: no boto3, no network. The `embed` client and the HTTP API's proxy Lambda both call
`embed_texts` with their own `invoke(body) -> bytes` function, so the two never disagree about a
model's shape. Standard library only (it ships inside the proxy Lambda); the models themselves
(ids, limits, dimensions) are the one table in `facts.bedrock_models`.

Shapes (Amazon Bedrock user guide, "Inference request parameters"):
- Titan Text Embeddings V2: `{"inputText", "dimensions", "normalize"}` → `{"embedding": [...]}`.
- Titan Embeddings G1 Text: `{"inputText"}` → `{"embedding": [...]}`.
- Titan Multimodal Embeddings G1: `{"inputText", "embeddingConfig": {"outputEmbeddingLength"}}`
  → `{"embedding": [...]}`.
- Cohere Embed v3: `{"texts", "input_type", "truncate": NONE|START|END}` →
  `{"embeddings": [[...]], "response_type": "embeddings_floats"}` (or by type when asked).
- Cohere Embed v4: `{"texts", "input_type", "truncate": NONE|LEFT|RIGHT, "embedding_types",
  "output_dimension"}` → `{"embeddings": {"float": [[...]]}, "response_type":
  "embeddings_by_type"}`.
Titan models embed one text per call; Cohere models up to 96.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from facts.bedrock_models import MODELS, BedrockEmbeddingModel
from facts.embedding_api import JSON_CONTENT_TYPE, EmbeddingOptions, EmbeddingResponse

INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")
DEFAULT_INPUT_TYPE = "search_document"
DEFAULT_OPTIONS = EmbeddingOptions()


class BedrockRequestError(ValueError):
    """The caller's input cannot be sent to this model (bad texts, dimensions or input type)."""


class BedrockResponseError(RuntimeError):
    """Bedrock answered with a body this model's format does not explain."""


def model_format(model_id: str) -> BedrockEmbeddingModel:
    """The table entry of a supported model, or BedrockRequestError naming the supported ones."""
    try:
        return MODELS[model_id]
    except KeyError:
        raise BedrockRequestError(
            f"model {model_id!r} is not a supported Bedrock embedding model; "
            f"expected one of {', '.join(MODELS)}"
        ) from None


def _check_texts(
    fmt: BedrockEmbeddingModel, texts: Sequence[str], truncate: bool, direction: str = "right"
) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise BedrockRequestError("inputs must be a list of strings")
    if not texts:
        raise BedrockRequestError("inputs must contain at least one text")
    checked: list[str] = []
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise BedrockRequestError(
                f"inputs[{index}] must be a string, got {type(text).__name__}"
            )
        if not text.strip():
            raise BedrockRequestError(
                f"inputs[{index}] is empty; {fmt.model_id} rejects empty text"
            )
        if len(text) > fmt.max_chars_per_text:
            if not truncate:
                raise BedrockRequestError(
                    f"inputs[{index}] has {len(text)} characters; {fmt.model_id} accepts at most "
                    f"{fmt.max_chars_per_text} (set truncate to cut it)"
                )
            limit = fmt.max_chars_per_text
            text = text[-limit:] if direction == "left" else text[:limit]
        checked.append(text)
    return checked


def check_options(
    fmt: BedrockEmbeddingModel, options: EmbeddingOptions, input_type: str = DEFAULT_INPUT_TYPE
) -> None:
    """Refuse the embedding API's options this model cannot honour, naming what it takes."""
    if options.prompt is not None or options.prompt_name is not None:
        raise BedrockRequestError(
            "prompt and prompt_name are not supported by Bedrock models (they take no "
            "prefix); Cohere models take input_type (search_query, search_document, ...)"
        )
    if options.dimensions is not None and options.dimensions not in fmt.allowed_dimensions:
        raise BedrockRequestError(
            f"dimensions {options.dimensions!r} is not offered by {fmt.model_id}; "
            f"expected one of {', '.join(map(str, fmt.allowed_dimensions))}"
        )
    if input_type not in INPUT_TYPES:
        raise BedrockRequestError(
            f"input_type {input_type!r} is not valid; expected one of {', '.join(INPUT_TYPES)}"
        )


def _cut(options: EmbeddingOptions, left: str, right: str) -> str:
    """Cohere's `truncate` value: which end to cut, or NONE (refuse over-long input)."""
    if not options.truncate:
        return "NONE"
    return left if options.truncation_direction == "left" else right


def _body(
    fmt: BedrockEmbeddingModel, texts: list[str], options: EmbeddingOptions, input_type: str
) -> dict[str, Any]:
    if fmt.family == "titan-v2":
        body: dict[str, Any] = {"inputText": texts[0], "normalize": options.normalize is not False}
        if options.dimensions is not None:
            body["dimensions"] = options.dimensions
        return body
    if fmt.family == "titan-v1":
        return {"inputText": texts[0]}
    if fmt.family == "titan-multimodal":
        length = options.dimensions or fmt.dimensions
        return {"inputText": texts[0], "embeddingConfig": {"outputEmbeddingLength": length}}
    if fmt.family == "cohere-v3":
        return {"texts": texts, "input_type": input_type, "truncate": _cut(options, "START", "END")}
    if fmt.family == "cohere-v4":
        body = {
            "texts": texts,
            "input_type": input_type,
            "truncate": _cut(options, "LEFT", "RIGHT"),
            "embedding_types": ["float"],
        }
        if options.dimensions is not None:
            body["output_dimension"] = options.dimensions
        return body
    raise AssertionError(f"no request shape for family {fmt.family!r}")


def request_bodies(
    model_id: str,
    texts: Sequence[str],
    options: EmbeddingOptions = DEFAULT_OPTIONS,
    input_type: str | None = None,
) -> list[dict[str, Any]]:
    """The InvokeModel bodies for `texts`, in order (one text each for Titan, ≤96 for Cohere).

    `input_type` is Cohere's (None: search_document). Over-long text is cut as `truncate` says
    (Cohere cuts at its token limit; Titan has no such switch, so its character limit cuts here).
    """
    fmt = model_format(model_id)
    input_type = input_type or DEFAULT_INPUT_TYPE
    check_options(fmt, options, input_type)
    checked = _check_texts(fmt, texts, options.truncate, options.truncation_direction)
    size = fmt.max_texts_per_call
    return [
        _body(fmt, checked[i : i + size], options, input_type) for i in range(0, len(checked), size)
    ]


def _float_vector(value: object, where: str) -> list[float]:
    if not isinstance(value, list) or not value:
        raise BedrockResponseError(f"{where} is not a non-empty list of numbers")
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value):
        raise BedrockResponseError(f"{where} contains a value that is not a number")
    return [float(x) for x in value]


def _decode(raw: bytes | str | dict[str, Any], model_id: str) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise BedrockResponseError(
            f"{model_id} returned a body that is not JSON: {error}"
        ) from None
    if not isinstance(payload, dict):
        raise BedrockResponseError(f"{model_id} returned JSON that is not an object")
    return payload


def parse_response(
    model_id: str, raw: bytes | str | dict[str, Any], expected_count: int
) -> list[list[float]]:
    """The vectors in one InvokeModel response body, checked against how many texts were sent."""
    fmt = model_format(model_id)
    payload = _decode(raw, model_id)
    if fmt.family.startswith("titan"):
        if "embedding" not in payload:
            raise BedrockResponseError(
                f"{model_id} response has no 'embedding' field (keys: {sorted(payload)})"
            )
        vectors = [_float_vector(payload["embedding"], f"{model_id} response 'embedding'")]
    else:
        embeddings = payload.get("embeddings")
        if isinstance(embeddings, dict):  # response_type "embeddings_by_type"
            embeddings = embeddings.get("float")
        if not isinstance(embeddings, list):
            raise BedrockResponseError(
                f"{model_id} response has no float 'embeddings' (keys: {sorted(payload)})"
            )
        vectors = [
            _float_vector(v, f"{model_id} response 'embeddings[{i}]'")
            for i, v in enumerate(embeddings)
        ]
    if len(vectors) != expected_count:
        raise BedrockResponseError(
            f"{model_id} returned {len(vectors)} vectors for {expected_count} texts"
        )
    return vectors


def l2_normalize(vector: list[float]) -> list[float]:
    """The vector scaled to unit length (a zero vector is returned unchanged)."""
    norm = math.sqrt(math.fsum(x * x for x in vector))
    return vector if norm == 0.0 else [x / norm for x in vector]


# What a caller's transport returns: the response body, or the body and Bedrock's input token
# count (response header X-Amzn-Bedrock-Input-Token-Count) when it has it.
InvokeAnswer = bytes | tuple[bytes, int | None]


def embed_texts(
    invoke: Callable[[bytes], InvokeAnswer],
    model_id: str,
    texts: Sequence[str],
    options: EmbeddingOptions = DEFAULT_OPTIONS,
    input_type: str | None = None,
    *,
    concurrency: int = 1,
) -> EmbeddingResponse:
    """Embed `texts` through `invoke(body_bytes)` (one InvokeModel call each).

    `invoke` is the caller's transport; its exceptions propagate unchanged. `concurrency` > 1 runs
    that many calls at once; the vectors keep the order of `texts` either way.
    """
    fmt = model_format(model_id)
    bodies = request_bodies(model_id, texts, options, input_type)

    def one_call(body: dict[str, Any]) -> tuple[list[list[float]], int | None]:
        count = len(body["texts"]) if "texts" in body else 1
        answer = invoke(json.dumps(body).encode("utf-8"))
        raw, tokens = answer if isinstance(answer, tuple) else (answer, None)
        return parse_response(model_id, raw, count), tokens

    if concurrency > 1 and len(bodies) > 1:
        with ThreadPoolExecutor(max_workers=min(concurrency, len(bodies))) as pool:
            batches = list(pool.map(one_call, bodies))
    else:
        batches = [one_call(body) for body in bodies]
    vectors = [vector for batch, _ in batches for vector in batch]
    counts = [tokens for _, tokens in batches]
    if options.normalize is not False and not fmt.server_normalize:  # None: unit vectors
        vectors = [l2_normalize(v) for v in vectors]
    dimensions = len(vectors[0])
    if any(len(v) != dimensions for v in vectors):
        raise BedrockResponseError(f"{model_id} returned vectors of different lengths")
    # Input tokens Bedrock counted (its X-Amzn-Bedrock-Input-Token-Count), when every call said.
    tokens = None if None in counts else sum(c for c in counts if c is not None)
    return EmbeddingResponse(vectors, dimensions, model_id, tokens)


def invoker(client: Any, model_id: str) -> Callable[[bytes], InvokeAnswer]:
    """`embed_texts`'s `invoke` over a bedrock-runtime client: the body and the token count."""

    def invoke(body: bytes) -> InvokeAnswer:
        response = client.invoke_model(
            modelId=model_id, body=body, contentType=JSON_CONTENT_TYPE, accept=JSON_CONTENT_TYPE
        )
        headers = {
            k.lower(): v for k, v in response["ResponseMetadata"].get("HTTPHeaders", {}).items()
        }
        value = headers.get("x-amzn-bedrock-input-token-count")
        return response["body"].read(), int(value) if value and value.isdigit() else None

    return invoke
