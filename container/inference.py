"""Sentence embeddings inside the Hugging Face PyTorch inference DLC (shipped as code/inference.py).

The DLC's default `feature-extraction` pipeline returns one vector per *token*. This script
overrides it through the sagemaker-huggingface-inference-toolkit hooks (`model_fn`, `input_fn`,
`predict_fn`, `output_fn`) to return one vector per *sentence*, pooled and normalized exactly as
the model's own sentence-transformers files say (`modules.json`, `1_Pooling/config.json`,
`sentence_bert_config.json`, `N_Dense/` projections), with mean pooling + L2 normalization when
those files are absent.

Request:  {"inputs": str | [str, ...], "parameters": {"normalize": bool, "truncate": bool}}
Response: {"embeddings": [[float, ...], ...], "model": str, "dimensions": int}

Limits: at most MAX_BATCH_SIZE texts per request (env EMBEDDING_MAX_BATCH_SIZE overrides), and
request and response bodies within SageMaker Serverless' 4 MB (4,000,000 bytes).

Runs on every DLC we deploy, the oldest being Python 3.9 / PyTorch 1.13 / transformers 4.26: only
`torch` and `transformers` (plus `safetensors`, imported only for a Dense module saved in
that format) and the `facts` modules shipped beside it in `code/`, no 3.10+ syntax at runtime.
The toolkit answers every exception raised here with HTTP 400 and the exception's message, so
every message is written for the caller.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from transformers import AutoModel, AutoTokenizer

from facts.sentence_modules import (
    DENSE_WEIGHTS,
    MODULES_FILE,
    SUPPORTED_MODULES,
    module_kind,
)
from facts.serverless import MAX_PAYLOAD_BYTES

logger = logging.getLogger(__name__)

MAX_BATCH_SIZE = 256
# Bytes per float in the JSON response: up to 9 significant digits, sign, exponent, comma.
_BYTES_PER_VALUE = 17
# Texts run through the transformer this many at a time, longest first (as sentence-transformers
# does), so one long text does not pad a whole large request.
ENCODE_BATCH_SIZE = 32

JSON_CONTENT_TYPE = "application/json"
PARAMETERS = ("normalize", "truncate")
# Concatenation order of several pooling modes, as in sentence-transformers.
POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
_LEGACY_POOLING_KEYS = (
    ("pooling_mode_cls_token", "cls"),
    ("pooling_mode_max_tokens", "max"),
    ("pooling_mode_mean_tokens", "mean"),
    ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens"),
    ("pooling_mode_weightedmean_tokens", "weightedmean"),
    ("pooling_mode_lasttoken", "lasttoken"),
)
_POOLING_ALIASES = {"mean_sqrt_len": "mean_sqrt_len_tokens", "last_token": "lasttoken"}
# torch.nn activation classes a Dense module may name; anything else is refused, never imported.
DENSE_ACTIVATIONS = (
    "CELU",
    "ELU",
    "GELU",
    "Hardsigmoid",
    "Hardswish",
    "Hardtanh",
    "Identity",
    "LeakyReLU",
    "LogSigmoid",
    "Mish",
    "ReLU",
    "ReLU6",
    "SELU",
    "SiLU",
    "Sigmoid",
    "Softplus",
    "Softsign",
    "Tanh",
    "Tanhshrink",
)
# A Dense config without `activation_function` means Tanh (sentence-transformers' default).
DEFAULT_DENSE_ACTIVATION = "torch.nn.modules.activation.Tanh"
# Dense reads and writes this feature; other names feed token-level or multi-vector heads.
_SENTENCE_EMBEDDING = "sentence_embedding"


class InputError(ValueError):
    """The request cannot be served as sent; `status` is the HTTP status a server should answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ModelFilesError(ValueError):
    """The model folder's sentence-transformers files describe something this script cannot do."""


@dataclass(frozen=True)
class EmbeddingSettings:
    """What the model's sentence-transformers files say about turning tokens into one vector."""

    transformer_path: str
    pooling_modes: tuple[str, ...]
    normalize: bool
    max_seq_length: int
    do_lower_case: bool
    # Folders of the Dense modules applied after pooling, in modules.json order.
    dense_paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class EmbeddingRequest:
    """A validated request."""

    texts: tuple[str, ...]
    normalize: bool | None
    truncate: bool


@dataclass(frozen=True, eq=False)
class EmbeddingModel:
    """The loaded model, what `model_fn` returns and `predict_fn` receives."""

    model_id: str
    tokenizer: Any
    model: Any
    settings: EmbeddingSettings
    dimensions: int
    dense: tuple[Any, ...] = ()

    @property
    def max_texts_per_request(self) -> int:
        """The batch limit, also bounded so the JSON response fits SageMaker's 4 MB limit."""
        by_response = MAX_PAYLOAD_BYTES // (self.dimensions * _BYTES_PER_VALUE + 4)
        return max(1, min(max_batch_size(), by_response))


def max_batch_size() -> int:
    """MAX_BATCH_SIZE, or EMBEDDING_MAX_BATCH_SIZE when the deployment sets it."""
    raw = os.environ.get("EMBEDDING_MAX_BATCH_SIZE")
    if raw is None:
        return MAX_BATCH_SIZE
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ModelFilesError(f"EMBEDDING_MAX_BATCH_SIZE must be a positive integer, got {raw!r}")
    return value


# ---------------------------------------------------------------------------------------------
# Threads


def _cgroup_cpu_limit() -> float | None:
    """CPUs granted by the cgroup quota (v2 `cpu.max`, else v1 CFS); None when unlimited."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as handle:
            quota, period = handle.read().split()[:2]
        if quota != "max":
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as handle:
            quota_us = int(handle.read().strip())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as handle:
            period_us = int(handle.read().strip())
        if quota_us > 0 and period_us > 0:
            return quota_us / period_us
    except (OSError, ValueError):
        pass
    return None


def available_cpus() -> int:
    """vCPUs this process may use: CPU affinity, capped by the cgroup quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    limit = _cgroup_cpu_limit()
    if limit is not None:
        cpus = min(cpus, max(1, math.ceil(limit)))
    return max(1, cpus)


def configure_threads() -> int:
    """One intra-op thread per vCPU (env EMBEDDING_NUM_THREADS overrides); returns the count."""
    raw = os.environ.get("EMBEDDING_NUM_THREADS")
    threads = int(raw) if raw and raw.isdigit() and int(raw) > 0 else available_cpus()
    torch.set_num_threads(threads)
    return threads


# ---------------------------------------------------------------------------------------------
# Reading the sentence-transformers files


def _read_json(path: str) -> Any | None:
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        raise ModelFilesError(f"cannot read {os.path.basename(path)}: {error}") from error


def pooling_modes(config: dict[str, Any]) -> tuple[str, ...]:
    """The pooling modes of a `1_Pooling/config.json`, new (`pooling_mode`) or legacy flags."""
    if "pooling_mode" in config:
        raw = config["pooling_mode"]
        names = [raw] if isinstance(raw, str) else list(raw)
        modes = tuple(_POOLING_ALIASES.get(name, name) for name in names)
    else:
        modes = tuple(mode for key, mode in _LEGACY_POOLING_KEYS if config.get(key))
    unknown = [mode for mode in modes if mode not in POOLING_MODES]
    if unknown:
        raise ModelFilesError(
            f"unsupported pooling mode(s) {unknown} in the Pooling config; "
            f"supported: {list(POOLING_MODES)}"
        )
    if config.get("include_prompt") is False:
        logger.warning("include_prompt=false is ignored: prompts are the caller's business")
    return modes or ("mean",)


def read_settings(model_dir: str) -> EmbeddingSettings:
    """Pooling, normalization and sequence length from the model's sentence-transformers files."""
    modules = _read_json(os.path.join(model_dir, MODULES_FILE))
    if modules is None:
        config = _read_json(os.path.join(model_dir, "sentence_bert_config.json")) or {}
        return EmbeddingSettings(
            transformer_path=model_dir,
            pooling_modes=("mean",),
            normalize=True,
            max_seq_length=int(config.get("max_seq_length") or 0),
            do_lower_case=bool(config.get("do_lower_case", False)),
        )
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise ModelFilesError("modules.json must be a list of objects with 'type' and 'path'")
    entries = [(str(m.get("type", "")), str(m.get("path", ""))) for m in modules]
    kinds = [(module_kind(kind), path) for kind, path in entries]
    unsupported = [
        f"{module_type} ({path})"
        for module_type, path in entries
        if module_kind(module_type) not in SUPPORTED_MODULES
    ]
    if unsupported:
        raise ModelFilesError(
            f"modules.json lists module(s) this endpoint cannot run: {unsupported}; "
            f"supported: {list(SUPPORTED_MODULES)}"
        )
    if not kinds or kinds[0][0] != "Transformer":
        raise ModelFilesError("modules.json must start with a Transformer module")
    _check_dense_order([kind for kind, _ in kinds])
    transformer_path = os.path.normpath(os.path.join(model_dir, kinds[0][1]))
    pooling_paths = [path for kind, path in kinds if kind == "Pooling"]
    modes: tuple[str, ...] = ("mean",)
    if pooling_paths:
        config = _read_json(os.path.join(model_dir, pooling_paths[0], "config.json")) or {}
        modes = pooling_modes(config)
    transformer_config = {}
    for name in ("sentence_bert_config.json", "sentence_xlnet_config.json"):
        found = _read_json(os.path.join(transformer_path, name))
        if found is not None:
            transformer_config = found
            break
    return EmbeddingSettings(
        transformer_path=transformer_path,
        pooling_modes=modes,
        normalize=any(kind == "Normalize" for kind, _ in kinds),
        max_seq_length=int(transformer_config.get("max_seq_length") or 0),
        do_lower_case=bool(transformer_config.get("do_lower_case", False)),
        dense_paths=tuple(path for kind, path in kinds if kind == "Dense"),
    )


def _check_dense_order(kinds: Sequence[str]) -> None:
    """Dense projects the pooled vector: it must follow Pooling and precede Normalize."""
    dense = [index for index, kind in enumerate(kinds) if kind == "Dense"]
    if not dense:
        return
    pooling = [index for index, kind in enumerate(kinds) if kind == "Pooling"]
    normalize = [index for index, kind in enumerate(kinds) if kind == "Normalize"]
    if not pooling or min(dense) < min(pooling) or (normalize and max(dense) > min(normalize)):
        raise ModelFilesError(
            f"modules.json has Dense modules in an order this endpoint cannot run: {list(kinds)}; "
            "Dense modules must come after Pooling and before Normalize"
        )


# ---------------------------------------------------------------------------------------------
# Dense modules (a linear projection of the pooled vector, as sentence-transformers' Dense)


class DenseLayer(torch.nn.Module):
    """sentence-transformers' Dense: activation(linear(x)) (+ x, or a projection of x, if residual).

    Attribute names match the original, so its state dict (`linear.weight`, `linear.bias`,
    `residual.weight`) loads strictly.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool,
        activation_function: torch.nn.Module,
        use_residual: bool,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.linear = torch.nn.Linear(in_features, out_features, bias=bias)
        self.activation_function = activation_function
        self.use_residual = use_residual
        if use_residual and in_features != out_features:
            self.residual = torch.nn.Linear(in_features, out_features, bias=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out = self.activation_function(self.linear(features))
        if self.use_residual:
            same_width = self.in_features == self.out_features
            out = out + (features if same_width else self.residual(features))
        return out


def _allowed_activations() -> dict[str, type]:
    """Every accepted class path (`torch.nn.Tanh`, `torch.nn.modules.activation.Tanh`) → class."""
    allowed: dict[str, type] = {}
    for name in DENSE_ACTIVATIONS:
        cls = getattr(torch.nn, name, None)
        if cls is not None:
            allowed[f"torch.nn.{name}"] = cls
            allowed[f"{cls.__module__}.{name}"] = cls
    return allowed


def dense_activation(name: Any, where: str) -> torch.nn.Module:
    """The activation a Dense config names, from the allow-list only (nothing is imported)."""
    if name is None:
        return torch.nn.Identity()  # sentence-transformers' Dense(activation_function=None)
    allowed = _allowed_activations()
    if not isinstance(name, str) or name not in allowed:
        raise ModelFilesError(
            f"{where}: activation_function {name!r} is not supported; supported: {sorted(allowed)}"
        )
    return allowed[name]()


def _torch_load(path: str) -> Any:
    """torch.load on CPU, tensors only (`weights_only`) where this torch supports it (>= 1.13)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except TypeError as error:  # torch < 1.13: no weights_only argument
        if "weights_only" not in str(error):
            raise
    return torch.load(path, map_location="cpu")


def dense_state_dict(folder: str, where: str) -> dict[str, torch.Tensor]:
    """A Dense module's weights: model.safetensors when present (and loadable), else the .bin."""
    safetensors_path, bin_path = (os.path.join(folder, name) for name in DENSE_WEIGHTS)
    if os.path.isfile(safetensors_path):
        try:
            from safetensors.torch import load_file
        except ImportError:
            if not os.path.isfile(bin_path):
                raise ModelFilesError(
                    f"{where}/model.safetensors needs the `safetensors` package, which this "
                    "container lacks: deploy with a newer inference image (transformers >= 4.30)"
                ) from None
        else:
            return load_file(safetensors_path, device="cpu")
    if os.path.isfile(bin_path):
        try:
            return _torch_load(bin_path)
        except Exception as error:  # unpickling errors have no common base class
            raise ModelFilesError(f"cannot read {where}/pytorch_model.bin: {error}") from error
    raise ModelFilesError(f"{where} has no weights: expected one of {list(DENSE_WEIGHTS)}")


def load_dense(model_dir: str, path: str) -> DenseLayer:
    """One Dense module: its folder's config.json (as sentence-transformers saves it) + weights."""
    where = path or "."
    config = _read_json(os.path.join(model_dir, path, "config.json"))
    if not isinstance(config, dict):
        raise ModelFilesError(f"{where}/config.json is missing or not a JSON object")
    for key in ("module_input_name", "module_output_name"):
        value = config.get(key)
        if value is not None and value != _SENTENCE_EMBEDDING:
            raise ModelFilesError(
                f"{where}/config.json: {key} {value!r} is not supported; this endpoint runs "
                f"Dense modules on the pooled {_SENTENCE_EMBEDDING!r} only"
            )
    try:
        in_features, out_features = int(config["in_features"]), int(config["out_features"])
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFilesError(
            f"{where}/config.json needs integer in_features and out_features: {error!r}"
        ) from error
    layer = DenseLayer(
        in_features,
        out_features,
        bias=bool(config.get("bias", True)),
        activation_function=dense_activation(
            config.get("activation_function", DEFAULT_DENSE_ACTIVATION), where
        ),
        use_residual=bool(config.get("use_residual", False)),
    )
    weights = dense_state_dict(os.path.join(model_dir, path), where)
    try:
        layer.load_state_dict({key: value.float() for key, value in weights.items()})
    except (RuntimeError, AttributeError) as error:
        raise ModelFilesError(f"{where} weights do not fit its config.json: {error}") from error
    return layer.eval()


def load_dense_modules(
    model_dir: str, settings: EmbeddingSettings, pooled_dimensions: int
) -> tuple[DenseLayer, ...]:
    """The Dense chain, each layer's input checked against the previous output."""
    layers = []
    width = pooled_dimensions
    for path in settings.dense_paths:
        layer = load_dense(model_dir, path)
        if layer.in_features != width:
            raise ModelFilesError(
                f"{path or '.'}/config.json: in_features is {layer.in_features}, but the vector "
                f"before it has {width} dimensions"
            )
        layers.append(layer)
        width = layer.out_features
    return tuple(layers)


def _effective_max_length(settings: EmbeddingSettings, tokenizer: Any, model: Any) -> int:
    """The configured max_seq_length, else the tokenizer's, capped by the position embeddings."""
    limits = [settings.max_seq_length] if settings.max_seq_length > 0 else []
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < 1_000_000:
        limits.append(tokenizer_limit)
    positions = getattr(model.config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        limits.append(positions)
    return min(limits) if limits else 512


def _model_id(model_dir: str, model: Any) -> str:
    """The served model's name: EMBEDDING_MODEL_ID (set by the deployment), else config.json's."""
    configured = os.environ.get("EMBEDDING_MODEL_ID")
    if configured:
        return configured
    name = getattr(model.config, "_name_or_path", "") or ""
    if name and not os.path.isabs(name) and name.count("/") == 1:
        return name
    return os.path.basename(os.path.normpath(model_dir))


# ---------------------------------------------------------------------------------------------
# Toolkit hooks


def model_fn(model_dir: str, context: Any = None) -> EmbeddingModel:
    """Load tokenizer and encoder once per worker; `context` is passed by newer toolkits only."""
    threads = configure_threads()
    max_batch_size()  # a bad EMBEDDING_MAX_BATCH_SIZE fails the load, not every request
    settings = read_settings(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(settings.transformer_path)
    model = AutoModel.from_pretrained(settings.transformer_path)
    if model.dtype != torch.float32:
        model = model.float()  # half precision is slow and inexact on CPU
    model.eval()
    max_length = _effective_max_length(settings, tokenizer, model)
    settings = replace(settings, max_seq_length=max_length)
    pooled_dimensions = int(model.config.hidden_size) * len(settings.pooling_modes)
    dense = load_dense_modules(model_dir, settings, pooled_dimensions)
    dimensions = dense[-1].out_features if dense else pooled_dimensions
    loaded = EmbeddingModel(
        _model_id(model_dir, model), tokenizer, model, settings, dimensions, dense
    )
    logger.info(
        "loaded %s: pooling=%s dense=%s normalize=%s max_seq_length=%d dimensions=%d threads=%d",
        loaded.model_id,
        ",".join(settings.pooling_modes),
        ",".join(settings.dense_paths) or "none",
        settings.normalize,
        max_length,
        dimensions,
        threads,
    )
    return loaded


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def parse_request(body: Any, content_type: str | None = JSON_CONTENT_TYPE) -> EmbeddingRequest:
    """Validate a request body (str or bytes); every problem is an InputError naming the field."""
    media_type = _media_type(content_type) or JSON_CONTENT_TYPE
    if media_type != JSON_CONTENT_TYPE:
        raise InputError(
            f"unsupported content type {content_type!r}; send {JSON_CONTENT_TYPE!r}", status=415
        )
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise InputError(
            f"request body is {len(raw)} bytes; the limit is {MAX_PAYLOAD_BYTES} bytes (4 MB): "
            "send fewer texts per request",
            status=413,
        )
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise InputError(f"request body is not UTF-8: {error}") from error
    except ValueError as error:
        raise InputError(f"request body is not valid JSON: {error}") from error
    if not isinstance(document, dict):
        raise InputError('request body must be a JSON object {"inputs": ..., "parameters": {...}}')
    if "inputs" not in document:
        raise InputError('missing "inputs": send a string or a list of strings')
    unknown_keys = sorted(set(document) - {"inputs", "parameters"})
    if unknown_keys:
        raise InputError(f"unknown key(s) {unknown_keys}; allowed: ['inputs', 'parameters']")
    texts = _texts(document["inputs"])
    parameters = document.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InputError(f'"parameters" must be an object with keys {list(PARAMETERS)}')
    unknown = sorted(set(parameters) - set(PARAMETERS))
    if unknown:
        raise InputError(f"unknown parameter(s) {unknown}; allowed: {list(PARAMETERS)}")
    for name in PARAMETERS:
        value = parameters.get(name)
        if value is not None and not isinstance(value, bool):
            raise InputError(f'parameter "{name}" must be true or false, got {value!r}')
    truncate = parameters.get("truncate")
    return EmbeddingRequest(
        texts=texts,
        normalize=parameters.get("normalize"),
        truncate=True if truncate is None else truncate,
    )


def _texts(inputs: Any) -> tuple[str, ...]:
    if isinstance(inputs, str):
        return (inputs,)
    if not isinstance(inputs, list):
        raise InputError(
            f'"inputs" must be a string or a list of strings, got {type(inputs).__name__}'
        )
    if not inputs:
        raise InputError('"inputs" is an empty list: send at least one string')
    for index, item in enumerate(inputs):
        if not isinstance(item, str):
            raise InputError(f'"inputs"[{index}] must be a string, got {type(item).__name__}')
    return tuple(inputs)


def input_fn(input_data: Any, content_type: str | None, context: Any = None) -> EmbeddingRequest:
    """Toolkit hook: decode and validate the request body."""
    return parse_request(input_data, content_type)


def _pool(
    modes: Sequence[str], token_embeddings: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """One vector per text from token vectors, as sentence-transformers' Pooling computes it."""
    mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)
    batch, seq_len, hidden = token_embeddings.shape
    pooled: list[torch.Tensor] = []
    for mode in modes:
        if mode == "cls":
            first = attention_mask.to(torch.int).argmax(dim=1)  # first real token, any padding side
            index = first.view(-1, 1, 1).expand(-1, 1, hidden)
            pooled.append(torch.gather(token_embeddings, 1, index).squeeze(1))
        elif mode == "max":
            masked = token_embeddings.masked_fill(mask == 0, float("-inf"))
            pooled.append(masked.max(dim=1).values)
        elif mode in ("mean", "mean_sqrt_len_tokens"):
            summed = (token_embeddings * mask).sum(dim=1)
            counts = torch.clamp(mask.sum(dim=1), min=1e-9)
            pooled.append(summed / (counts if mode == "mean" else torch.sqrt(counts)))
        elif mode == "weightedmean":
            positions = torch.arange(1, seq_len + 1, dtype=token_embeddings.dtype)
            left_padding = attention_mask.to(torch.int32).argmax(dim=1).to(token_embeddings.dtype)
            weights = positions.view(1, -1, 1) - left_padding.view(-1, 1, 1)
            weighted = mask * weights
            summed = (token_embeddings * weighted).sum(dim=1)
            pooled.append(summed / torch.clamp(weighted.sum(dim=1), min=1e-9))
        elif mode == "lasttoken":
            values, from_end = attention_mask.flip(1).max(dim=1)
            from_end = torch.where(values == 0, torch.full_like(from_end, seq_len - 1), from_end)
            index = (seq_len - from_end - 1).view(-1, 1, 1).expand(-1, 1, hidden)
            pooled.append(torch.gather(token_embeddings * mask, 1, index).squeeze(1))
    return torch.cat(pooled, dim=-1)


def _prepare(texts: Sequence[str], settings: EmbeddingSettings) -> list[str]:
    prepared = [text.strip() for text in texts]
    if settings.do_lower_case:
        prepared = [text.lower() for text in prepared]
    return prepared


def _check_lengths(texts: Sequence[str], loaded: EmbeddingModel) -> None:
    """With truncate=false, a text longer than max_seq_length tokens is the caller's error."""
    limit = loaded.settings.max_seq_length
    lengths = [len(ids) for ids in loaded.tokenizer(list(texts), truncation=False)["input_ids"]]
    too_long = [index for index, length in enumerate(lengths) if length > limit]
    if too_long:
        raise InputError(
            f"inputs {too_long[:20]} are longer than the model's max_seq_length of {limit} tokens "
            f'(longest: {max(lengths)}); shorten them or send "truncate": true'
        )


def embed(loaded: EmbeddingModel, request: EmbeddingRequest) -> torch.Tensor:
    """Sentence vectors for the request's texts, in request order."""
    settings = loaded.settings
    texts = _prepare(request.texts, settings)
    if not request.truncate:
        _check_lengths(texts, loaded)
    normalize = settings.normalize if request.normalize is None else request.normalize
    order = sorted(range(len(texts)), key=lambda index: -len(texts[index]))
    vectors: list[torch.Tensor | None] = [None] * len(texts)
    with torch.inference_mode():
        for start in range(0, len(order), ENCODE_BATCH_SIZE):
            chunk = order[start : start + ENCODE_BATCH_SIZE]
            features = loaded.tokenizer(
                [texts[index] for index in chunk],
                padding=True,
                truncation="longest_first",
                max_length=settings.max_seq_length,
                return_tensors="pt",
            )
            output = loaded.model(**features, return_dict=True)
            pooled = _pool(
                settings.pooling_modes, output.last_hidden_state, features["attention_mask"]
            )
            for layer in loaded.dense:
                pooled = layer(pooled)
            if normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            for position, index in enumerate(chunk):
                vectors[index] = pooled[position]
    return torch.stack([vector for vector in vectors if vector is not None])


def predict_fn(data: EmbeddingRequest, model: EmbeddingModel, context: Any = None) -> dict:
    """Toolkit hook: embed the texts; refuses batches over the documented limit up front."""
    limit = model.max_texts_per_request
    if len(data.texts) > limit:
        raise InputError(
            f"{len(data.texts)} inputs in one request; the limit for this model is {limit} "
            "(EMBEDDING_MAX_BATCH_SIZE and the 4 MB response size): send smaller batches",
            status=413,
        )
    vectors = embed(model, data)
    return {
        "embeddings": [[float(f"{value:.9g}") for value in row] for row in vectors.tolist()],
        "model": model.model_id,
        "dimensions": int(vectors.shape[1]),
    }


def output_fn(prediction: dict, accept: str | None, context: Any = None) -> str:
    """Toolkit hook: JSON for `application/json` or any type (`*/*`), else a 406 error."""
    media_types = [_media_type(part) for part in (accept or "").split(",")]
    if not any(m in ("", "*/*", "application/*", JSON_CONTENT_TYPE) for m in media_types):
        raise InputError(
            f"cannot answer with accept {accept!r}; this endpoint returns {JSON_CONTENT_TYPE!r}",
            status=406,
        )
    return json.dumps(prediction, separators=(",", ":"))
