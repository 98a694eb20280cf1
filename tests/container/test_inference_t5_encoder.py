"""A sentence-t5 / GTR-style model: a T5 encoder alone, as sentence-transformers loads it.

AutoModel would build the whole encoder-decoder T5Model and find every decoder weight missing.
The model here is a tiny T5 encoder with random weights, saved with the reference model's
tokenizer (told not to make token type ids, as T5's own tokenizer does not) and mean pooling;
the reference is `SentenceTransformer` on the same folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer
from transformers import T5Config, T5EncoderModel

from tests.container.test_inference_correctness import SENTENCES, cosines, embed
from tests.support.models import REFERENCE_MODEL_DIR, import_inference

WIDTH = 32
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
)


@pytest.fixture(scope="module")
def t5_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("t5") / "model"
    torch.manual_seed(0)
    config = T5Config(vocab_size=30522, d_model=WIDTH, d_kv=8, d_ff=64, num_layers=2, num_heads=4)
    T5EncoderModel(config).save_pretrained(str(folder))
    for name in TOKENIZER_FILES:
        shutil.copy(REFERENCE_MODEL_DIR / name, folder / name)
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    tokenizer_config["model_input_names"] = ["input_ids", "attention_mask"]
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    (folder / "1_Pooling").mkdir()
    pooling = {"word_embedding_dimension": WIDTH, "pooling_mode_mean_tokens": True}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128}))
    return folder


def test_a_t5_encoder_runs_as_its_encoder_class_with_the_reference_vectors(t5_folder: Path):
    inference = import_inference()
    loaded = inference.model_fn(str(t5_folder))
    assert type(loaded.engine.model).__name__ == "T5EncoderModel"
    ours = np.asarray(embed(inference, loaded, SENTENCES))
    reference = SentenceTransformer(str(t5_folder), device="cpu")
    theirs = reference.encode(SENTENCES)
    assert ours.shape == (len(SENTENCES), WIDTH)
    assert min(cosines(ours, theirs)) >= 0.9999
