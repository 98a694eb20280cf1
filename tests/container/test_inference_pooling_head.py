"""The ONNX engine takes a graph's mean-pooling head (loader/pooling_head.py) when a request can.

The head's vectors are the token path's: the same folder is loaded twice, once with the head and
once without, and every request shape is compared; a spy on `session.run` shows which output
each request fetched.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest

from facts.onnx_runtime import MEAN_POOLED_OUTPUT, UNIT_MEAN_POOLED_OUTPUT
from facts.sentence_modules import ModelFilesError
from loader.pooling_head import add_mean_head
from tests.container.test_inference_correctness import LONG_TEXT, SENTENCES, embed
from tests.support.models import DIMENSIONS, copy_model, with_onnx, with_pooling

TOKENS = "last_hidden_state"


def headed(export: Path, destination: Path, *, wrong: bool = False) -> Path:
    """`export` with the loader's pooling head; `wrong`: its mean multiplies where it divides."""
    model = onnx.load(str(export))
    assert add_mean_head(model)
    if wrong:
        node = next(node for node in model.graph.node if MEAN_POOLED_OUTPUT in node.output)
        node.op_type = "Mul"
    onnx.save(model, str(destination))
    return destination


@pytest.fixture(scope="module")
def headed_export(tmp_path_factory: pytest.TempPathFactory, reference_onnx_export: Path) -> Path:
    return headed(reference_onnx_export, tmp_path_factory.mktemp("head") / "model.onnx")


@pytest.fixture(scope="module")
def with_head(inference, tmp_path_factory: pytest.TempPathFactory, headed_export: Path):
    folder = copy_model(tmp_path_factory.mktemp("with-head") / "model")
    return inference.model_fn(str(with_onnx(folder, headed_export)))


@pytest.fixture(scope="module")
def without_head(inference, tmp_path_factory: pytest.TempPathFactory, reference_onnx_export):
    folder = copy_model(tmp_path_factory.mktemp("without-head") / "model")
    return inference.model_fn(str(with_onnx(folder, reference_onnx_export)))


@pytest.fixture
def fetched(with_head, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The outputs every `session.run` of the headed engine asks for, from now on."""
    names: list[str] = []
    session = with_head.engine.session
    run = session.run

    def spy(outputs, feeds, *args):
        names.extend(outputs)
        return run(outputs, feeds, *args)

    monkeypatch.setattr(session, "run", spy)
    return names


def test_a_graph_with_the_head_is_taken_as_having_one(with_head, without_head):
    assert with_head.engine.mean_head
    assert not without_head.engine.mean_head


@pytest.mark.parametrize(
    "parameters",
    [{}, {"normalize": False}, {"dimensions": 64}, {"dimensions": 64, "normalize": False}],
    ids=["unit", "raw", "matryoshka", "matryoshka-raw"],
)
@pytest.mark.parametrize("count", [1, 9], ids=["one-text", "padded-batch"])
def test_the_head_gives_the_token_paths_vectors(
    inference, with_head, without_head, parameters, count
):
    texts = [*SENTENCES, LONG_TEXT][:count] if count > 1 else SENTENCES[0]
    ours = embed(inference, with_head, texts, **parameters)
    theirs = embed(inference, without_head, texts, **parameters)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=2e-6)


@pytest.mark.parametrize(
    ("parameters", "output"),
    [
        ({}, UNIT_MEAN_POOLED_OUTPUT),
        ({"normalize": False}, MEAN_POOLED_OUTPUT),
        ({"dimensions": 64}, MEAN_POOLED_OUTPUT),  # cut first, then normalized
    ],
    ids=["unit", "raw", "matryoshka"],
)
def test_each_request_fetches_the_one_output_it_needs(
    inference, with_head, fetched, parameters, output
):
    vectors = embed(inference, with_head, SENTENCES[:3], **parameters)
    assert set(fetched) == {output}
    if parameters.get("normalize", True):
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_a_prompt_left_out_of_the_mean_pools_the_token_vectors(inference, with_head, fetched):
    settings = replace(with_head.settings, prompts={"query": "query: "}, include_prompt=False)
    model = replace(with_head, settings=settings)
    embed(inference, model, SENTENCES[:2], prompt_name="query")
    assert set(fetched) == {TOKENS}


def test_a_model_pooling_by_cls_pools_the_token_vectors(
    inference, tmp_path: Path, headed_export: Path, monkeypatch: pytest.MonkeyPatch
):
    pooling = {"word_embedding_dimension": DIMENSIONS, "pooling_mode_cls_token": True}
    folder = with_onnx(with_pooling(tmp_path / "model", pooling), headed_export)
    model = inference.model_fn(str(folder))
    calls = []
    monkeypatch.setattr(model.engine, "mean_pooled", lambda *args: calls.append(args))
    embed(inference, model, SENTENCES[:2])
    assert model.engine.mean_head and calls == []


def test_a_graph_whose_head_is_not_the_mean_fails_the_load(
    inference, tmp_path: Path, reference_onnx_export: Path
):
    graph = headed(reference_onnx_export, tmp_path / "wrong.onnx", wrong=True)
    folder = with_onnx(copy_model(tmp_path / "model"), graph)
    with pytest.raises(ModelFilesError, match=f"'{MEAN_POOLED_OUTPUT}' and .* its mean is "):
        inference.model_fn(str(folder))
