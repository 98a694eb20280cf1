"""The loader refuses, before any upload, a modules.json the inference script cannot run."""

from __future__ import annotations

import json

import pytest

from loader.handler import handler
from loader.modules import UnsupportedModules, check_modules
from tests.fixtures.hub import make_repo
from tests.support.loader import TINY_FILES, hub_event, member_bytes, members, read_object

MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
    {
        "idx": 3,
        "name": "3",
        "path": "3_Normalize",
        "type": "sentence_transformers.models.Normalize",
    },
]
DENSE_FILES = ["1_Pooling/config.json", "2_Dense/config.json", "2_Dense/pytorch_model.bin"]


def test_supported_modules_with_dense_files_pass_in_their_order():
    modules = check_modules("org/model", json.dumps(MODULES).encode(), DENSE_FILES)
    assert [(m.kind, m.path) for m in modules] == [
        ("Transformer", ""),
        ("Pooling", "1_Pooling"),
        ("Dense", "2_Dense"),
        ("Normalize", "3_Normalize"),
    ]


def test_empty_module_list_is_refused_as_the_container_refuses_it():
    with pytest.raises(UnsupportedModules, match="must start with a Transformer module") as raised:
        check_modules("org/model", b"[]", [])
    assert "file 'modules.json'" in str(raised.value)


def test_newer_sentence_transformers_module_paths_are_read_by_class_name():
    modules = [{"path": "", "type": "sentence_transformers.base.modules.transformer.Transformer"}]
    parsed = check_modules("org/model", json.dumps(modules).encode(), [])
    assert [m.kind for m in parsed] == ["Transformer"]


def test_a_list_not_starting_with_the_transformer_is_refused_naming_its_kinds():
    modules = [MODULES[1], MODULES[0]]
    with pytest.raises(UnsupportedModules, match=r"start with a Transformer.*\['Pooling'"):
        check_modules("org/model", json.dumps(modules).encode(), DENSE_FILES)


@pytest.mark.parametrize(
    "order",
    [(0, 2, 1, 3), (0, 1, 3, 2), (0, 2, 3)],
    ids=["before-pooling", "after-normalize", "no-pooling"],
)
def test_dense_outside_pooling_and_normalize_is_refused(order):
    modules = [MODULES[index] for index in order]
    with pytest.raises(UnsupportedModules, match="after Pooling and before Normalize") as raised:
        check_modules("org/model", json.dumps(modules).encode(), DENSE_FILES)
    assert "file 'modules.json'" in str(raised.value)


def test_unsupported_kind_is_named_with_its_folder():
    modules = [*MODULES, {"path": "4_LayerNorm", "type": "sentence_transformers.models.LayerNorm"}]
    with pytest.raises(UnsupportedModules, match=r"LayerNorm \(4_LayerNorm\)"):
        check_modules("org/model", json.dumps(modules).encode(), DENSE_FILES)


def test_custom_class_named_like_a_builtin_is_refused_by_full_name():
    modules = [{"path": "", "type": "transformers_modules.org.custom_st.Transformer"}]
    with pytest.raises(UnsupportedModules, match=r"transformers_modules\.org\.custom_st"):
        check_modules("org/model", json.dumps(modules).encode(), [])


def test_dense_folder_without_config_is_refused_naming_the_file():
    with pytest.raises(UnsupportedModules, match="2_Dense/config.json"):
        packaged = ["1_Pooling/config.json", "2_Dense/model.safetensors"]
        check_modules("org/model", json.dumps(MODULES).encode(), packaged)


def test_a_pooling_folder_without_its_config_is_refused_naming_the_file():
    """The container would pool by mean without it, whatever the model was trained with."""
    packaged = ["2_Dense/config.json", "2_Dense/model.safetensors"]
    with pytest.raises(UnsupportedModules, match=r"Pooling module in '1_Pooling' lacks \['1_Pool"):
        check_modules("org/model", json.dumps(MODULES).encode(), packaged)


@pytest.mark.parametrize("path", ["pooling", "0_Transformer/1_Pooling"])
def test_a_module_outside_the_folders_the_loader_packages_is_refused(path):
    modules = [MODULES[0], {**MODULES[1], "path": path}]
    packaged = [f"{path}/config.json"]
    with pytest.raises(UnsupportedModules, match="is not at the repository's root nor in a module"):
        check_modules("org/model", json.dumps(modules).encode(), packaged)


@pytest.mark.parametrize("path", ["../1_Pooling", "/tmp/p"])
def test_a_module_outside_the_model_folder_is_refused(path):
    modules = [MODULES[0], {**MODULES[1], "path": path}]
    with pytest.raises(UnsupportedModules, match="lists module paths outside the model's folder"):
        check_modules("org/model", json.dumps(modules).encode(), [f"{path}/config.json"])


def test_modules_json_that_is_not_a_list_is_refused():
    with pytest.raises(UnsupportedModules, match="must be a list"):
        check_modules("org/model", b'{"type": "Dense"}', [])


def test_dense_model_is_packaged_with_its_module_folder(hub, aws, s3_bucket):
    files = {
        **TINY_FILES,
        "modules.json": json.dumps(MODULES).encode(),
        "1_Pooling/config.json": b'{"pooling_mode": "mean"}',
        "2_Dense/config.json": b'{"in_features": 8, "out_features": 4}',
        "2_Dense/model.safetensors": b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ",
        "2_Dense/pytorch_model.bin": b"duplicate weights",
    }
    repo = hub.register(make_repo("test-org/dense", files))
    result = handler(hub_event(s3_bucket, model_id="test-org/dense"), None)
    assert {"2_Dense/config.json", "2_Dense/model.safetensors"} <= set(result["files"])
    assert "2_Dense/pytorch_model.bin" not in result["files"]
    archive = read_object(aws.client("s3"), result["model_data_url"])
    assert "2_Dense" in [member.name for member in members(archive) if member.isdir()]
    assert member_bytes(archive, "modules.json") == files["modules.json"]
    modules_url = f"/{repo.repo_id}/resolve/{repo.commit}/modules.json"
    assert hub.downloads().count(modules_url) == 1  # read once: checked, then archived
