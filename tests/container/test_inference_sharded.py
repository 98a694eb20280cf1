"""Checkpoint and tokenizer files transformers would open with pickle never load; a sharded
checkpoint loads through its index.

transformers opens whatever an index's `weight_map` names, and a name that does not end in
`.safetensors` with torch.load: the container refuses such an index before transformers reads it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from facts.sentence_modules import ModelFilesError
from tests.support.models import copy_model

SHARD = "model-00001-of-00001.safetensors"
INDEX = "model.safetensors.index.json"


def sharded_copy(folder: Path, redirect: dict[str, str] | None = None) -> Path:
    """The reference model with its weights as one shard behind an index (some tensors
    sent elsewhere by `redirect`: tensor name → file)."""
    copy_model(folder)
    (folder / "model.safetensors").rename(folder / SHARD)
    with safe_open(str(folder / SHARD), framework="numpy") as weights:
        weight_map = {name: SHARD for name in weights.keys()}
    weight_map.update(redirect or {})
    (folder / INDEX).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return folder


def vectors(inference, loaded, texts: list[str]) -> np.ndarray:
    request = inference.input_fn(json.dumps({"inputs": texts}), "application/json")
    answer = json.loads(inference.output_fn(inference.predict_fn(request, loaded), "*/*"))
    return np.asarray(answer["embeddings"])


def test_a_sharded_checkpoint_gives_the_vectors_of_the_single_file(inference, loaded, tmp_path):
    sharded = inference.model_fn(str(sharded_copy(tmp_path / "sharded")))
    texts = ["A man is eating food.", "The weather is lovely today."]
    expected = vectors(inference, loaded, texts)
    np.testing.assert_allclose(vectors(inference, sharded, texts), expected, atol=1e-6)


def test_an_index_sending_a_tensor_to_another_file_fails_the_load(inference, tmp_path):
    folder = sharded_copy(tmp_path / "foreign", {"pooler.dense.bias": "notes.txt"})
    (folder / "notes.txt").write_bytes(b"PK\x03\x04 not weights")
    with pytest.raises(ModelFilesError, match=r"sends tensors to \['notes.txt'\]"):
        inference.model_fn(str(folder))


def test_an_adapter_config_fails_the_load(inference, tmp_path):
    """With peft installed, transformers would load its base model from the Hub instead."""
    folder = copy_model(tmp_path / "adapter")
    (folder / "adapter_config.json").write_text('{"base_model_name_or_path": "org/other"}')
    with pytest.raises(ModelFilesError, match="adapter_config.json is an adapter's"):
        inference.model_fn(str(folder))


def test_a_tokenizer_that_unpickles_its_vocabulary_fails_the_load(inference, tmp_path):
    folder = copy_model(tmp_path / "transfo")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["tokenizer_class"] = "TransfoXLTokenizer"
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFilesError, match="reads that tokenizer's vocabulary with pickle"):
        inference.model_fn(str(folder))


def test_a_leftover_index_beside_the_single_file_is_not_read(inference, tmp_path):
    folder = copy_model(tmp_path / "leftover")
    stale = {"weight_map": {"pooler.dense.bias": "notes.txt"}}
    (folder / INDEX).write_text(json.dumps(stale))  # transformers reads model.safetensors
    assert inference.model_fn(str(folder)).dimensions == 384
