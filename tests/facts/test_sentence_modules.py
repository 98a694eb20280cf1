"""The one reader of modules.json and the prompts file, which the loader and the container share."""

from __future__ import annotations

import json

import pytest

from facts.sentence_modules import ModelFilesError, Prompts, parse_modules, parse_prompts


def modules_json(*types: str) -> bytes:
    return json.dumps(
        [
            {"path": f"{i}_{t}" if i else "", "type": f"sentence_transformers.models.{t}"}
            for i, t in enumerate(types)
        ]
    ).encode()


def test_a_runnable_list_is_read_in_order_with_kinds_and_folders():
    modules = parse_modules(modules_json("Transformer", "Pooling", "Dense", "Dense", "Normalize"))
    assert [m.kind for m in modules] == ["Transformer", "Pooling", "Dense", "Dense", "Normalize"]
    assert [m.path for m in modules] == ["", "1_Pooling", "2_Dense", "3_Dense", "4_Normalize"]


def test_a_custom_type_keeps_its_full_name_as_its_kind():
    data = json.dumps([{"path": "", "type": "my_org.st.Transformer"}]).encode()
    with pytest.raises(ModelFilesError, match=r"my_org\.st\.Transformer \(\)"):
        parse_modules(data)


@pytest.mark.parametrize(
    ("types", "expected"),
    [
        ((), "must start with a Transformer module; it lists none"),
        (("Pooling", "Transformer"), r"must start with a Transformer module; it lists \['Pooling'"),
        (("Transformer", "Dense", "Pooling"), "after Pooling and before Normalize"),
        (("Transformer", "Pooling", "Normalize", "Dense"), "after Pooling and before Normalize"),
        (("Transformer", "Dense"), "after Pooling and before Normalize"),
    ],
    ids=["empty", "pooling-first", "dense-before-pooling", "dense-after-normalize", "no-pooling"],
)
def test_an_order_the_container_cannot_run_is_refused_naming_the_file(types, expected):
    with pytest.raises(ModelFilesError, match=expected) as raised:
        parse_modules(modules_json(*types))
    assert str(raised.value).startswith("modules.json ")


@pytest.mark.parametrize(
    ("data", "expected"),
    [(b"{not json", "modules.json is not valid JSON"), (b'{"type": "Dense"}', "must be a list")],
)
def test_a_file_that_is_not_a_module_list_is_refused(data, expected):
    with pytest.raises(ModelFilesError, match=expected):
        parse_modules(data)


def test_no_prompts_file_means_no_prompts():
    assert parse_prompts(None) == Prompts({}, None)


def test_prompts_and_their_default_are_read():
    data = b'{"prompts": {"query": "q: ", "doc": ""}, "default_prompt_name": "query"}'
    assert parse_prompts(data) == Prompts({"query": "q: ", "doc": ""}, "query")


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"prompts": ["q: "]}, "'prompts' must map names to prefix strings"),
        ({"prompts": {"query": 3}}, "'prompts' must map names to prefix strings"),
        ({"prompts": {"query": "q: "}, "default_prompt_name": "doc"}, r"'doc' is not one of"),
        ([], "must be a JSON object"),
    ],
    ids=["list", "non-string-prefix", "unknown-default", "not-an-object"],
)
def test_a_prompts_file_the_container_would_refuse_is_refused_naming_it(document, expected):
    with pytest.raises(ModelFilesError, match=expected) as raised:
        parse_prompts(json.dumps(document).encode())
    assert str(raised.value).startswith("config_sentence_transformers.json")
