"""The ONNX engine gives sentence-transformers' vectors, for every pooling mode, Dense and options.

The model folders carry the reference transformer's ONNX export (made at test time) as
onnx/model.onnx; the reference is `SentenceTransformer(folder).encode(...)` on the same folder's
PyTorch weights. Here onnxruntime is the test venv's (the same release the archives vendor for this
Python); tests/loader/test_onnx_packaging.py runs the one vendored in an unpacked archive.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from facts.embedding_api import EmbeddingOptions
from facts.onnx_quantization import MIN_SENTENCE_COSINE
from tests.container.test_inference_correctness import LONG_TEXT, SENTENCES, cosines, embed
from tests.support.models import (
    ALL_MODES,
    DIMENSIONS,
    REFERENCE_MODEL_DIR,
    container_module,
    copy_model,
    recorded_forward_shapes,
    with_dense,
    with_onnx,
    with_pooling,
)

MIN_COSINE = 0.9999


@pytest.fixture(scope="module")
def onnx_folder(tmp_path_factory: pytest.TempPathFactory, reference_onnx_export: Path) -> Path:
    return with_onnx(copy_model(tmp_path_factory.mktemp("onnx") / "model"), reference_onnx_export)


@pytest.fixture(scope="module")
def loaded(inference, onnx_folder: Path):
    return inference.model_fn(str(onnx_folder))


@pytest.fixture(scope="module")
def reference() -> SentenceTransformer:
    return SentenceTransformer(str(REFERENCE_MODEL_DIR), device="cpu")


def test_a_folder_with_the_onnx_export_runs_the_onnx_engine(loaded):
    assert loaded.engine.name == "onnx"


def test_without_a_deployed_name_the_model_is_named_for_its_folder_not_its_base_checkpoint(
    loaded, onnx_folder: Path, monkeypatch
):
    """config.json's _name_or_path is nreimers/MiniLM-L6-H384-uncased, the weights' origin."""
    monkeypatch.delenv("EMBEDDING_MODEL_ID", raising=False)
    assert loaded.model_id == onnx_folder.name == "model"
    assert (loaded.dimensions, loaded.settings.max_seq_length) == (DIMENSIONS, 256)


def test_onnx_vectors_match_sentence_transformers(inference, loaded, reference):
    texts = [*SENTENCES, LONG_TEXT]
    ours = embed(inference, loaded, texts)
    theirs = reference.encode(texts, normalize_embeddings=True)
    assert ours.shape == (len(texts), DIMENSIONS)
    assert cosines(ours, theirs).min() >= MIN_COSINE


def test_onnx_single_text_and_a_batch_over_one_forward_pass_keep_request_order(
    inference, loaded, reference
):
    texts = [f"sentence number {i} " + "padding " * (i % 7) for i in range(70)]
    single = embed(inference, loaded, texts[5])
    assert cosines(single, reference.encode(texts[5:6])).min() >= MIN_COSINE
    ours = embed(inference, loaded, texts)
    assert cosines(ours, reference.encode(texts, normalize_embeddings=True)).min() >= MIN_COSINE


def test_a_mixed_length_batch_runs_as_shorter_passes_and_keeps_the_vectors(
    inference, loaded, reference, monkeypatch: pytest.MonkeyPatch
):
    shapes = recorded_forward_shapes(loaded.engine, monkeypatch)
    texts = [*SENTENCES[:3], LONG_TEXT, *SENTENCES[3:]]
    ours = embed(inference, loaded, texts)
    # The long text alone at 256 tokens; the short ones padded only to their own longest.
    assert shapes[0] == (1, 256)
    assert sum(rows for rows, _ in shapes) == len(texts)
    assert all(tokens < 32 for _, tokens in shapes[1:])
    assert cosines(ours, reference.encode(texts, normalize_embeddings=True)).min() >= MIN_COSINE


def test_onnx_honours_the_request_options_shared_with_torch(inference, loaded, reference):
    raw = embed(inference, loaded, SENTENCES[:3], normalize=False)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-3)
    assert cosines(raw, reference.encode(SENTENCES[:3])).min() >= MIN_COSINE
    with pytest.raises(Exception, match="max_seq_length"):
        embed(inference, loaded, [LONG_TEXT], truncate=False)


@pytest.mark.parametrize(
    "pooling",
    [
        {"word_embedding_dimension": DIMENSIONS, "pooling_mode_cls_token": True},
        {"word_embedding_dimension": DIMENSIONS, "pooling_mode_max_tokens": True},
        {"word_embedding_dimension": DIMENSIONS, "pooling_mode_lasttoken": True},
        {"word_embedding_dimension": DIMENSIONS, "pooling_mode_mean_sqrt_len_tokens": True},
        {"embedding_dimension": DIMENSIONS, "pooling_mode": "weightedmean"},
        ALL_MODES,
    ],
    ids=["cls", "max", "lasttoken", "mean_sqrt_len", "weightedmean", "all-modes"],
)
def test_every_pooling_mode_on_onnx_matches_sentence_transformers(
    inference, tmp_path: Path, reference_onnx_export: Path, pooling: dict
):
    folder = with_onnx(with_pooling(tmp_path / "model", pooling), reference_onnx_export)
    model = inference.model_fn(str(folder))
    assert model.engine.name == "onnx"
    texts = [SENTENCES[0], SENTENCES[2], SENTENCES[5], LONG_TEXT]
    ours = embed(inference, model, texts)
    theirs = SentenceTransformer(str(folder), device="cpu").encode(texts, normalize_embeddings=True)
    assert ours.shape == theirs.shape
    assert cosines(ours, theirs).min() >= MIN_COSINE


def test_dense_modules_run_after_the_onnx_transformer(
    inference, tmp_path: Path, reference_onnx_export: Path
):
    layers = [(384, 256, "Tanh", True), (256, 128, "Identity", False)]
    folder = with_onnx(with_dense(tmp_path / "model", layers), reference_onnx_export)
    model = inference.model_fn(str(folder))
    assert (model.engine.name, model.dimensions) == ("onnx", 128)
    ours = embed(inference, model, SENTENCES)
    theirs = SentenceTransformer(str(folder), device="cpu").encode(
        SENTENCES, normalize_embeddings=True
    )
    assert cosines(ours, theirs).min() >= MIN_COSINE


def test_session_uses_one_thread_per_vcpu_and_every_graph_optimization(loaded):
    import onnxruntime

    options = loaded.engine.session.get_session_options()
    threads = container_module("environment").read_environment().intra_op_threads()
    assert options.intra_op_num_threads == threads
    assert options.graph_optimization_level == onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert loaded.engine.session.get_providers() == ["CPUExecutionProvider"]


def test_thread_override_reaches_the_onnx_session(
    inference, onnx_folder: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("EMBEDDING_NUM_THREADS", "1")
    model = inference.model_fn(str(onnx_folder))
    assert model.engine.session.get_session_options().intra_op_num_threads == 1


def test_torch_keeps_one_thread_beside_the_onnx_session(
    inference, onnx_folder: Path, monkeypatch: pytest.MonkeyPatch
):
    import torch

    before = torch.get_num_threads()
    monkeypatch.setenv("EMBEDDING_NUM_THREADS", "2")
    try:
        model = inference.model_fn(str(onnx_folder))
        assert model.engine.session.get_session_options().intra_op_num_threads == 2
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_load_log_line_names_the_engine(
    inference, onnx_folder: Path, caplog: pytest.LogCaptureFixture
):
    with caplog.at_level(logging.INFO):
        inference.model_fn(str(onnx_folder))
    assert any("engine=onnx" in record.getMessage() for record in caplog.records)


def test_info_request_reports_the_engine(inference, loaded):
    request = inference.input_fn(json.dumps({"info": True}), "application/json")
    answer = json.loads(inference.output_fn(inference.predict_fn(request, loaded), "*/*"))
    assert answer["engine"] == "onnx"


def test_embedding_engine_torch_forces_pytorch_on_a_folder_with_both(
    inference, onnx_folder: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("EMBEDDING_ENGINE", "torch")
    assert inference.model_fn(str(onnx_folder)).engine.name == "torch"


def test_a_folder_without_the_export_runs_pytorch(inference):
    assert inference.model_fn(str(REFERENCE_MODEL_DIR)).engine.name == "torch"


def test_embedding_engine_onnx_without_the_export_names_the_missing_file(
    inference, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("EMBEDDING_ENGINE", "onnx")
    with pytest.raises(
        ValueError, match=r"needs onnx/model.onnx \(or another graph in onnx/\), which is not in"
    ):
        inference.model_fn(str(REFERENCE_MODEL_DIR))


def test_an_unknown_embedding_engine_is_refused_listing_the_engines(
    inference, onnx_folder: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("EMBEDDING_ENGINE", "tensorrt")
    with pytest.raises(ValueError, match=r"EMBEDDING_ENGINE is 'tensorrt'; expected one of"):
        inference.model_fn(str(onnx_folder))


def test_a_runtime_that_cannot_be_imported_fails_the_load_saying_why(
    inference, onnx_folder: Path, monkeypatch: pytest.MonkeyPatch
):
    # `None` in sys.modules makes `import onnxruntime` raise ImportError, as a missing or
    # wrong-Python copy in code/ does; the load must fail, not fall back to PyTorch.
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ValueError, match="importing onnxruntime failed") as failure:
        inference.model_fn(str(onnx_folder))
    assert "inferenceEngine torch" in str(failure.value)


def test_an_archive_with_another_graph_runs_it_and_says_so(
    inference, tmp_path: Path, reference_onnx_o2: Path, reference, caplog: pytest.LogCaptureFixture
):
    """What the loader packages for onnxFile onnx/model_O2.onnx: that graph alone in onnx/."""
    folder = copy_model(tmp_path / "model")
    (folder / "onnx").mkdir()
    (folder / "onnx" / "model_O2.onnx").symlink_to(reference_onnx_o2)
    with caplog.at_level(logging.INFO):
        model = inference.model_fn(str(folder))
    assert (model.engine.name, model.engine.graph) == ("onnx", "onnx/model_O2.onnx")
    assert any("graph=onnx/model_O2.onnx" in record.getMessage() for record in caplog.records)
    request = inference.input_fn(json.dumps({"info": True}), "application/json")
    answer = json.loads(inference.output_fn(inference.predict_fn(request, model), "*/*"))
    assert answer["onnx_graph"] == "onnx/model_O2.onnx"
    texts = [*SENTENCES, LONG_TEXT]
    theirs = reference.encode(texts, normalize_embeddings=True)
    assert cosines(embed(inference, model, texts), theirs).min() >= MIN_COSINE


def test_a_folder_with_several_graphs_runs_model_onnx(inference, onnx_folder: Path, tmp_path: Path):
    folder = copy_model(tmp_path / "model")
    (folder / "onnx").mkdir()
    (folder / "onnx" / "model.onnx").symlink_to(onnx_folder / "onnx" / "model.onnx")
    (folder / "onnx" / "model_qint8_avx512.onnx").write_bytes(b"another graph, not loaded")
    assert inference.model_fn(str(folder)).engine.graph == "onnx/model.onnx"


def test_several_graphs_and_no_model_onnx_fail_the_load_listing_them(inference, tmp_path: Path):
    folder = copy_model(tmp_path / "model")
    (folder / "onnx").mkdir()
    for name in ("model_O1.onnx", "model_O2.onnx"):
        (folder / "onnx" / name).write_bytes(b"graph")
    with pytest.raises(ValueError, match=r"holds the graphs \['onnx/model_O1.onnx', 'onnx/mo"):
        inference.model_fn(str(folder))


def test_a_root_graph_beside_pytorch_weights_is_not_the_onnx_engines(inference, tmp_path: Path):
    """A training output that also exported a graph (repackaged without a runtime) runs on
    PyTorch; the reference folder holds model.safetensors at its root."""
    folder = copy_model(tmp_path / "model")
    for name in ("model.onnx", "model_quantized.onnx"):
        (folder / name).write_bytes(b"a graph the archive did not ask for")
    model = inference.model_fn(str(folder))
    assert model.engine.name == "torch"


def test_a_file_that_is_not_an_onnx_graph_fails_the_load_naming_it(inference, tmp_path: Path):
    folder = copy_model(tmp_path / "model")
    (folder / "onnx").mkdir()
    (folder / "onnx" / "model.onnx").write_bytes(b"not a graph")
    with pytest.raises(ValueError, match=r"onnx/model.onnx: the graph cannot be checked"):
        inference.model_fn(str(folder))


def test_a_graph_taking_position_ids_but_no_token_type_ids_is_fed_as_transformers_would(
    inference, tmp_path: Path, reference
):
    from scripts.export_onnx import export_transformer

    export = export_transformer(
        REFERENCE_MODEL_DIR,
        tmp_path / "export" / "model.onnx",
        inputs=("input_ids", "attention_mask", "position_ids"),
    )
    model = inference.model_fn(str(with_onnx(copy_model(tmp_path / "model"), export)))
    assert [name for name, _ in model.engine.inputs] == [
        "input_ids",
        "attention_mask",
        "position_ids",
    ]
    texts = [*SENTENCES, LONG_TEXT]
    ours = embed(inference, model, texts)
    assert cosines(ours, reference.encode(texts, normalize_embeddings=True)).min() >= MIN_COSINE


def test_a_graph_with_a_fixed_batch_size_fails_the_load_instead_of_later_requests(
    inference, tmp_path: Path, reference_onnx_export: Path
):
    import onnx

    graph = onnx.load(str(reference_onnx_export))
    for tensor in graph.graph.input:
        tensor.type.tensor_type.shape.dim[0].dim_value = 8  # batch fixed at 8, as some exports
    folder = copy_model(tmp_path / "model")
    (folder / "onnx").mkdir()
    onnx.save(graph, str(folder / "onnx" / "model.onnx"))
    with pytest.raises(ValueError, match=r"fixed input dimensions .*'input_ids': \[8, ") as failure:
        inference.model_fn(str(folder))
    assert "inferenceEngine torch" in str(failure.value)


@pytest.fixture(scope="module")
def int8_loaded(inference, tmp_path_factory: pytest.TempPathFactory, reference_onnx_int8: Path):
    folder = copy_model(tmp_path_factory.mktemp("int8") / "model")
    return inference.model_fn(str(with_onnx(folder, reference_onnx_int8)))


def test_an_int8_vector_moves_a_little_with_the_texts_beside_it(int8_loaded):
    """Dynamic quantization scales each activation tensor by its own range, the batch's: a text's
    vector alone and in a batch differ (docs/inference.md), within the loader's cosine bar."""
    texts = [*SENTENCES, "a much longer sentence about the weather, the sea and the mountains"]
    alone = np.stack([int8_loaded.embed([text], EmbeddingOptions())[0][0] for text in texts])
    together, _ = int8_loaded.embed(texts, EmbeddingOptions())
    cosine = (alone * together).sum(axis=1)  # both unit length
    assert cosine.min() >= MIN_SENTENCE_COSINE
