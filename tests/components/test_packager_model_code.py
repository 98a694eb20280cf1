"""A model that is its repository's own code is refused at preview unless the ONNX engine runs it.

Real huggingface_hub against the Hub fixture: `check` downloads config.json at the pinned commit,
as it would from huggingface.co, and reads its `auto_map` (facts/model_code.py).
"""

from __future__ import annotations

import json

import pytest

from components.packager_provider import PackagerProvider
from facts.onnx_runtime import RuntimeWheel
from tests.fixtures.hub import HubServer, make_repo
from tests.support.packager import resource_inputs

UNREACHABLE_HUB = "http://127.0.0.1:9"
JINA_STYLE = "test-org/jina-style"
JINA_COMMIT = "7777777777777777777777777777777777777777"
NO_EXPORT = "test-org/custom-without-export"
NO_EXPORT_COMMIT = "8888888888888888888888888888888888888888"
HEADS_ONLY = "test-org/classifier-heads"
HEADS_COMMIT = "9999999999999999999999999999999999999999"
AUTO_MAP = {
    "AutoConfig": "jinaai/jina-bert-implementation--configuration_bert.JinaBertConfig",
    "AutoModel": "jinaai/jina-bert-implementation--modeling_bert.JinaBertModel",
}


def config(**fields: object) -> bytes:
    return json.dumps({"model_type": "bert", "hidden_size": 8, **fields}).encode()


@pytest.fixture
def provider() -> PackagerProvider:
    return PackagerProvider()


@pytest.fixture
def repos(hub: HubServer) -> HubServer:
    weights = {"model.safetensors": bytes(range(256)) * 4}
    custom = {"config.json": config(auto_map=AUTO_MAP), **weights}
    hub.register(make_repo(JINA_STYLE, {**custom, "onnx/model.onnx": b"g"}, commit=JINA_COMMIT))
    hub.register(make_repo(NO_EXPORT, custom, commit=NO_EXPORT_COMMIT))
    heads = {"AutoModelForSequenceClassification": "org/code--modeling.Classifier"}
    hub.register(
        make_repo(
            HEADS_ONLY, {"config.json": config(auto_map=heads), **weights}, commit=HEADS_COMMIT
        )
    )
    return hub


def inputs(bucket: str, runtime: RuntimeWheel, model_id: str, engine: str) -> dict:
    return resource_inputs(
        bucket, model_id=model_id, inference_engine=engine, container_python=runtime.python
    )


def test_auto_serves_it_with_the_onnx_engine(provider, repos, s3_bucket, this_python_runtime):
    checked = provider.check({}, inputs(s3_bucket, this_python_runtime, JINA_STYLE, "auto"))
    assert (checked.failures, checked.inputs["engine"]) == ([], "onnx")


def test_torch_fails_at_preview_naming_the_classes_and_the_onnx_engine(
    provider, repos, s3_bucket, this_python_runtime
):
    checked = provider.check({}, inputs(s3_bucket, this_python_runtime, JINA_STYLE, "torch"))
    (failure,) = checked.failures
    assert failure.property == "inference_engine"
    assert f"model '{JINA_STYLE}' at {JINA_COMMIT} cannot run on PyTorch" in failure.reason
    assert "maps AutoConfig to 'jinaai/" in failure.reason
    assert "AutoModel to 'jinaai/jina-bert-implementation--modeling_bert.JinaBertModel'" in (
        failure.reason
    )
    assert "Set inferenceEngine auto or onnx: the ONNX engine serves it" in failure.reason


@pytest.mark.parametrize("engine", ["auto", "torch"])
def test_without_an_export_it_fails_at_preview_on_the_model_saying_why(
    provider, repos, s3_bucket, this_python_runtime, engine
):
    checked = provider.check({}, inputs(s3_bucket, this_python_runtime, NO_EXPORT, engine))
    (failure,) = checked.failures
    assert failure.property == "model_id"
    assert "It ships no export the ONNX engine can run either (onnx/model.onnx is not in" in (
        failure.reason
    )
    assert "choose another model" in failure.reason


def test_an_export_at_the_repository_root_is_named_in_the_refusal(
    provider, hub, s3_bucket, this_python_runtime
):
    # jina-embeddings-v2-base-en keeps its graphs at the root, where the engine looks only
    # when asked (`onnxFile: model.onnx`); model-w-mean.onnx there outputs pooled vectors.
    files = {
        "config.json": config(auto_map=AUTO_MAP),
        "model.onnx": b"g",
        "model-w-mean.onnx": b"g",
    }
    hub.register(make_repo("test-org/root-export", files, commit="c" * 40))
    checked = provider.check(
        {}, inputs(s3_bucket, this_python_runtime, "test-org/root-export", "auto")
    )
    (failure,) = checked.failures
    assert failure.property == "onnx_file"
    assert "at the repository root (model-w-mean.onnx, model.onnx)" in failure.reason
    assert "set onnxFile model.onnx (with inferenceEngine auto or onnx)" in failure.reason
    asked = inputs(s3_bucket, this_python_runtime, "test-org/root-export", "auto")
    served = provider.check({}, asked | {"onnx_file": "model.onnx"})
    assert (served.failures, served.inputs["engine"]) == ([], "onnx")


def test_other_graphs_in_onnx_are_named_in_the_refusal(
    provider, hub, s3_bucket, this_python_runtime
):
    # No onnx/model.onnx, but graphs the engine could be asked for (the fp16 one it could not).
    files = {
        "config.json": config(auto_map=AUTO_MAP),
        "onnx/model_quantized.onnx": b"g",
        "onnx/model_O2.onnx": b"g",
        "onnx/model_fp16.onnx": b"g",
    }
    hub.register(make_repo("test-org/other-graphs", files, commit="d" * 40))
    asked = inputs(s3_bucket, this_python_runtime, "test-org/other-graphs", "auto")
    (failure,) = provider.check({}, asked).failures
    assert failure.property == "onnx_file"
    assert "other graphs in onnx/ (onnx/model_O2.onnx, onnx/model_quantized.onnx)" in (
        failure.reason
    )
    served = provider.check({}, asked | {"onnx_file": "onnx/model_O2.onnx"})
    assert (served.failures, served.inputs["engine"]) == ([], "onnx")


def test_onnx_without_an_export_does_not_point_to_pytorch_as_the_way_out(
    provider, repos, s3_bucket, this_python_runtime
):
    # The engine check fails first; `auto` would then give the refusal above, not a loop.
    checked = provider.check({}, inputs(s3_bucket, this_python_runtime, NO_EXPORT, "onnx"))
    (failure,) = checked.failures
    assert failure.property == "inference_engine"
    assert "or another model" in failure.reason
    assert "PyTorch for this model" not in failure.reason


def test_auto_on_an_image_without_a_runtime_names_the_image(provider, repos, s3_bucket):
    news = resource_inputs(
        s3_bucket, model_id=JINA_STYLE, inference_engine="auto", container_python="3.8"
    )
    (failure,) = provider.check({}, news).failures
    assert failure.property == "container_python"
    assert "no ONNX Runtime wheel is known for the image's Python" in failure.reason


def test_an_auto_map_for_task_heads_only_stays_pytorch(
    provider, repos, s3_bucket, this_python_runtime
):
    checked = provider.check({}, inputs(s3_bucket, this_python_runtime, HEADS_ONLY, "torch"))
    assert (checked.failures, checked.inputs["engine"]) == ([], "torch")


def test_an_unchanged_pin_and_engine_is_not_asked_again(
    provider, repos, s3_bucket, this_python_runtime, monkeypatch
):
    first = provider.check({}, inputs(s3_bucket, this_python_runtime, HEADS_ONLY, "torch"))
    assert any("config.json" in path for _, path in repos.switches.requests)
    monkeypatch.setenv("HF_ENDPOINT", UNREACHABLE_HUB)
    again = provider.check(
        first.inputs, inputs(s3_bucket, this_python_runtime, HEADS_ONLY, "torch")
    )
    assert again.failures == []


def test_a_config_that_is_not_json_fails_at_preview_naming_the_file(
    provider, hub, s3_bucket, this_python_runtime
):
    hub.register(make_repo("test-org/broken", {"config.json": b"{not json"}, commit="a" * 40))
    checked = provider.check({}, inputs(s3_bucket, this_python_runtime, "test-org/broken", "torch"))
    (failure,) = checked.failures
    assert failure.property == "model_id"
    assert "config.json is not JSON" in failure.reason


def test_a_sha_pin_preview_cannot_check_is_left_to_the_loader(
    provider, hub, s3_bucket, this_python_runtime, monkeypatch
):
    # A sha pin needed no Hub and no token at preview before; an unreachable Hub keeps it so.
    monkeypatch.setenv("HF_ENDPOINT", UNREACHABLE_HUB)
    news = inputs(s3_bucket, this_python_runtime, JINA_STYLE, "torch")
    checked = provider.check({}, news | {"requested_revision": JINA_COMMIT})
    assert checked.failures == []
    assert checked.inputs["model_code_checked"] is None


def test_a_pass_is_kept_for_the_commit(provider, repos, s3_bucket, this_python_runtime):
    checked = provider.check({}, inputs(s3_bucket, this_python_runtime, HEADS_ONLY, "torch"))
    assert checked.inputs["model_code_checked"] == HEADS_COMMIT
