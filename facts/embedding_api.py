"""The embedding API: the request shapes every endpoint accepts and the responses it answers.

One definition for the container (shipped in `code/facts/`), the local endpoint, the HTTP API's
proxy and the clients. Standard library only (orjson writes vectors where an archive vendors it),
Python 3.9-compatible. The shapes (native, OpenAI,
info, JSON lines) and their fields: docs/inference.md.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

try:  # vendored in an ONNX archive's code/ (facts/onnx_runtime.py); elsewhere, the standard library
    import orjson as _orjson
except ImportError:
    _orjson = None

JSON_CONTENT_TYPE = "application/json"
JSONLINES_CONTENT_TYPE = "application/jsonlines"
CONTENT_TYPES = (JSON_CONTENT_TYPE, JSONLINES_CONTENT_TYPE)
OPENAI_KEYS = ("input", "model", "dimensions", "encoding_format", "user")
ENCODING_FORMATS = ("float", "base64")
TRUNCATION_DIRECTIONS = ("right", "left")
# Bytes one value takes in a response at most: a float32 with its sign, exponent and comma, as
# "%.9g" writes it (15 + 1) or orjson's shortest form (16 + 1: "-0.0000012345679",
# "-1961229700000.0"), or 4 bytes in base64 (4/3 of them), plus per-vector brackets or quotes.
FLOAT_VALUE_BYTES = 17
VECTOR_OVERHEAD_BYTES = 64
# What the envelope of a response (model, usage, keys) may take besides the vectors.
ENVELOPE_BYTES = 1024


class InputError(ValueError):
    """The request cannot be served as sent; `status` is the HTTP status a server answers."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# What a caller is told when serving fails for a reason that is not its request: the same words
# from every server, never the exception's own text (which can hold paths and internals).
INTERNAL_ERROR_MESSAGE = (
    "the endpoint failed while answering this request (an internal error, logged on the "
    "endpoint); retry it, and report it if it persists"
)


class InternalError(RuntimeError):
    """A failure that is not the request's fault; servers log the cause and answer the message."""

    status = 500

    def __init__(self) -> None:
        super().__init__(INTERNAL_ERROR_MESSAGE)


@dataclass(frozen=True)
class EmbeddingOptions:
    """What a caller may choose besides the texts; None means the model's or server's default."""

    normalize: bool | None = None
    truncate: bool = True
    truncation_direction: str = "right"
    prompt_name: str | None = None
    prompt: str | None = None
    dimensions: int | None = None
    encoding_format: str = "float"

    def as_parameters(self) -> dict[str, Any]:
        """The native request's `parameters`: every option that differs from its default."""
        defaults = EmbeddingOptions()
        return {
            name: getattr(self, name)
            for name in PARAMETERS
            if getattr(self, name) != getattr(defaults, name)
        }


# The native request's `parameters`: the options' field names.
PARAMETERS = tuple(item.name for item in fields(EmbeddingOptions))
_DEFAULT_OPTIONS = EmbeddingOptions()


@dataclass(frozen=True)
class EmbeddingRequest:
    """A validated request: its texts in order, the options, and the shape to answer in."""

    texts: tuple[str, ...]
    options: EmbeddingOptions = field(default_factory=EmbeddingOptions)
    # "native" | "openai" | "jsonlines" | "info"
    shape: str = "native"


@dataclass(frozen=True)
class Usage:
    """Tokens the model read: after truncation, prompts and special tokens included."""

    prompt_tokens: int

    def as_json(self) -> str:
        """OpenAI's `usage` object, compact (every response carries it)."""
        tokens = int(self.prompt_tokens)
        return f'{{"prompt_tokens":{tokens},"total_tokens":{tokens}}}'


# ---------------------------------------------------------------------------------------------
# Requests


# A value's kind in JSON's words, for "got …" (bool before int: True is an int in Python).
_JSON_KINDS = (
    (type(None), "null"),
    (bool, "a boolean"),
    ((int, float), "a number"),
    (str, "a string"),
    (list, "an array"),
    (dict, "an object"),
)


def _json_kind(value: Any) -> str:
    return next((name for kind, name in _JSON_KINDS if isinstance(value, kind)), "a value")


def _as_sent(value: Any) -> str:
    """`value` written back as JSON, shortened: what the client sent, in its own terms."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _bool(value: Any, name: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise InputError(f'parameter "{name}" must be true or false, got {_as_sent(value)}')
    return value


def _choice(value: Any, name: str, allowed: Sequence[str]) -> str | None:
    if value is None:
        return None
    text = value.lower() if isinstance(value, str) else value
    if text not in allowed:
        raise InputError(f'"{name}" is {_as_sent(value)}; allowed: {list(allowed)}')
    return text


def _dimensions(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f'"dimensions" must be a positive integer, got {_as_sent(value)}')
    return value


def non_utf8_at(text: str) -> int | None:
    """Where `text` first holds a character with no UTF-8 form (a lone surrogate: from a JSON
    escape, or a byte a terminal could not decode); None: it has one."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return error.start
    return None


def _unicode(text: str, where: str) -> str:
    """`text` when it is valid Unicode; a JSON escape of a lone UTF-16 surrogate is not."""
    at = non_utf8_at(text)
    if at is not None:
        raise InputError(
            f"{where} holds a lone UTF-16 surrogate (\\u{ord(text[at]):04x} at "
            f"character {at}): a text must be valid Unicode, so a \\ud800-\\udfff "
            "escape must be half of a surrogate pair"
        )
    return text


def _optional_text(value: Any, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InputError(f'"{name}" must be a string, got {_json_kind(value)}')
    return None if value is None else _unicode(value, f'"{name}"')


def _token_ids(items: list) -> bool:
    """True for OpenAI's token-id input: integers (an empty list too, as one of its rows)."""
    return all(isinstance(item, int) and not isinstance(item, bool) for item in items)


def _texts(inputs: Any, key: str) -> tuple[str, ...]:
    if isinstance(inputs, str):
        return (_unicode(inputs, f'"{key}"'),)
    if not isinstance(inputs, list):
        raise InputError(f'"{key}" must be a string or a list of strings, got {_json_kind(inputs)}')
    if not inputs:
        raise InputError(f'"{key}" is an empty list: send at least one string')
    if _token_ids(inputs) or all(isinstance(item, list) and _token_ids(item) for item in inputs):
        raise InputError(
            f'"{key}" holds token ids: this endpoint tokenizes with its own model\'s tokenizer, '
            "so send text (ids from another tokenizer, such as OpenAI's tiktoken, would embed "
            "the wrong words; with LangChain's OpenAIEmbeddings set "
            "check_embedding_ctx_length=False)"
        )
    for index, item in enumerate(inputs):
        if not isinstance(item, str):
            raise InputError(f'"{key}"[{index}] must be a string, got {_json_kind(item)}')
        _unicode(item, f'"{key}"[{index}]')
    return tuple(inputs)


def _options(parameters: dict) -> EmbeddingOptions:
    if not parameters:  # most requests: the defaults, without reading each one
        return _DEFAULT_OPTIONS
    prompt_name = _optional_text(parameters.get("prompt_name"), "prompt_name")
    prompt = _optional_text(parameters.get("prompt"), "prompt")
    if prompt is not None and prompt_name is not None:
        raise InputError('send either "prompt" (a literal prefix) or "prompt_name", not both')
    truncate = _bool(parameters.get("truncate"), "truncate")
    return EmbeddingOptions(
        normalize=_bool(parameters.get("normalize"), "normalize"),
        truncate=True if truncate is None else truncate,
        truncation_direction=_choice(
            parameters.get("truncation_direction"), "truncation_direction", TRUNCATION_DIRECTIONS
        )
        or "right",
        prompt_name=prompt_name,
        prompt=prompt,
        dimensions=_dimensions(parameters.get("dimensions")),
        encoding_format=_choice(
            parameters.get("encoding_format"), "encoding_format", ENCODING_FORMATS
        )
        or "float",
    )


def parse_document(document: Any) -> EmbeddingRequest:
    """A request from a decoded JSON body: native, OpenAI (by its `input` key) or info."""
    if not isinstance(document, dict):
        raise InputError('request body must be a JSON object {"inputs": ..., "parameters": {...}}')
    if "info" in document:
        if len(document) != 1 or document["info"] is not True:
            raise InputError('an info request is exactly {"info": true}')
        return EmbeddingRequest(texts=(), shape="info")
    if "input" in document:
        unknown = sorted(set(document) - set(OPENAI_KEYS))
        if unknown:
            raise InputError(
                f"unknown key(s) {unknown} in an OpenAI-style request; allowed: {list(OPENAI_KEYS)}"
            )
        _optional_text(document.get("model"), "model")
        _optional_text(document.get("user"), "user")
        return EmbeddingRequest(
            texts=_texts(document["input"], "input"),
            options=_options(
                {
                    "dimensions": document.get("dimensions"),
                    "encoding_format": document.get("encoding_format"),
                }
            ),
            shape="openai",
        )
    if "inputs" not in document:
        raise InputError(
            'missing "inputs": send a string or a list of strings (or OpenAI\'s "input")'
        )
    unknown_keys = sorted(set(document) - {"inputs", "parameters"})
    if unknown_keys:
        raise InputError(f"unknown key(s) {unknown_keys}; allowed: ['inputs', 'parameters']")
    parameters = document.get("parameters")
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise InputError(f'"parameters" must be an object with keys {list(PARAMETERS)}')
    unknown = sorted(set(parameters) - set(PARAMETERS))
    if unknown:
        raise InputError(f"unknown parameter(s) {unknown}; allowed: {list(PARAMETERS)}")
    return EmbeddingRequest(
        texts=_texts(document["inputs"], "inputs"), options=_options(parameters)
    )


def decode_json(raw: bytes, what: str) -> Any:
    """The decoded body; orjson's reading when it has one, else the standard library's.

    A body orjson refuses (not UTF-8, NaN, integers past 64 bits, lone surrogates, 1,024 levels
    deep) is read again by the standard library, which accepts what it always accepted or
    refuses it with the messages below. orjson reads integers past 64 bits as floats. Every
    refusal is an InputError (the endpoint's and the HTTP API's proxy's alike).
    """
    if _orjson is not None:
        try:
            return _orjson.loads(raw)
        except ValueError:  # orjson.JSONDecodeError
            pass
    try:
        return json.loads(raw.decode("utf-8"), parse_int=functools.partial(_json_int, what))
    except InputError:
        raise
    except UnicodeDecodeError as error:
        raise InputError(f"{what} is not UTF-8: {error}") from error
    except ValueError as error:
        raise InputError(f"{what} is not valid JSON: {error}") from error
    except RecursionError:
        raise InputError(
            f"{what} nests JSON arrays or objects too deeply to read; a request is "
            '{"inputs": a string or a list of strings, "parameters": {...}} (or OpenAI\'s '
            '{"input": ...}), two levels deep at most'
        ) from None


def _json_int(what: str, digits: str) -> int:
    """An integer literal; one too long for Python's int() limit is named, not its advice."""
    try:
        return int(digits)
    except ValueError:  # past sys.get_int_max_str_digits() (4,300 digits)
        raise InputError(
            f"{what} holds an integer of {len(digits.lstrip('-'))} digits; no field takes one"
        ) from None


def parse_json_lines(raw: bytes) -> EmbeddingRequest:
    """Batch Transform's records: a JSON string, or an object with an `inputs` string, per line.

    Lines end at `\n` only (a `\r` before it is dropped), as JSON Lines and SplitType=Line say.
    Blank lines at the end are no records; a blank line before a record is refused: the answer
    has one line per record, and a job joins answers to its input lines by position.
    """
    lines = raw.split(b"\n")
    while lines and not lines[-1].strip():
        lines.pop()
    texts = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise InputError(
                f"line {number} is blank: every line before the last record must hold one "
                "(the answer has a line per record, matched to the input by position)"
            )
        record = decode_json(line.removesuffix(b"\r"), f"line {number}")
        if isinstance(record, dict):
            record = record.get("inputs")
        if not isinstance(record, str):
            raise InputError(
                f'line {number} must be a JSON string or an object with an "inputs" string'
            )
        texts.append(_unicode(record, f"line {number}"))
    if not texts:
        raise InputError("the request holds no JSON lines")
    return EmbeddingRequest(texts=tuple(texts), shape="jsonlines")


def parse_body(raw: bytes, media_type: str, max_bytes: int) -> EmbeddingRequest:
    """A request from raw body bytes of `media_type` (without parameters), at most `max_bytes`."""
    if media_type not in CONTENT_TYPES:
        raise InputError(
            f"unsupported content type {media_type!r}; send one of {list(CONTENT_TYPES)}",
            status=415,
        )
    if len(raw) > max_bytes:
        raise InputError(
            f"request body is {len(raw)} bytes; the limit is {max_bytes} bytes "
            f"({max_bytes / 1_000_000:g} MB): "
            "send fewer texts per request",
            status=413,
        )
    if media_type == JSONLINES_CONTENT_TYPE:
        return parse_json_lines(raw)
    if not raw.strip():
        raise InputError(
            'request body is empty: send JSON {"inputs": ["text", ...]} '
            '(or OpenAI\'s {"input": ..., "model": ...})'
        )
    return parse_document(decode_json(raw, "request body"))


# ---------------------------------------------------------------------------------------------
# Responses


def max_vectors(dimensions: int, encoding_format: str, max_bytes: int) -> int:
    """How many vectors of `dimensions` one response of at most `max_bytes` can carry."""
    if encoding_format == "base64":
        per_vector = 4 * math.ceil(dimensions * 4 / 3) + VECTOR_OVERHEAD_BYTES
    else:
        per_vector = dimensions * FLOAT_VALUE_BYTES + VECTOR_OVERHEAD_BYTES
    return max(1, (max_bytes - ENVELOPE_BYTES) // per_vector)


def base64_vector(vector: Sequence[float]) -> str:
    """The vector as OpenAI's base64: little-endian float32 bytes."""
    if hasattr(vector, "astype"):  # a numpy row: its bytes, without a Python float per value
        raw = vector.astype("<f4").tobytes()
    else:
        raw = struct.pack(f"<{len(vector)}f", *vector)
    return base64.b64encode(raw).decode("ascii")


def float_rows(vectors: Sequence[Sequence[float]]) -> list[str]:
    """JSON arrays whose numbers read back as exactly the same float32 values.

    A float32 numpy array goes through orjson where the archive's code/ vendors it (ONNX
    archives, facts/onnx_runtime.py): each number in its shortest exact form, in a tenth of the
    time. Anything else: 9 significant digits, one C-level format per vector.
    """
    if len(vectors) == 0:
        return []
    dumped = _orjson_matrix(vectors)
    if dumped is not None:
        return ["[" + row + "]" for row in dumped[2:-2].split("],[")]
    row_format = "[" + ",".join(["%.9g"] * len(vectors[0])) + "]"
    return [row_format % tuple(vector) for vector in vectors]


def _orjson_matrix(vectors: Any) -> str | None:
    """A float32 numpy array as orjson writes it (`[[...],...]`); None where it does not."""
    if _orjson is None or getattr(vectors, "dtype", None) != "float32":
        return None
    try:
        return _orjson.dumps(vectors, option=_orjson.OPT_SERIALIZE_NUMPY).decode("ascii")
    except TypeError:  # orjson.JSONEncodeError: an array it cannot write (not contiguous)
        return None


@functools.lru_cache(maxsize=16)
def _json_string(text: str) -> str:
    """`text` as a JSON string; the served model's name is the same in every response."""
    return json.dumps(text)


def _encoded(vectors: Sequence[Sequence[float]], encoding_format: str) -> list[str]:
    if encoding_format == "base64":
        return ['"' + base64_vector(vector) + '"' for vector in vectors]
    return float_rows(vectors)


def render_response(
    request: EmbeddingRequest, vectors: Sequence[Sequence[float]], model: str, usage: Usage
) -> str:
    """The response body for `request`, in its shape and encoding."""
    dimensions = len(vectors[0]) if len(vectors) else 0
    if request.shape == "jsonlines":
        return "".join('{"embedding":' + row + "}\n" for row in float_rows(vectors))
    model_json = _json_string(model)
    usage_json = usage.as_json()
    encoding = request.options.encoding_format
    if request.shape == "openai":
        data = ",".join(
            f'{{"object":"embedding","index":{index},"embedding":{row}}}'
            for index, row in enumerate(_encoded(vectors, encoding))
        )
        return f'{{"object":"list","data":[{data}],"model":{model_json},"usage":{usage_json}}}'
    # The rows as orjson wrote them, where it does: no split and join of the text again.
    embeddings = _orjson_matrix(vectors) if encoding == "float" else None
    if embeddings is None:
        embeddings = "[" + ",".join(_encoded(vectors, encoding)) + "]"
    return (
        f'{{"embeddings":{embeddings},"model":{model_json},'
        f'"dimensions":{dimensions},"usage":{usage_json}}}'
    )


def openai_error(status: int, message: str) -> dict[str, Any]:
    """OpenAI's error shape, which its SDK turns into an exception carrying the message."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


# ---------------------------------------------------------------------------------------------
# Reading responses (clients)


def model_server_message(body: str) -> str:
    """The message in a model server's error body (`{"code", "type", "message"}`), else `body`.

    SageMaker hands the container's answer over as ModelError's OriginalMessage; the caller
    wants the words the container wrote for it, not that JSON escaped inside another message.
    """
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return body
    message = document.get("message") if isinstance(document, dict) else None
    return message if isinstance(message, str) and message else body


class ResponseError(ValueError):
    """A 2xx answer whose body is not one of the response shapes above."""


@dataclass(frozen=True)
class EmbeddingResponse:
    """Decoded vectors in request order, the model that made them, and the tokens it read."""

    vectors: list[list[float]]
    dimensions: int
    model: str
    prompt_tokens: int | None = None


def decode_vector(value: Any, where: str) -> list[float]:
    """A float list, or a base64 string of little-endian float32, as a list of floats."""
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as error:
            raise ResponseError(f"{where} is a string that is not base64: {error}") from None
        if len(raw) % 4:
            raise ResponseError(f"{where} decodes to {len(raw)} bytes, not whole float32 values")
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    if not isinstance(value, list) or not all(
        isinstance(x, (int, float)) and not isinstance(x, bool) for x in value
    ):
        raise ResponseError(f"{where} is neither a list of numbers nor a base64 string")
    return [float(x) for x in value]


def read_response(document: Any, expected: int) -> EmbeddingResponse:
    """Decode a native or OpenAI response for `expected` texts (either encoding)."""
    if not isinstance(document, dict):
        raise ResponseError(f"the answer is not a JSON object: {str(document)[:200]}")
    if isinstance(document.get("data"), list):
        items = sorted(
            document["data"], key=lambda item: item.get("index", 0) if isinstance(item, dict) else 0
        )
        raw_vectors = [item.get("embedding") if isinstance(item, dict) else None for item in items]
    elif isinstance(document.get("embeddings"), list):
        raw_vectors = document["embeddings"]
    else:
        raise ResponseError(f'the answer has no "embeddings" or "data" list: {str(document)[:200]}')
    if len(raw_vectors) != expected:
        raise ResponseError(f"the answer holds {len(raw_vectors)} vectors for {expected} texts")
    vectors = [decode_vector(value, f"vector {index}") for index, value in enumerate(raw_vectors)]
    dimensions = document.get("dimensions", len(vectors[0]) if vectors else 0)
    if not isinstance(dimensions, int) or dimensions < 1:
        raise ResponseError('the answer has no positive "dimensions"')
    for index, vector in enumerate(vectors):
        if len(vector) != dimensions:
            raise ResponseError(f"vector {index} does not have the {dimensions} values declared")
    usage = document.get("usage")
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    return EmbeddingResponse(
        vectors=vectors,
        dimensions=dimensions,
        model=str(document.get("model", "")),
        prompt_tokens=tokens if isinstance(tokens, int) else None,
    )
