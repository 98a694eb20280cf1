"""The transformer's forward pass with PyTorch: token ids in, one vector per token out."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
import transformers
from transformers import AutoModel

from facts.model_code import CONFIG_FILE, custom_code, custom_code_problem
from facts.sentence_modules import ModelFilesError
from facts.weight_files import ADAPTER_CONFIG, index_problem, loaded_weights, used_index

from .model_files import read_file, read_json

# Encoder-decoder types whose embedding models keep only the encoder (sentence-t5, GTR): their
# encoder class, as sentence-transformers loads them. AutoModel would build the whole model and
# want the decoder's weights and inputs. A class this transformers lacks falls back to AutoModel.
ENCODER_CLASSES = {"t5": "T5EncoderModel", "mt5": "MT5EncoderModel", "umt5": "UMT5EncoderModel"}


class TorchEngine:
    """A Hugging Face model in float32 on the CPU, run under `torch.inference_mode()`."""

    name = "torch"
    mean_head = False  # no pooling head: encoder.py pools the token vectors

    def __init__(self, model: Any) -> None:
        self.model = model
        config = model.config
        self.hidden_size = int(config.hidden_size)
        positions = getattr(config, "max_position_embeddings", None)
        self.max_position_embeddings = positions if isinstance(positions, int) else None

    @classmethod
    def load(cls, transformer_path: str, threads: int) -> TorchEngine:
        config = read_json(os.path.join(transformer_path, CONFIG_FILE))
        classes = custom_code(config)
        if classes:
            raise ModelFilesError(
                f"the PyTorch engine cannot run this model: {custom_code_problem(classes)}. "
                "The ONNX engine serves such a model from its export: for a Hub model that "
                "ships onnx/model.onnx, set inferenceEngine auto or onnx (an archive of your own, "
                "sourceModelDataUrl, runs on PyTorch only)"
            )
        refuse_foreign_shards(transformer_path)
        torch.set_num_threads(threads)
        model_type = config.get("model_type") if isinstance(config, dict) else None
        model_class = getattr(transformers, ENCODER_CLASSES.get(str(model_type), ""), AutoModel)
        model, loading = model_class.from_pretrained(transformer_path, output_loading_info=True)
        refuse_missing_weights(model, loading.get("missing_keys") or ())
        if model.dtype != torch.float32:
            model = model.float()  # half precision is slow and inexact on CPU
        return cls(model.eval())

    def token_embeddings(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """`last_hidden_state` for a tokenized batch (the tokenizer's arrays, as named)."""
        tensors = {name: torch.from_numpy(array) for name, array in features.items()}
        with torch.inference_mode():
            return self.model(**tensors, return_dict=True).last_hidden_state.numpy()


def refuse_foreign_shards(transformer_path: str) -> None:
    """Fail the load when a checkpoint index names files other than its shards, which
    transformers would open with torch.load, or an adapter config would make it load another
    model from the Hub (facts/weight_files.py); the loader packages neither.
    """
    names = set(os.listdir(transformer_path))
    if ADAPTER_CONFIG in names:
        raise ModelFilesError(
            f"{ADAPTER_CONFIG} is an adapter's: transformers would load its base model "
            "(base_model_name_or_path) from the Hub instead; package the merged model"
        )
    for index in used_index(names, loaded_weights(names)[1]):
        data = read_file(os.path.join(transformer_path, index)) or b""
        problem = index_problem(index, data, names)
        if problem is not None:
            raise ModelFilesError(f"{problem}; the endpoint does not load such a checkpoint")


def refuse_missing_weights(model: Any, missing_keys: Any) -> None:
    """Fail the load when the checkpoint lacks weights of the class transformers built.

    transformers fills such weights with random values and only logs a warning: the endpoint
    would serve wrong vectors. It happens when the weights were saved for another class than the
    one `model_type` names (a repository's own code, a renamed architecture). The pooler is
    exempt: the vectors never read it, and many checkpoints are saved without one.
    """
    missing = sorted(key for key in missing_keys if ".pooler." not in f".{key}")
    if missing:
        raise ModelFilesError(
            f"the checkpoint does not fit transformers' {type(model).__name__} "
            f"(model_type {getattr(model.config, 'model_type', None)!r}): {len(missing)} of its "
            f"weights are missing ({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''})"
            " and would be random, giving wrong vectors. The weights were saved for another "
            "architecture: if the repository ships onnx/model.onnx, the ONNX engine runs its "
            "own graph (inferenceEngine auto or onnx)"
        )
