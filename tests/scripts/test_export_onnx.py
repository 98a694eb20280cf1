"""scripts/export_onnx.py: exports that give the model's vectors, and fuse as the Hub's do."""

from __future__ import annotations

import pytest
import torch

from scripts import export_onnx
from tests.support.models import REFERENCE_MODEL_DIR


def reference_vectors(examples: dict) -> object:
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(REFERENCE_MODEL_DIR)).eval()
    names = export_onnx.ONNX_INPUTS
    with torch.no_grad():
        return model(**{name: examples[name] for name in names}).last_hidden_state.numpy()


def test_the_export_gives_the_models_token_vectors_on_a_padded_batch(reference_onnx_export):
    examples = export_onnx.check_batch(vocab_size=30522)
    expected = reference_vectors(examples)
    assert export_onnx.export_mismatch(reference_onnx_export, examples, expected) == ""
    wrong = expected.copy()
    wrong[1, :3] *= -1  # real tokens of the padded row
    cosine = export_onnx.export_token_cosine(reference_onnx_export, examples, wrong)
    assert cosine == pytest.approx(-1.0, abs=1e-4)
    problem = export_onnx.export_mismatch(reference_onnx_export, examples, wrong)
    assert problem.startswith("token cosine ") and "on a padded batch" in problem, problem


def test_a_model_that_ignores_the_additive_mask_is_exported_with_its_own(monkeypatch, tmp_path):
    """The additive mask made wrong (it attends to padding): that export fails its check, and the
    script exports again with the model's 2-D mask rather than keep a graph with other vectors."""
    tried = []
    export = export_onnx._export

    def recorded(model, inputs, destination, additive, examples):
        tried.append(additive)
        export(model, inputs, destination, additive, examples)

    monkeypatch.setattr(export_onnx, "_export", recorded)
    monkeypatch.setattr(
        export_onnx, "additive_mask", lambda mask: torch.zeros(mask.shape[0], 1, 1, 1)
    )
    graph = export_onnx.export_transformer(REFERENCE_MODEL_DIR, tmp_path / "model.onnx")
    assert tried == [True, False]
    examples = export_onnx.check_batch(vocab_size=30522)
    assert export_onnx.export_mismatch(graph, examples, reference_vectors(examples)) == ""


def test_fuse_refuses_a_graph_with_nothing_to_fuse(reference_onnx_o2, tmp_path):
    with pytest.raises(export_onnx.GraphNotFused, match="nothing in the graph matches"):
        export_onnx.fuse_like_optimum_o2(reference_onnx_o2, tmp_path / "again.onnx")
    assert not (tmp_path / "again.onnx").exists()


def test_an_export_that_never_matches_fails_naming_the_file(monkeypatch, tmp_path):
    monkeypatch.setattr(export_onnx, "MIN_TOKEN_COSINE", 1.5)  # no export can pass
    with pytest.raises(export_onnx.ExportMismatch, match=r"model.onnx does not give the model's"):
        export_onnx.export_transformer(REFERENCE_MODEL_DIR, tmp_path / "model.onnx")
