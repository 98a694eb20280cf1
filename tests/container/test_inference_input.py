"""code/inference.py refuses bad requests with a client error that names the problem.

Also: what it reads from the model's files, the batch limit, threads, and that it stays valid
Python 3.9 (the oldest DLC we deploy).
"""

from __future__ import annotations

import ast
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from facts.embedding_api import InputError
from loader.version import container_code
from tests.support.models import (
    DIMENSIONS,
    REFERENCE_MODEL_DIR,
    container_module,
    copy_model,
)

settings = container_module("model_files")
environment = container_module("environment")
threads = container_module("threads")


def refused(inference, body, content_type="application/json"):
    with pytest.raises(InputError) as raised:
        inference.input_fn(body, content_type)
    return raised.value


def test_missing_inputs_is_a_400_naming_the_key(inference):
    error = refused(inference, '{"parameters": {}}')
    assert error.status == 400 and '"inputs"' in str(error)


def test_empty_input_list_is_a_400(inference):
    error = refused(inference, '{"inputs": []}')
    assert error.status == 400 and "empty list" in str(error)


def test_non_string_item_is_a_400_naming_its_index(inference):
    error = refused(inference, '{"inputs": ["fine", 3]}')
    assert error.status == 400 and '"inputs"[1]' in str(error) and "got a number" in str(error)


def test_inputs_of_the_wrong_type_is_a_400(inference):
    assert "got an object" in str(refused(inference, '{"inputs": {"a": 1}}'))


def test_body_that_is_not_json_is_a_400(inference):
    assert "not valid JSON" in str(refused(inference, "inputs=hello"))


def test_body_that_is_not_an_object_is_a_400(inference):
    assert "JSON object" in str(refused(inference, '["a", "b"]'))


def test_unknown_top_level_key_is_a_400_listing_allowed_keys(inference):
    error = refused(inference, '{"inputs": "a", "pooling": "cls"}')
    assert "['pooling']" in str(error) and "'parameters'" in str(error)


def test_native_and_openai_keys_together_are_a_400(inference):
    error = refused(inference, '{"inputs": "a", "input": "b"}')
    assert "['inputs']" in str(error) and "'input'" in str(error)


def test_unknown_parameter_is_a_400_listing_allowed_ones(inference):
    error = refused(inference, '{"inputs": "a", "parameters": {"pooling": "cls"}}')
    assert "['pooling']" in str(error) and "normalize" in str(error) and "truncate" in str(error)


def test_non_boolean_parameter_is_a_400(inference):
    error = refused(inference, '{"inputs": "a", "parameters": {"normalize": "yes"}}')
    assert '"normalize"' in str(error) and "true or false" in str(error)


def test_other_content_type_is_a_415(inference):
    error = refused(inference, "a,b", content_type="text/csv")
    assert error.status == 415 and "application/json" in str(error)


def test_json_content_type_with_charset_is_accepted(inference):
    request = inference.input_fn(b'{"inputs": "a"}', "application/json; charset=utf-8")
    assert request.texts == ("a",)


def test_body_over_4_mb_is_a_413(inference):
    body = json.dumps({"inputs": ["x" * 1000] * 3990})
    assert 4_000_000 < len(body) < 4 * 1024 * 1024  # over SageMaker's 4 MB, under 4 MiB
    error = refused(inference, body)
    assert error.status == 413 and "4000000 bytes (4 MB)" in str(error)


def test_body_that_is_not_utf8_is_a_400(inference):
    assert "UTF-8" in str(refused(inference, b'{"inputs": "\xff"}'))


def test_single_string_is_one_text_and_parameters_default(inference):
    request = inference.input_fn('{"inputs": "hello"}', "application/json")
    assert request.texts == ("hello",)
    assert (request.options.normalize, request.options.truncate) == (None, True)


def test_more_texts_than_the_batch_limit_is_a_413_stating_both_limits(inference, loaded):
    limit = loaded.max_texts_per_request(DIMENSIONS, "float")
    request = inference.input_fn(json.dumps({"inputs": ["a"] * (limit + 1)}), "application/json")
    with pytest.raises(InputError) as raised:
        inference.predict_fn(request, loaded)
    message = str(raised.value)
    assert raised.value.status == 413
    assert f"in float is {limit} (base64: " in message


def test_base64_carries_more_texts_per_4_mb_response_than_float(loaded):
    assert loaded.max_texts_per_request(1024, "base64") > 2 * loaded.max_texts_per_request(
        1024, "float"
    )


def test_batch_limit_shrinks_so_the_response_fits_4_mb_for_wide_models(loaded):
    assert loaded.max_texts_per_request(4096, "float") < environment.MAX_BATCH_SIZE
    assert loaded.max_texts_per_request(4096, "float") * 4096 * 16 < 4_000_000


def test_batch_limit_follows_the_environment(loaded, monkeypatch):
    monkeypatch.setenv("EMBEDDING_MAX_BATCH_SIZE", "3")
    # The settings are read once, when the model loads (a container's environment is fixed).
    assert loaded.max_texts_per_request(DIMENSIONS, "base64") > 3
    in_this_environment = replace(loaded, environment=environment.read_environment())
    assert in_this_environment.max_texts_per_request(DIMENSIONS, "base64") == 3


def test_invalid_batch_limit_in_the_environment_fails_the_load(inference, monkeypatch):
    monkeypatch.setenv("EMBEDDING_MAX_BATCH_SIZE", "lots")
    with pytest.raises(environment.SettingError, match="EMBEDDING_MAX_BATCH_SIZE.*'lots'"):
        inference.model_fn(str(REFERENCE_MODEL_DIR))


def test_full_batch_at_the_limit_fits_the_response_limit(inference, loaded):
    limit = loaded.max_texts_per_request(DIMENSIONS, "float")
    texts = [f"sentence {i} with several words in it" for i in range(limit)]
    request = inference.input_fn(json.dumps({"inputs": texts}), "application/json")
    body = inference.output_fn(inference.predict_fn(request, loaded), "application/json")
    assert len(body.encode()) < 4_000_000


def test_truncate_false_refuses_a_text_over_max_seq_length_naming_it(inference, loaded):
    body = json.dumps({"inputs": ["short", "word " * 400], "parameters": {"truncate": False}})
    with pytest.raises(InputError) as raised:
        inference.predict_fn(inference.input_fn(body, "application/json"), loaded)
    assert "[1]" in str(raised.value) and "256 tokens" in str(raised.value)


def test_accept_other_than_json_is_a_406(inference):
    with pytest.raises(InputError) as raised:
        inference.output_fn({"model": "m"}, "text/csv")
    assert raised.value.status == 406


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "text/html, */*;q=0.8"])
def test_json_is_answered_for_json_or_any_accept(inference, accept):
    assert json.loads(inference.output_fn({"dimensions": 1}, accept)) == {"dimensions": 1}


def test_values_keep_float32_precision_in_json(inference, loaded):
    request = inference.input_fn('{"inputs": "precision"}', "application/json")
    body = inference.output_fn(inference.predict_fn(request, loaded), "application/json")
    values = json.loads(body)["embeddings"][0]
    exact = loaded.embed(request.texts, request.options)[0][0]
    np.testing.assert_array_equal(np.array(values, dtype=np.float32), exact)
    assert len(values) == DIMENSIONS


def test_unsupported_module_in_modules_json_fails_loading_naming_it(inference, tmp_path: Path):
    folder = copy_model(tmp_path / "model")
    modules = json.loads((folder / "modules.json").read_text())
    modules.append(
        {
            "idx": 3,
            "name": "3",
            "path": "3_LayerNorm",
            "type": "sentence_transformers.models.LayerNorm",
        }
    )
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(settings.ModelFilesError, match=r"LayerNorm \(3_LayerNorm\)"):
        inference.model_fn(str(folder))


def test_unknown_pooling_mode_fails_naming_the_supported_ones(inference):
    with pytest.raises(settings.ModelFilesError, match="supported") as raised:
        settings.pooling_modes({"pooling_mode": "attention"})
    assert "attention" in str(raised.value) and "lasttoken" in str(raised.value)


@pytest.mark.parametrize("config", [[1, 2], {"pooling_mode": 5}, {"pooling_mode": [["cls"]]}])
def test_a_pooling_config_of_the_wrong_shape_fails_naming_the_pooling_config(config):
    with pytest.raises(settings.ModelFilesError, match="the Pooling config"):
        settings.pooling_modes(config)


def test_a_pooling_module_without_its_config_fails_loading(tmp_path: Path):
    """Pooling by mean in its place would serve other vectors than the model's, silently."""
    folder = copy_model(tmp_path / "model")
    (folder / "1_Pooling" / "config.json").unlink()
    with pytest.raises(settings.ModelFilesError, match="1_Pooling/config.json is missing"):
        settings.read_settings(str(folder))


@pytest.mark.parametrize("path", ["../1_Pooling", "/tmp", "1_Pooling/../../x"])
def test_a_module_path_outside_the_model_folder_fails_loading(tmp_path: Path, path: str):
    folder = copy_model(tmp_path / "model")
    modules = json.loads((folder / "modules.json").read_text())
    modules[1]["path"] = path
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(settings.ModelFilesError, match="module paths outside the model's folder"):
        settings.read_settings(str(folder))


def test_legacy_pooling_flags_with_none_set_mean_mean(inference):
    assert settings.pooling_modes({"word_embedding_dimension": 8}) == ("mean",)


def test_max_seq_length_comes_from_sentence_bert_config(inference, tmp_path: Path):
    folder = copy_model(tmp_path / "model")
    (folder / "sentence_bert_config.json").write_text('{"max_seq_length": 16}')
    assert settings.read_settings(str(folder)).max_seq_length == 16


def test_threads_follow_the_environment_override(monkeypatch):
    monkeypatch.setenv("EMBEDDING_NUM_THREADS", "1")
    assert environment.read_environment().intra_op_threads() == 1


def test_available_cpus_is_within_what_the_machine_has():
    import os

    assert 1 <= threads.available_cpus() <= (os.cpu_count() or 1)


SHIPPED_SOURCES = {name: data.decode() for name, data in container_code().items()}


@pytest.mark.parametrize("name", sorted(SHIPPED_SOURCES))
def test_shipped_code_is_valid_python_3_9_syntax(name: str):
    ast.parse(SHIPPED_SOURCES[name], feature_version=(3, 9))  # no match, no 3.10+ grammar


@pytest.mark.parametrize("name", sorted(SHIPPED_SOURCES))
def test_shipped_code_uses_no_runtime_union_types_or_3_10_only_apis(name: str):
    """`X | None` only in annotations, made strings by `from __future__ import annotations`."""
    source = SHIPPED_SOURCES[name]
    tree = ast.parse(source)
    annotations = set()
    for node in ast.walk(tree):
        for child in (getattr(node, "annotation", None), getattr(node, "returns", None)):
            if child is not None:
                annotations.update(id(sub) for sub in ast.walk(child))
    unions = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr)
    ]
    assert [node.lineno for node in unions if id(node) not in annotations] == []
    if unions:
        assert any(
            isinstance(node, ast.ImportFrom)
            and node.module == "__future__"
            and any(alias.name == "annotations" for alias in node.names)
            for node in tree.body
        )
    for newer in ("strict=", "kw_only=", "slots=True"):  # zip(strict=), dataclass options: 3.10
        assert newer not in source, newer


@pytest.mark.parametrize("name", sorted(SHIPPED_SOURCES))
def test_shipped_code_imports_only_torch_transformers_the_vendored_the_stdlib_and_itself(name: str):
    tree = ast.parse(SHIPPED_SOURCES[name])
    imported = {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and not node.level  # relative: within the package
    } | {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    shipped_modules = {name.split("/")[1].removesuffix(".py") for name in SHIPPED_SOURCES}
    assert imported <= shipped_modules | {
        "__future__",
        "base64",
        "binascii",
        "struct",
        "json",
        "logging",
        "math",
        "os",
        "re",
        "sys",
        "time",  # the request's time budget (time_budget.py)
        "mmap",  # a graph's external-data check maps the file (facts/onnx_external_data.py)
        "collections",
        "dataclasses",
        "functools",
        "typing",
        "torch",
        "transformers",
        "safetensors",  # imported lazily, only for a Dense module saved as model.safetensors
        "numpy",  # token ids, pooling, norms, the ONNX feeds; every DLC ships it (torch needs it)
        "onnxruntime",  # imported lazily by the ONNX engine, from the archive's code/onnxruntime
        "orjson",  # where code/orjson is vendored (ONNX archives); else the json module writes
    }
