"""loader/graph_fusion.py: an export fused as the Hub's O2, or shipped as it is, saying why."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from facts.onnx_fusion import MIN_TOKEN_COSINE
from loader import graph_fusion
from loader.graph_fusion import FusionUnavailable, explicit_head_counts, fuse_graph
from tests.fixtures.onnx_export import FUSED_LIKE_THE_HUBS_O2

LAYERS = 6  # all-MiniLM-L6-v2: a query, key and value reshape per layer


def test_the_export_fuses_as_the_hubs_o2_and_checks_out(reference_onnx_export, tmp_path):
    report = fuse_graph(reference_onnx_export, tmp_path / "fused.onnx")
    assert report.applied, report.reason
    assert report.fused == FUSED_LIKE_THE_HUBS_O2
    assert report.min_cosine >= MIN_TOKEN_COSINE
    assert report.describe().startswith("fused 6 Attention, 6 BiasGelu, 1 EmbedLayerNormalization")


def test_fusing_twice_gives_the_same_bytes(reference_onnx_export, reference_onnx_o2, tmp_path):
    fuse_graph(reference_onnx_export, tmp_path / "again.onnx")
    assert (tmp_path / "again.onnx").read_bytes() == reference_onnx_o2.read_bytes()


def test_a_graph_already_fused_ships_as_it_is(reference_onnx_o2, tmp_path):
    report = fuse_graph(reference_onnx_o2, tmp_path / "fused.onnx")
    assert report.reason == "nothing in the graph matches the optimizer's fusions"
    assert report.describe().startswith("packaged unfused: nothing in the graph matches")
    assert not (tmp_path / "fused.onnx").exists()


def test_a_fused_graph_with_other_vectors_is_not_shipped(
    reference_onnx_export, tmp_path, monkeypatch
):
    monkeypatch.setattr(graph_fusion, "MIN_TOKEN_COSINE", 1.5)  # no graph can pass
    report = fuse_graph(reference_onnx_export, tmp_path / "fused.onnx")
    assert report.reason.startswith("its token vectors differ (cosine ")
    assert report.min_cosine == pytest.approx(1.0, abs=1e-4)
    assert report.fused == FUSED_LIKE_THE_HUBS_O2  # it fused, and was still refused
    assert not (tmp_path / "fused.onnx").exists()


def test_an_optimizer_failure_ships_the_export(reference_onnx_export, tmp_path, monkeypatch):
    from onnxruntime.transformers import optimizer

    def broken(*args, **kwargs):
        raise IndexError("list index out of range")

    monkeypatch.setattr(optimizer, "optimize_model", broken)
    report = fuse_graph(reference_onnx_export, tmp_path / "fused.onnx")
    assert report.reason == "the optimizer failed: IndexError: list index out of range"
    assert not (tmp_path / "fused.onnx").exists()


def test_a_file_that_is_no_graph_ships_as_it_is(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"not a graph")
    report = fuse_graph(tmp_path / "model.onnx", tmp_path / "fused.onnx")
    assert report.reason.startswith("it is not an ONNX graph: DecodeError")


def test_a_graph_over_the_bound_is_not_read(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"\0" * 2048)
    report = fuse_graph(tmp_path / "model.onnx", tmp_path / "fused.onnx", max_bytes=1024)
    assert report.reason == "the graph is 2048 bytes, over 1024"


def test_a_graph_with_its_weights_beside_it_ships_as_it_is(reference_onnx_export, tmp_path):
    graph = onnx.load(str(reference_onnx_export))
    onnx.save(graph, str(tmp_path / "model.onnx"), save_as_external_data=True, location="data")
    report = fuse_graph(tmp_path / "model.onnx", tmp_path / "fused.onnx")
    assert report.reason == "the graph keeps its weights in a file beside it"


def test_another_optimizer_version_is_refused_rather_than_make_other_bytes(
    reference_onnx_export, tmp_path, monkeypatch
):
    monkeypatch.setattr(graph_fusion, "FUSION_PACKAGES", (("onnxruntime", "9.9.9"),))
    with pytest.raises(FusionUnavailable, match=r"needs onnxruntime==9\.9\.9; this Python has"):
        fuse_graph(reference_onnx_export, tmp_path / "fused.onnx")


def test_head_counts_are_made_explicit_without_changing_the_graph(
    reference_onnx_export: Path, tmp_path: Path
):
    graph = onnx.load(str(reference_onnx_export))
    assert explicit_head_counts(graph) == 3 * LAYERS
    assert explicit_head_counts(graph) == 0  # nothing left to rewrite
    batch = graph_fusion.check_batch(graph_fusion.vocabulary_size(graph))
    before = graph_fusion.token_vectors(reference_onnx_export, batch)
    rewritten = tmp_path / "rewritten.onnx"
    onnx.save(graph, str(rewritten))
    after = graph_fusion.token_vectors(rewritten, batch)
    assert (before == after).all()


def tiny_model(kind: str, folder: Path) -> Path:
    """A random-weight encoder of the architecture `kind` (hidden 64, 2 layers), saved."""
    import torch
    from transformers import (
        DistilBertConfig,
        DistilBertModel,
        MPNetConfig,
        MPNetModel,
        RobertaConfig,
        RobertaModel,
    )

    torch.manual_seed(0)
    small = {"vocab_size": 1000, "num_hidden_layers": 2, "num_attention_heads": 4}
    models = {
        "roberta": lambda: RobertaModel(
            RobertaConfig(**small, hidden_size=64, intermediate_size=128)
        ),
        "mpnet": lambda: MPNetModel(MPNetConfig(**small, hidden_size=64, intermediate_size=128)),
        "distilbert": lambda: DistilBertModel(
            DistilBertConfig(vocab_size=1000, dim=64, n_layers=2, n_heads=4, hidden_dim=128)
        ),
    }
    models[kind]().save_pretrained(folder)
    return folder


@pytest.mark.parametrize(
    ("kind", "fused"),
    [
        # RoBERTa's positions skip the padding id: its embeddings stay as they are.
        ("roberta", {"Attention": 2, "BiasGelu": 2, "SkipLayerNormalization": 4}),
        # MPNet's relative position bias is not the optimizer's attention pattern.
        ("mpnet", {"BiasGelu": 2, "SkipLayerNormalization": 5}),
        (
            "distilbert",
            {
                "Attention": 2,
                "BiasGelu": 2,
                "EmbedLayerNormalization": 1,
                "SkipLayerNormalization": 4,
            },
        ),
    ],
)
def test_other_encoders_fuse_what_matches_and_keep_their_vectors(kind, fused, tmp_path):
    from scripts.export_onnx import export_transformer

    model = tiny_model(kind, tmp_path / kind)
    inputs = ("input_ids", "attention_mask")
    export = export_transformer(model, model / "onnx" / "model.onnx", inputs)
    report = fuse_graph(export, tmp_path / "fused.onnx")
    assert report.applied, report.reason
    assert report.fused == fused
    assert report.min_cosine >= MIN_TOKEN_COSINE
