"""code/inference.py runs sentence-transformers `Dense` modules after pooling, as the library does.

Reference: `SentenceTransformer(folder).encode(...)` on a copy of all-MiniLM-L6-v2 with Dense
modules saved by sentence-transformers itself (seeded random weights); cosine ≥ 0.9999 per sentence.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer

from tests.support.models import DENSE_TYPE, container_module, with_dense

settings = container_module("model_files")
dense = container_module("dense")

MIN_COSINE = 0.9999
SENTENCES = [
    "A man is eating food.",
    "The girl is carrying a baby.",
    "  Leading and trailing spaces are ignored.  ",
    "Ein Mann isst Essen.",
    "x",
]


@pytest.fixture(scope="module")
def tanh_safetensors(tmp_path_factory) -> Path:
    """384 → 256 Tanh in model.safetensors, then Normalize (the LaBSE layout)."""
    return with_dense(tmp_path_factory.mktemp("tanh") / "model", [(384, 256, "Tanh", True)])


@pytest.fixture(scope="module")
def identity_bin(tmp_path_factory) -> Path:
    """384 → 256 Identity in pytorch_model.bin, no Normalize (distiluse / sentence-t5 layout)."""
    folder = tmp_path_factory.mktemp("identity") / "model"
    return with_dense(folder, [(384, 256, "Identity", False)], normalize=False, seed=1)


def embed(inference, folder: Path, texts, **parameters) -> dict:
    """model_fn + the toolkit hooks, as the DLC calls them."""
    loaded = inference.model_fn(str(folder))
    body = json.dumps({"inputs": texts, "parameters": parameters})
    request = inference.input_fn(body, "application/json")
    return json.loads(inference.output_fn(inference.predict_fn(request, loaded), "*/*"))


def cosines(ours: list, expected: np.ndarray) -> np.ndarray:
    got = np.asarray(ours, dtype=np.float64)
    expected = expected.astype(np.float64)
    return (got * expected).sum(1) / (
        np.linalg.norm(got, axis=1) * np.linalg.norm(expected, axis=1)
    )


def reference(folder: Path, normalize: bool) -> np.ndarray:
    model = SentenceTransformer(str(folder), device="cpu")
    return model.encode(SENTENCES, normalize_embeddings=normalize, convert_to_numpy=True)


def test_tanh_dense_in_safetensors_matches_sentence_transformers(inference, tanh_safetensors):
    response = embed(inference, tanh_safetensors, SENTENCES)
    assert response["dimensions"] == 256
    assert cosines(response["embeddings"], reference(tanh_safetensors, True)).min() >= MIN_COSINE


def test_identity_dense_in_pytorch_bin_matches_unnormalized_vectors(inference, identity_bin):
    response = embed(inference, identity_bin, SENTENCES)
    expected = reference(identity_bin, False)
    assert response["dimensions"] == 256
    assert cosines(response["embeddings"], expected).min() >= MIN_COSINE
    # Without a Normalize module the lengths are the projection's own, not 1.
    np.testing.assert_allclose(
        np.linalg.norm(response["embeddings"], axis=1), np.linalg.norm(expected, axis=1), rtol=1e-4
    )


def test_chained_dense_modules_run_in_modules_json_order(inference, tmp_path):
    folder = with_dense(tmp_path / "model", [(384, 256, "Tanh", True), (256, 64, "GELU", False)])
    response = embed(inference, folder, SENTENCES)
    assert response["dimensions"] == 64
    assert cosines(response["embeddings"], reference(folder, True)).min() >= MIN_COSINE


def test_dense_model_reports_out_features_as_dimensions(inference, tanh_safetensors):
    loaded = inference.model_fn(str(tanh_safetensors))
    assert loaded.dimensions == 256
    assert loaded.settings.dense_paths == ("2_Dense",)


def test_normalize_parameter_applies_after_the_dense_projection(inference, identity_bin):
    response = embed(inference, identity_bin, SENTENCES[:2], normalize=True)
    np.testing.assert_allclose(np.linalg.norm(response["embeddings"], axis=1), 1.0, rtol=1e-6)


# --- refusals: each names the offending file or field and what is allowed -----------------------


def dense_folder(root: Path, config: dict, weights: dict | None = None) -> Path:
    """A lone `2_Dense/` folder: `config` and (by default) matching pytorch_model.bin weights."""
    folder = root / "2_Dense"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    if weights is None:
        weights = {
            "linear.weight": torch.zeros(config["out_features"], config["in_features"]),
            "linear.bias": torch.zeros(config["out_features"]),
        }
    torch.save(weights, folder / "pytorch_model.bin")
    return folder


def test_activation_outside_the_allow_list_is_refused_naming_the_allowed(inference, tmp_path):
    config = {"in_features": 4, "out_features": 2, "activation_function": "os.system"}
    dense_folder(tmp_path, config)
    with pytest.raises(settings.ModelFilesError, match="'os.system' is not supported") as raised:
        dense.load_dense(str(tmp_path), "2_Dense")
    assert "torch.nn.modules.activation.Tanh" in str(raised.value)


def test_torch_activation_with_parameters_is_refused(inference, tmp_path):
    config = {"in_features": 4, "out_features": 2, "activation_function": "torch.nn.PReLU"}
    dense_folder(tmp_path, config)
    with pytest.raises(settings.ModelFilesError, match="2_Dense.*torch.nn.PReLU"):
        dense.load_dense(str(tmp_path), "2_Dense")


def test_missing_activation_means_tanh_as_in_sentence_transformers(inference, tmp_path):
    dense_folder(tmp_path, {"in_features": 4, "out_features": 2})
    layer = dense.load_dense(str(tmp_path), "2_Dense")
    assert isinstance(layer.activation_function, torch.nn.Tanh)


def test_token_level_dense_is_refused_naming_the_field(inference, tmp_path):
    config = {"in_features": 4, "out_features": 2, "module_input_name": "token_embeddings"}
    dense_folder(tmp_path, config)
    with pytest.raises(settings.ModelFilesError, match="module_input_name 'token_embeddings'"):
        dense.load_dense(str(tmp_path), "2_Dense")


def test_weights_that_do_not_fit_the_config_are_refused(inference, tmp_path):
    weights = {"linear.weight": torch.zeros(3, 4), "linear.bias": torch.zeros(3)}
    dense_folder(tmp_path, {"in_features": 4, "out_features": 2}, weights)
    with pytest.raises(settings.ModelFilesError, match="2_Dense weights do not fit"):
        dense.load_dense(str(tmp_path), "2_Dense")


class _RunsCodeWhenUnpickled:
    """A pickle payload: unpickling it (without weights_only) would call `marker.touch()`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickled_code_in_pytorch_bin_is_not_run(inference, tmp_path):
    marker = tmp_path / "code-ran"
    weights = {"linear.weight": torch.zeros(2, 4), "payload": _RunsCodeWhenUnpickled(marker)}
    dense_folder(tmp_path / "model", {"in_features": 4, "out_features": 2}, weights)
    with pytest.raises(settings.ModelFilesError, match="cannot read 2_Dense/pytorch_model.bin"):
        dense.load_dense(str(tmp_path / "model"), "2_Dense")
    assert not marker.exists()


def test_dense_folder_without_weights_names_the_expected_files(inference, tmp_path):
    folder = dense_folder(tmp_path, {"in_features": 4, "out_features": 2})
    (folder / "pytorch_model.bin").unlink()
    with pytest.raises(settings.ModelFilesError, match="2_Dense has no weights.*model.safetensors"):
        dense.load_dense(str(tmp_path), "2_Dense")


def test_safetensors_without_the_package_is_a_clear_error(inference, tmp_path, monkeypatch):
    folder = dense_folder(tmp_path, {"in_features": 4, "out_features": 2})
    (folder / "pytorch_model.bin").rename(folder / "model.safetensors")
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)  # as on the oldest DLC
    with pytest.raises(settings.ModelFilesError, match="needs the `safetensors` package"):
        dense.load_dense(str(tmp_path), "2_Dense")


def test_without_safetensors_package_the_pytorch_bin_beside_it_is_used(
    inference, tmp_path, monkeypatch
):
    folder = dense_folder(tmp_path, {"in_features": 4, "out_features": 2})
    (folder / "model.safetensors").write_bytes(b"not read")
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    layer = dense.load_dense(str(tmp_path), "2_Dense")
    assert layer.out_features == 2


def test_dense_input_width_must_match_the_pooled_vector(inference, tmp_path):
    folder = with_dense(tmp_path / "model", [(768, 256, "Tanh", False)])
    with pytest.raises(settings.ModelFilesError, match="in_features is 768.*384 dimensions"):
        inference.model_fn(str(folder))


def test_dense_before_pooling_is_refused(inference, tmp_path):
    (tmp_path / "modules.json").write_text(
        json.dumps(
            [
                {"path": "", "type": "sentence_transformers.models.Transformer"},
                {"path": "1_Dense", "type": DENSE_TYPE},
                {"path": "2_Pooling", "type": "sentence_transformers.models.Pooling"},
            ]
        )
    )
    with pytest.raises(settings.ModelFilesError, match="after Pooling and before Normalize"):
        settings.read_settings(str(tmp_path))


def test_custom_module_with_a_builtin_class_name_is_refused(inference, tmp_path):
    (tmp_path / "modules.json").write_text(
        json.dumps(
            [
                {"path": "", "type": "sentence_transformers.models.Transformer"},
                {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                {"path": "2_Dense", "type": "my_package.layers.Dense"},
            ]
        )
    )
    with pytest.raises(settings.ModelFilesError, match=r"my_package\.layers\.Dense \(2_Dense\)"):
        settings.read_settings(str(tmp_path))


@pytest.mark.parametrize("out_features", [4, 3], ids=["same-width", "projected"])
def test_residual_dense_matches_sentence_transformers_forward(inference, tmp_path, out_features):
    from sentence_transformers.sentence_transformer.modules import Dense

    torch.manual_seed(0)
    theirs = Dense(4, out_features, activation_function=torch.nn.GELU(), use_residual=True)
    (tmp_path / "2_Dense").mkdir()
    theirs.save(str(tmp_path / "2_Dense"))
    ours = dense.load_dense(str(tmp_path), "2_Dense")
    features = torch.randn(5, 4)
    expected = theirs({"sentence_embedding": features})["sentence_embedding"]
    torch.testing.assert_close(ours(features), expected)
