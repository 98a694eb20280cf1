"""`inferenceEngine` through the dynamic provider: check settles auto | torch | onnx per commit.

Real huggingface_hub against the Hub fixture, real boto3 against moto, the real loader in-process
(runner `local`), with the ONNX Runtime wheel for this Python from the wheel cache.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from components.packager_provider import PackagerProvider, diff
from components.packaging_runs import PackagingRequest
from facts.onnx_runtime import RuntimeWheel
from loader.version import format_version
from tests.fixtures.hub import HubServer, make_repo
from tests.support.loader import onnx_repo, read_object, run_unpacked
from tests.support.models import with_pooling
from tests.support.onnx_graphs import tiny_graph
from tests.support.packager import TINY_COMMIT, TINY_MODEL_ID, object_keys, resource_inputs

UNREACHABLE_HUB = "http://127.0.0.1:9"
WITH_EXPORT = "test-org/tiny-with-onnx"
EXPORT_COMMIT = "3333333333333333333333333333333333333333"
TINY_FILES = {
    "config.json": b'{"model_type": "bert", "hidden_size": 8}',
    "tokenizer.json": b'{"version": "1.0"}',
    "model.safetensors": bytes(range(256)) * 64,
}


@pytest.fixture
def provider() -> PackagerProvider:
    return PackagerProvider()


@pytest.fixture
def repos(hub: HubServer) -> HubServer:
    """A repo without an ONNX export (TINY_MODEL_ID) and one with it (WITH_EXPORT)."""
    hub.register(make_repo(TINY_MODEL_ID, TINY_FILES, commit=TINY_COMMIT))
    files = {**TINY_FILES, "onnx/model.onnx": tiny_graph(), "onnx/model_O4.onnx": b"variant"}
    hub.register(make_repo(WITH_EXPORT, files, commit=EXPORT_COMMIT))
    return hub


def engine_inputs(bucket: str, runtime: RuntimeWheel, engine: str, **overrides: object) -> dict:
    return resource_inputs(
        bucket, inference_engine=engine, container_python=runtime.python, **overrides
    )


def test_auto_picks_onnx_when_the_commit_ships_the_export(
    provider, repos, s3_bucket, this_python_runtime
) -> None:
    inputs = engine_inputs(s3_bucket, this_python_runtime, "auto", model_id=WITH_EXPORT)
    checked = provider.check({}, inputs)
    assert checked.failures == []
    assert (checked.inputs["engine"], checked.inputs["onnx_export"]) == ("onnx", True)
    assert checked.inputs["container_python"] == this_python_runtime.python
    assert checked.inputs["format_version"] == format_version(this_python_runtime, fusion=True)


def test_auto_falls_back_to_torch_for_a_model_without_the_export(
    provider, repos, s3_bucket, this_python_runtime
) -> None:
    checked = provider.check({}, engine_inputs(s3_bucket, this_python_runtime, "auto"))
    assert checked.failures == []
    assert (checked.inputs["engine"], checked.inputs["onnx_export"]) == ("torch", False)
    assert checked.inputs["container_python"] is None
    assert checked.inputs["format_version"] == format_version()


def test_onnx_without_the_export_fails_at_preview_naming_the_file(
    provider, repos, s3_bucket, this_python_runtime
) -> None:
    checked = provider.check({}, engine_inputs(s3_bucket, this_python_runtime, "onnx"))
    (failure,) = checked.failures
    assert failure.property == "inference_engine"
    assert "onnx/model.onnx is not in the repository" in failure.reason
    assert TINY_MODEL_ID in failure.reason and TINY_COMMIT in failure.reason


def test_torch_with_a_pinned_sha_reads_the_config_once_then_asks_the_hub_nothing(
    provider, repos, s3_bucket, monkeypatch, this_python_runtime
) -> None:
    # config.json is read once (is the model its repository's code?), then kept with the pin.
    inputs = engine_inputs(s3_bucket, this_python_runtime, "torch", requested_revision=TINY_COMMIT)
    first = provider.check({}, inputs)
    assert first.failures == []
    assert (first.inputs["engine"], first.inputs["container_python"]) == ("torch", None)
    monkeypatch.setenv("HF_ENDPOINT", UNREACHABLE_HUB)
    again = provider.check(first.inputs, inputs)
    assert (again.failures, again.inputs["engine"]) == ([], "torch")


def test_auto_with_a_pinned_sha_lists_the_commit_once_then_keeps_the_answer(
    provider, repos, s3_bucket, monkeypatch, this_python_runtime
) -> None:
    inputs = engine_inputs(
        s3_bucket,
        this_python_runtime,
        "auto",
        model_id=WITH_EXPORT,
        requested_revision=EXPORT_COMMIT,
    )
    first = provider.check({}, inputs)
    assert first.inputs["engine"] == "onnx"
    assert any(path.startswith(f"/api/models/{WITH_EXPORT}") for _, path in repos.switches.requests)
    monkeypatch.setenv("HF_ENDPOINT", UNREACHABLE_HUB)
    again = provider.check(first.inputs, inputs)
    assert (again.failures, again.inputs["engine"]) == ([], "onnx")


def test_a_new_image_python_replaces_an_onnx_artifact_but_not_a_torch_one(
    provider, repos, s3_bucket, this_python_runtime
) -> None:
    other = "3.9" if this_python_runtime.python != "3.9" else "3.10"
    for model, replaced in ((WITH_EXPORT, True), (TINY_MODEL_ID, False)):
        before = provider.check(
            {}, engine_inputs(s3_bucket, this_python_runtime, "auto", model_id=model)
        )
        after_inputs = resource_inputs(
            s3_bucket, model_id=model, inference_engine="auto", container_python=other
        )
        after = provider.check(before.inputs, after_inputs)
        decision = diff("", before.inputs, after.inputs)
        assert ("container_python" in decision.replaces) is replaced, model


def test_switching_the_resolved_engine_replaces_the_artifact(
    provider, repos, s3_bucket, this_python_runtime
) -> None:
    onnx = provider.check(
        {}, engine_inputs(s3_bucket, this_python_runtime, "auto", model_id=WITH_EXPORT)
    )
    torch = provider.check(
        onnx.inputs, engine_inputs(s3_bucket, this_python_runtime, "torch", model_id=WITH_EXPORT)
    )
    assert {"engine", "container_python", "format_version"} <= set(
        diff("", onnx.inputs, torch.inputs).replaces
    )
    same = provider.check(
        onnx.inputs, engine_inputs(s3_bucket, this_python_runtime, "onnx", model_id=WITH_EXPORT)
    )
    assert diff("", onnx.inputs, same.inputs).replaces == []


def test_local_create_packages_the_onnx_archive_under_its_engine_folder(
    provider, repos, aws, s3_bucket, this_python_runtime
) -> None:
    checked = provider.check(
        {}, engine_inputs(s3_bucket, this_python_runtime, "auto", model_id=WITH_EXPORT)
    )
    created = provider.create(checked.inputs)
    variant = this_python_runtime.variant()
    folder = f"/{EXPORT_COMMIT}/{variant}/{created.outs['format_version']}/"
    assert created.outs["model_data_url"].endswith(f"{folder}model.tar.gz")
    assert created.outs["engine"] == "onnx"
    assert created.outs["format_version"] == format_version(this_python_runtime, fusion=True)
    assert "onnx/model.onnx" in created.outs["files"]
    assert "code/onnxruntime/__init__.py" in created.outs["files"]
    assert f"models/{WITH_EXPORT}{folder}manifest.json" in object_keys(aws.client("s3"), s3_bucket)
    # The next `pulumi up` with the same inputs changes nothing.
    again = provider.check(
        created.outs, engine_inputs(s3_bucket, this_python_runtime, "auto", model_id=WITH_EXPORT)
    )
    assert diff(created.id, created.outs, again.inputs).changes is False


def test_the_loader_event_carries_the_resolved_engine_and_python() -> None:
    request = PackagingRequest.from_inputs(
        resource_inputs("bkt", engine="onnx", container_python="3.10", pinned_revision="a" * 40)
    )
    assert (request.loader.engine, request.loader.container_python) == ("onnx", "3.10")
    torch = PackagingRequest.from_inputs(resource_inputs("bkt", pinned_revision="a" * 40))
    assert (torch.loader.engine, torch.loader.container_python) == ("torch", None)


def test_a_bge_style_cls_model_with_an_export_is_served_by_onnx_end_to_end(
    provider, hub, aws, s3_bucket, this_python_runtime, reference_onnx_export: Path, tmp_path
) -> None:
    """As a new user deploying a BGE-style model: CLS pooling, onnx/model.onnx in the repo."""
    cls = {"word_embedding_dimension": 384, "pooling_mode_cls_token": True}
    model_id = "test-org/bge-style-cls"
    pooling = {"1_Pooling/config.json": json.dumps(cls).encode()}
    hub.register(onnx_repo(reference_onnx_export, model_id, files=pooling))
    checked = provider.check(
        {}, engine_inputs(s3_bucket, this_python_runtime, "auto", model_id=model_id)
    )
    assert (checked.failures, checked.inputs["engine"]) == ([], "onnx")
    created = provider.create(checked.inputs)
    archive = read_object(aws.client("s3"), created.outs["model_data_url"])
    texts = ["Represent this sentence: a man is eating food.", "A girl carries a baby.", "x"]
    report = run_unpacked(archive, tmp_path / "unpacked", texts)
    assert report["engine"] == "onnx"
    assert report["runtime"] == str(tmp_path / "unpacked" / "code" / "onnxruntime" / "__init__.py")
    ours = np.asarray(report["response"]["embeddings"])
    theirs = SentenceTransformer(
        str(with_pooling(tmp_path / "reference", cls)), device="cpu"
    ).encode(texts, normalize_embeddings=True)
    assert float((ours * theirs).sum(axis=1).min()) >= 0.9999


def test_an_export_with_unknown_files_beside_it_is_torch_under_auto_and_refused_under_onnx(
    provider, hub, s3_bucket, this_python_runtime
) -> None:
    files = {**TINY_FILES, "onnx/model.onnx": b"graph", "onnx/Constant_7_attr__value": b"w"}
    hub.register(make_repo("test-org/odd-export", files, commit="4" * 40))
    auto = provider.check(
        {}, engine_inputs(s3_bucket, this_python_runtime, "auto", model_id="test-org/odd-export")
    )
    assert auto.failures == [] and auto.inputs["engine"] == "torch"
    forced = provider.check(
        {}, engine_inputs(s3_bucket, this_python_runtime, "onnx", model_id="test-org/odd-export")
    )
    (failure,) = forced.failures
    assert failure.property == "inference_engine"
    assert "onnx/Constant_7_attr__value" in failure.reason


# --- onnxFile: a graph the stack asked for ------------------------------------------------------

O2 = "onnx/model_O2.onnx"


@pytest.fixture
def o2_repo(hub: HubServer) -> HubServer:
    """WITH_EXPORT, also shipping optimum's O2 graph (and its external data)."""
    files = {
        **TINY_FILES,
        "onnx/model.onnx": b"graph",
        O2: b"fused graph",
        O2 + "_data": b"\x00" * 64,
    }
    hub.register(make_repo(WITH_EXPORT, files, commit=EXPORT_COMMIT))
    hub.register(make_repo(TINY_MODEL_ID, TINY_FILES, commit=TINY_COMMIT))
    return hub


@pytest.mark.parametrize("engine", ["auto", "onnx"])
def test_a_graph_the_commit_ships_is_packaged_alone_under_a_folder_of_its_own(
    provider, o2_repo, aws, s3_bucket, this_python_runtime, engine
) -> None:
    inputs = engine_inputs(
        s3_bucket, this_python_runtime, engine, model_id=WITH_EXPORT, onnx_file=O2
    )
    checked = provider.check({}, inputs)
    assert (checked.failures, checked.inputs["engine"]) == ([], "onnx")
    assert checked.inputs["onnx_file"] == O2
    created = provider.create(checked.inputs)
    variant = this_python_runtime.variant(O2)
    assert variant.startswith("onnx-model_O2-py")
    folder = f"/{EXPORT_COMMIT}/{variant}/{created.outs['format_version']}/"
    assert created.outs["model_data_url"].endswith(f"{folder}model.tar.gz")
    assert [name for name in created.outs["files"] if name.startswith("onnx/")] == [
        O2,
        O2 + "_data",
    ]
    again = provider.check(created.outs, inputs)
    assert diff(created.id, created.outs, again.inputs).changes is False


@pytest.mark.parametrize("engine", ["auto", "onnx"])
def test_a_graph_the_commit_lacks_fails_at_preview_on_onnx_file_even_under_auto(
    provider, o2_repo, s3_bucket, this_python_runtime, engine
) -> None:
    inputs = engine_inputs(
        s3_bucket, this_python_runtime, engine, model_id=TINY_MODEL_ID, onnx_file=O2
    )
    (failure,) = provider.check({}, inputs).failures
    assert failure.property == "onnx_file"
    assert "onnxFile is onnx/model_O2.onnx" in failure.reason
    assert "onnx/model_O2.onnx is not in the repository" in failure.reason
    assert TINY_MODEL_ID in failure.reason and TINY_COMMIT in failure.reason


def test_choosing_another_graph_replaces_the_artifact_and_is_asked_of_the_hub_anew(
    provider, o2_repo, s3_bucket, monkeypatch, this_python_runtime
) -> None:
    pinned = {"model_id": WITH_EXPORT, "requested_revision": EXPORT_COMMIT}
    default = provider.check({}, engine_inputs(s3_bucket, this_python_runtime, "auto", **pinned))
    assert (default.inputs["engine"], default.inputs.get("onnx_file")) == ("onnx", None)
    chosen = provider.check(
        default.inputs,
        engine_inputs(s3_bucket, this_python_runtime, "auto", onnx_file=O2, **pinned),
    )
    assert chosen.failures == []
    assert "onnx_file" in diff("", default.inputs, chosen.inputs).replaces
    # The answer for the default graph is not taken for another: a graph the commit lacks fails.
    missing = provider.check(
        default.inputs,
        engine_inputs(s3_bucket, this_python_runtime, "auto", onnx_file="onnx/x.onnx", **pinned),
    )
    assert [failure.property for failure in missing.failures] == ["onnx_file"]
    # Kept with the pin: the same graph again needs no Hub.
    monkeypatch.setenv("HF_ENDPOINT", UNREACHABLE_HUB)
    again = provider.check(
        chosen.inputs,
        engine_inputs(s3_bucket, this_python_runtime, "auto", onnx_file=O2, **pinned),
    )
    assert (again.failures, again.inputs["onnx_file"]) == ([], O2)


def test_the_loader_event_carries_the_chosen_graph() -> None:
    inputs = resource_inputs(
        "bkt", engine="onnx", container_python="3.10", pinned_revision="a" * 40, onnx_file=O2
    )
    assert PackagingRequest.from_inputs(inputs).loader.to_event()["onnx_file"] == O2


def test_onnx_fusion_is_a_packaging_input_of_onnx_archives_only(
    provider, repos, s3_bucket, this_python_runtime
) -> None:
    """Fused unless the stack says onnxFusion false; turning it off replaces the artifact, and
    an archive packaged for PyTorch carries no such input (nothing to replace there)."""
    pinned = {"model_id": WITH_EXPORT, "requested_revision": EXPORT_COMMIT}
    fused = provider.check({}, engine_inputs(s3_bucket, this_python_runtime, "auto", **pinned))
    assert fused.inputs["onnx_fusion"] is True
    assert fused.inputs["format_version"] == format_version(this_python_runtime, fusion=True)
    unfused = provider.check(
        fused.inputs,
        engine_inputs(s3_bucket, this_python_runtime, "auto", onnx_fusion=False, **pinned),
    )
    assert unfused.inputs["onnx_fusion"] is False
    assert unfused.inputs["format_version"] == format_version(this_python_runtime)
    assert {"onnx_fusion", "format_version"} <= set(diff("", fused.inputs, unfused.inputs).replaces)
    event = PackagingRequest.from_inputs(unfused.inputs).loader.to_event()
    assert (event["engine"], event["onnx_fusion"]) == ("onnx", False)
    torch = provider.check(
        {}, engine_inputs(s3_bucket, this_python_runtime, "auto", model_id=TINY_MODEL_ID)
    )
    assert (torch.inputs["engine"], torch.inputs["onnx_fusion"]) == ("torch", None)
    assert PackagingRequest.from_inputs(torch.inputs).loader.to_event()["onnx_fusion"] is False


def test_runner_local_without_the_pinned_optimizer_fails_at_preview_on_onnx_fusion(
    provider, repos, s3_bucket, this_python_runtime, monkeypatch
) -> None:
    from loader import graph_fusion

    monkeypatch.setattr(graph_fusion, "FUSION_PACKAGES", (("onnx", "0.0.1"),))
    pinned = {"model_id": WITH_EXPORT, "requested_revision": EXPORT_COMMIT}
    checked = provider.check({}, engine_inputs(s3_bucket, this_python_runtime, "auto", **pinned))
    (failure,) = checked.failures
    assert failure.property == "onnx_fusion"
    assert "runner 'local' packages the ONNX graph in the Pulumi process" in failure.reason
    assert "or set onnxFusion false" in failure.reason
    unfused = engine_inputs(s3_bucket, this_python_runtime, "auto", onnx_fusion=False, **pinned)
    assert provider.check({}, unfused).failures == []
    on_lambda = engine_inputs(
        s3_bucket, this_python_runtime, "auto", runner="lambda", function_name="f", **pinned
    )
    assert provider.check({}, on_lambda).failures == []  # the Lambda's zip carries it


def test_int8_is_a_packaging_input_of_onnx_archives_that_replaces_them(
    provider, repos, s3_bucket, this_python_runtime
) -> None:
    pinned = {"model_id": WITH_EXPORT, "requested_revision": EXPORT_COMMIT}
    fp32 = provider.check({}, engine_inputs(s3_bucket, this_python_runtime, "auto", **pinned))
    assert fp32.inputs["onnx_quantization"] is None  # fp32 states stay as they were
    int8 = provider.check(
        fp32.inputs,
        engine_inputs(s3_bucket, this_python_runtime, "auto", onnx_quantization="int8", **pinned),
    )
    assert int8.failures == []
    assert int8.inputs["onnx_quantization"] == "int8"
    assert int8.inputs["format_version"] == format_version(this_python_runtime, True, "int8")
    replaces = set(diff("", fp32.inputs, int8.inputs).replaces)
    assert {"onnx_quantization", "format_version"} <= replaces
    event = PackagingRequest.from_inputs(int8.inputs).loader.to_event()
    assert (event["engine"], event["onnx_quantization"]) == ("onnx", "int8")


def test_int8_for_a_model_without_an_export_fails_at_preview_naming_the_key(
    provider, repos, s3_bucket, this_python_runtime
) -> None:
    asked = engine_inputs(
        s3_bucket, this_python_runtime, "auto", model_id=TINY_MODEL_ID, onnx_quantization="int8"
    )
    (failure,) = provider.check({}, asked).failures
    assert failure.property == "onnx_quantization"
    assert "onnxQuantization is int8, but no ONNX archive can be packaged" in failure.reason
    assert "or set onnxQuantization none (fp32)" in failure.reason


def test_runner_local_without_the_pinned_tokenizer_fails_at_preview_on_onnx_quantization(
    provider, repos, s3_bucket, this_python_runtime, monkeypatch
) -> None:
    from components import packager_checks

    monkeypatch.setattr(packager_checks, "QUANTIZATION_PACKAGES", (("tokenizers", "0.0.1"),))
    pinned = {"model_id": WITH_EXPORT, "requested_revision": EXPORT_COMMIT}
    asked = engine_inputs(
        s3_bucket, this_python_runtime, "auto", onnx_quantization="int8", **pinned
    )
    (failure,) = provider.check({}, asked).failures
    assert failure.property == "onnx_quantization"
    assert "needs tokenizers==0.0.1; this Python has tokenizers 0.23.3" in failure.reason
    assert "or set onnxQuantization none" in failure.reason


def test_the_default_graph_named_out_loud_replaces_nothing(
    provider, repos, s3_bucket, this_python_runtime
) -> None:
    """onnx_file "onnx/model.onnx" is the archive onnx_file None made: replacing one with the
    other would delete the live archive (the same key and sha256) with the old resource."""
    pinned = {"model_id": WITH_EXPORT, "requested_revision": EXPORT_COMMIT}
    default = provider.check({}, engine_inputs(s3_bucket, this_python_runtime, "auto", **pinned))
    named = provider.check(
        default.inputs,
        engine_inputs(
            s3_bucket, this_python_runtime, "auto", onnx_file="onnx/model.onnx", **pinned
        ),
    )
    assert named.inputs["onnx_file"] is None
    assert diff("", default.inputs, named.inputs).replaces == []
