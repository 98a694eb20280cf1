"""sentence-transformers' Dense modules: a linear projection of the pooled vector (torch).

Weights come from `model.safetensors` (when the `safetensors` package is there) or
`pytorch_model.bin` through `torch.load(weights_only=True)`; the activation is looked up in an
allow-list of parameter-free `torch.nn` classes, so nothing named in a model file is imported.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from facts.sentence_modules import DENSE_WEIGHTS, ModelFilesError

from .model_files import EmbeddingSettings, read_json

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
    config = read_json(os.path.join(model_dir, path, "config.json"))
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


def apply_dense(layers: tuple[DenseLayer, ...], pooled: np.ndarray) -> np.ndarray:
    """The pooled vectors through the Dense chain (torch shares their memory both ways)."""
    with torch.inference_mode():
        vectors = torch.from_numpy(pooled)
        for layer in layers:
            vectors = layer(vectors)
        return vectors.numpy()
