"""Sentence embeddings inside the Hugging Face PyTorch inference DLC (shipped as code/inference.py).

The DLC's default `feature-extraction` pipeline returns one vector per *token*. This script
overrides it through the sagemaker-huggingface-inference-toolkit hooks (`model_fn`, `input_fn`,
`predict_fn`, `output_fn`) to return one vector per *sentence*, as the model's own
sentence-transformers files say (sentence_embedding/model_files.py), with the embedding API of
facts/embedding_api.py: native and OpenAI-style JSON, JSON lines for Batch Transform, prompts,
Matryoshka dimensions, float or base64 vectors, token usage.

Runs on every DLC we deploy, the oldest being Python 3.9 / PyTorch 1.13 / transformers 4.26: only
`torch`, `transformers` (and `safetensors` for a Dense module saved that way) and the packages
shipped beside it in `code/` (`sentence_embedding/`, `facts/`), no 3.10+ syntax at runtime. The
toolkit answers every exception raised here with HTTP 400 and the exception's message, so every
message is written for the caller.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from sentence_embedding.dense import load_dense_modules
from sentence_embedding.encoder import EmbeddingModel, deployment_prompt_name, effective_max_length
from sentence_embedding.engines import load_engine
from sentence_embedding.environment import read_environment, request_limit_bytes
from sentence_embedding.model_files import read_json, read_settings
from sentence_embedding.tokenization import BatchTokenizer
from transformers import AutoTokenizer

from facts.embedding_api import (
    JSON_CONTENT_TYPE,
    JSONLINES_CONTENT_TYPE,
    EmbeddingRequest,
    InputError,
    InternalError,
    Usage,
    parse_body,
    render_response,
)
from facts.model_code import TOKENIZER_CONFIG_FILE, pickling_tokenizer_problem
from facts.sentence_modules import ModelFilesError

logger = logging.getLogger(__name__)
Hook = TypeVar("Hook", bound=Callable[..., Any])


def answers_the_caller(hook: Hook) -> Hook:
    """A request hook whose unexpected failures reach the caller as InternalError, logged here.

    The toolkit turns any exception into a 400 carrying its text: an InputError's text is written
    for the caller; any other exception's is not (it can name paths and internals).
    """

    @functools.wraps(hook)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return hook(*args, **kwargs)
        except (InputError, InternalError):
            raise
        except Exception as error:
            logger.exception("%s failed", hook.__name__)
            raise InternalError() from error

    return guarded  # type: ignore[return-value]


@dataclass(frozen=True)
class Prediction:
    """What `predict_fn` hands to `output_fn`: the vectors and what the response needs."""

    request: EmbeddingRequest
    vectors: Any  # float32 numpy array (texts × dimensions): written without a Python float each
    model: str
    usage: Usage


def _model_id(model_dir: str, configured: str | None) -> str:
    """The served model's name: EMBEDDING_MODEL_ID (set by the deployment), else its folder's.

    Not config.json's `_name_or_path`: it names the checkpoint the weights were trained from
    (all-MiniLM-L6-v2's says nreimers/MiniLM-L6-H384-uncased), and transformers replaces it with
    the local path when it loads the model, so the engines would not even agree.
    """
    return configured or os.path.basename(os.path.realpath(model_dir))


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def load_tokenizer(path: str) -> Any:
    """The model's tokenizer; a clear refusal when transformers wants the repository's code for it.

    transformers 4 (4.26 and 4.37 of the images) looks for the tokenizer in the repository's code
    when tokenizer_config.json's `tokenizer_class` is the repository's own, or names none and
    config.json is custom code, and then asks for `trust_remote_code`, a switch this project does
    not offer. The loader refuses the first case before packaging (facts/model_code.py).
    """
    problem = pickling_tokenizer_problem(read_json(os.path.join(path, TOKENIZER_CONFIG_FILE)))
    if problem is not None:
        raise ModelFilesError(problem)
    try:
        return AutoTokenizer.from_pretrained(path)
    except ValueError as error:
        if "trust_remote_code" not in str(error):
            raise
        raise ModelFilesError(
            "the model's tokenizer cannot load without running the repository's own code "
            f"(transformers said: {error}). This project runs no repository code: a model "
            "whose tokenizer_config.json names a tokenizer_class transformers has "
            "(e.g. BertTokenizer) loads without it"
        ) from error


def model_fn(model_dir: str, context: Any = None) -> EmbeddingModel:
    """Load tokenizer and encoder once per worker; `context` is passed by newer toolkits only."""
    environment = read_environment()  # a bad variable fails the load, not every request
    threads = environment.intra_op_threads()
    settings = read_settings(model_dir)
    default_prompt_name = (
        deployment_prompt_name(settings, environment) or settings.default_prompt_name
    )
    # The engine first: its refusals (a model of custom code on PyTorch) say more than the
    # tokenizer's would for the same model.
    engine = load_engine(model_dir, settings.transformer_path, threads, environment.engine)
    tokenizer = load_tokenizer(settings.transformer_path)
    max_length = effective_max_length(settings, tokenizer, engine, environment.max_seq_length)
    settings = replace(settings, max_seq_length=max_length)
    pooled_dimensions = engine.hidden_size * len(settings.pooling_modes)
    dense = load_dense_modules(model_dir, settings, pooled_dimensions)
    loaded = EmbeddingModel(
        model_id=_model_id(model_dir, environment.model_id),
        tokenizer=tokenizer,
        batch_tokenizer=BatchTokenizer(tokenizer, max_length),
        engine=engine,
        settings=settings,
        environment=environment,
        dimensions=dense[-1].out_features if dense else pooled_dimensions,
        dense=dense,
        default_prompt_name=default_prompt_name,
    )
    logger.info(
        "loaded %s: engine=%s pooling=%s dense=%s normalize=%s max_seq_length=%d dimensions=%d "
        "threads=%d prompts=%s default_prompt=%s",
        loaded.model_id,
        f"{engine.name} graph={engine.graph}" if engine.name == "onnx" else engine.name,
        ",".join(settings.pooling_modes),
        ",".join(settings.dense_paths) or "none",
        settings.normalize,
        settings.max_seq_length,
        loaded.dimensions,
        threads,
        ",".join(sorted(settings.prompts)) or "none",
        default_prompt_name or "none",
    )
    return loaded


@answers_the_caller
def input_fn(input_data: Any, content_type: str | None, context: Any = None) -> EmbeddingRequest:
    """Toolkit hook: decode and validate the request body (JSON, or JSON lines)."""
    # surrogatepass: a str body holding a lone surrogate is refused as not UTF-8, not a crash.
    if isinstance(input_data, str):
        raw = input_data.encode("utf-8", "surrogatepass")
    elif isinstance(input_data, (bytes, bytearray, memoryview)):
        raw = bytes(input_data)
    else:  # the model server decodes a form body into fields and hands over None
        raw = b""
    limit = request_limit_bytes()
    return parse_body(raw, _media_type(content_type) or JSON_CONTENT_TYPE, limit)


def info(model: EmbeddingModel) -> dict[str, Any]:
    """What an `{"info": true}` request answers: the model and its per-request limits."""
    return {
        "model": model.model_id,
        "engine": model.engine.name,
        # The ONNX graph the engine runs (onnx/model.onnx, or the stack's onnxFile); None: torch.
        "onnx_graph": getattr(model.engine, "graph", None),
        "dimensions": model.dimensions,
        "max_sequence_length": model.settings.max_seq_length,
        "normalize": model.settings.normalize,
        "prompts": model.settings.prompts,
        "default_prompt_name": model.default_prompt_name,
        "max_request_bytes": request_limit_bytes(),
        "max_texts_per_request": {
            encoding: model.max_texts_per_request(model.dimensions, encoding)
            for encoding in ("float", "base64")
        },
    }


@answers_the_caller
def predict_fn(
    data: EmbeddingRequest, model: EmbeddingModel, context: Any = None
) -> Prediction | dict[str, Any]:
    """Toolkit hook: embed the texts; refuses batches over the documented limit up front."""
    if data.shape == "info":
        return info(model)
    model.check_request_size(len(data.texts), data.options)
    vectors, tokens = model.embed(data.texts, data.options)
    return Prediction(data, vectors, model.model_id, Usage(tokens))


@answers_the_caller
def output_fn(prediction: Any, accept: str | None, context: Any = None) -> str:
    """Toolkit hook: the response in the request's shape; a 406 for an accept it cannot meet.

    A JSON-lines request is answered in JSON lines under `application/json` too: the toolkit
    hands a missing Accept and `*/*` over as `application/json`, so a caller's explicit JSON and
    no wish at all look the same here, and the request's own content type says more.
    """
    answer_type = JSON_CONTENT_TYPE
    acceptable = ["", "*/*", "application/*", JSON_CONTENT_TYPE]
    if isinstance(prediction, Prediction) and prediction.request.shape == "jsonlines":
        answer_type = JSONLINES_CONTENT_TYPE
        acceptable.append(JSONLINES_CONTENT_TYPE)
    media_types = [_media_type(part) for part in (accept or "").split(",")]
    if not any(m in acceptable for m in media_types):
        raise InputError(
            f"cannot answer with accept {accept!r}; this request's answer is {answer_type!r}",
            status=406,
        )
    if isinstance(prediction, dict):
        return json.dumps(prediction, separators=(",", ":"))
    return render_response(
        prediction.request, prediction.vectors, prediction.model, prediction.usage
    )
