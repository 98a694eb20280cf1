"""A model that is its repository's own code (config.json `auto_map`): ONNX serves, torch refuses.

The folders are the reference model with its ONNX export and a config.json rewritten as such
repositories write it: jina-embeddings-v2 keeps `model_type: bert` and maps AutoConfig/AutoModel
to its own classes; nomic-embed-text names a type transformers does not know and its width
`n_embd`. The export stands in for the repository's own graph, so the ONNX engine must give the
reference's vectors without reading the config through transformers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from tests.container.test_inference_correctness import SENTENCES, cosines, embed
from tests.support.models import (
    DIMENSIONS,
    REFERENCE_MODEL_DIR,
    copy_model,
    with_onnx,
)

MIN_COSINE = 0.9999
JINA_STYLE = {
    "model_type": "bert",
    "auto_map": {
        "AutoConfig": "jinaai/jina-bert-implementation--configuration_bert.JinaBertConfig",
        "AutoModel": "jinaai/jina-bert-implementation--modeling_bert.JinaBertModel",
    },
}
NOMIC_STYLE = {
    "model_type": "nomic_bert",
    "n_embd": DIMENSIONS,
    "auto_map": {
        "AutoConfig": "nomic-ai/nomic-bert-2048--configuration_hf_nomic_bert.NomicBertConfig",
        "AutoModel": "nomic-ai/nomic-bert-2048--modeling_hf_nomic_bert.NomicBertModel",
    },
}


@pytest.fixture(scope="module")
def reference() -> SentenceTransformer:
    return SentenceTransformer(str(REFERENCE_MODEL_DIR), device="cpu")


def custom_code_folder(folder: Path, export: Path, changes: dict, drop: tuple[str, ...]) -> Path:
    """The reference model with its export, its config.json rewritten by `changes` less `drop`."""
    with_onnx(copy_model(folder), export)
    config = json.loads((folder / "config.json").read_text())
    config = {key: value for key, value in {**config, **changes}.items() if key not in drop}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def nomic_style_folder(folder: Path, export: Path) -> Path:
    """nomic-embed-text's config: its own model_type, `n_embd`, no position table."""
    return custom_code_folder(
        folder, export, NOMIC_STYLE, ("hidden_size", "max_position_embeddings")
    )


@pytest.fixture(scope="module", params=["jina-style", "nomic-style"])
def folder(request, tmp_path_factory: pytest.TempPathFactory, reference_onnx_export: Path) -> Path:
    model = tmp_path_factory.mktemp(request.param) / "model"
    if request.param == "nomic-style":
        return nomic_style_folder(model, reference_onnx_export)
    return custom_code_folder(model, reference_onnx_export, JINA_STYLE, ())


def test_the_onnx_engine_serves_it_with_the_reference_vectors(inference, folder, reference):
    loaded = inference.model_fn(str(folder))
    assert (loaded.engine.name, loaded.dimensions) == ("onnx", DIMENSIONS)
    ours = np.asarray(embed(inference, loaded, SENTENCES))
    theirs = reference.encode(SENTENCES, normalize_embeddings=True)
    assert min(cosines(ours, theirs)) >= MIN_COSINE


def test_pytorch_refuses_it_naming_the_classes_instead_of_building_the_wrong_model(
    inference, folder, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("EMBEDDING_ENGINE", "torch")
    with pytest.raises(ValueError, match="the PyTorch engine cannot run this model") as refused:
        inference.model_fn(str(folder))
    message = str(refused.value)
    assert "AutoModel to 'jinaai/" in message or "AutoModel to 'nomic-ai/" in message
    assert "inferenceEngine auto or onnx" in message


def test_an_auto_map_for_other_heads_only_leaves_pytorch_its_own_model(inference, tmp_path: Path):
    # Many standard models map only task heads (a classifier) to code; AutoModel stays theirs.
    folder = copy_model(tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "org/code--modeling.Classifier"}
    (folder / "config.json").write_text(json.dumps(config))
    assert inference.model_fn(str(folder)).engine.name == "torch"


def test_the_vector_size_comes_from_the_graph_not_the_config(
    inference, tmp_path: Path, reference_onnx_export: Path
):
    # A config whose width says something else (or nothing) does not decide the dimensions.
    folder = custom_code_folder(
        tmp_path / "model", reference_onnx_export, {"hidden_size": 1024}, ()
    )
    assert inference.model_fn(str(folder)).dimensions == DIMENSIONS


def rewrite_weights(folder: Path, keep) -> Path:
    """`folder` with its model.safetensors holding only the tensors `keep(name)` accepts."""
    from safetensors.torch import load_file, save_file

    weights = folder / "model.safetensors"
    tensors = load_file(str(weights))
    save_file({name: t for name, t in tensors.items() if keep(name)}, str(weights))
    return folder


def test_weights_saved_for_another_architecture_fail_the_load_instead_of_going_random(
    inference, tmp_path: Path
):
    # jina's weights loaded as transformers' BertModel: no position table, other MLP names.
    folder = rewrite_weights(
        copy_model(tmp_path / "model"),
        lambda name: "position_embeddings" not in name and "intermediate.dense" not in name,
    )
    with pytest.raises(
        ValueError, match="the checkpoint does not fit transformers' BertModel"
    ) as failure:
        inference.model_fn(str(folder))
    message = str(failure.value)
    assert "13 of its weights are missing (embeddings.position_embeddings.weight" in message
    assert "would be random" in message


def test_a_checkpoint_without_the_pooler_loads_as_before(inference, tmp_path: Path, reference):
    folder = rewrite_weights(copy_model(tmp_path / "model"), lambda name: "pooler" not in name)
    loaded = inference.model_fn(str(folder))
    ours = np.asarray(embed(inference, loaded, SENTENCES))
    theirs = reference.encode(SENTENCES, normalize_embeddings=True)
    assert min(cosines(ours, theirs)) >= MIN_COSINE
