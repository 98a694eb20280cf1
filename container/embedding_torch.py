"""The transformer's forward pass with PyTorch: token ids in, one vector per token out."""

from __future__ import annotations

import os
from typing import Any

import torch
from embedding_settings import ModelFilesError, read_json
from transformers import AutoModel

from facts.model_code import CONFIG_FILE, custom_code, custom_code_problem


class TorchEngine:
    """A Hugging Face model in float32 on the CPU, run under `torch.inference_mode()`."""

    name = "torch"

    def __init__(self, model: Any) -> None:
        self.model = model
        config = model.config
        self.hidden_size = int(config.hidden_size)
        positions = getattr(config, "max_position_embeddings", None)
        self.max_position_embeddings = positions if isinstance(positions, int) else None
        self.name_or_path = getattr(config, "_name_or_path", "") or ""

    @classmethod
    def load(cls, transformer_path: str, threads: int) -> TorchEngine:
        classes = custom_code(read_json(os.path.join(transformer_path, CONFIG_FILE)))
        if classes:
            raise ModelFilesError(
                f"the PyTorch engine cannot run this model: {custom_code_problem(classes)}. "
                "The ONNX engine serves such a model from its export: for a Hub model that "
                "ships onnx/model.onnx, set inferenceEngine auto or onnx (an archive of your own, "
                "sourceModelDataUrl, runs on PyTorch only)"
            )
        torch.set_num_threads(threads)
        model = AutoModel.from_pretrained(transformer_path)
        if model.dtype != torch.float32:
            model = model.float()  # half precision is slow and inexact on CPU
        return cls(model.eval())

    def token_embeddings(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """`last_hidden_state` for a tokenized batch (the tokenizer's tensors, as named)."""
        with torch.inference_mode():
            return self.model(**features, return_dict=True).last_hidden_state
