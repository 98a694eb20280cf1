"""Which repo files get packaged: one weights format, configs, tokenizer, module folders."""

from __future__ import annotations

import pytest

from loader.selection import (
    NoOnnxExportError,
    NoTokenizerError,
    NoWeightsError,
    RepoFile,
    check_tokenizer,
    has_onnx_export,
    is_weights,
    select_files,
)
from tests.support.loader import ONNX_ARCHIVE_MODEL_FILES


def listing(*paths: str) -> list[RepoFile]:
    return [RepoFile(path, 10) for path in paths]


def selected(*paths: str) -> list[str]:
    return [item.path for item in select_files("org/model", listing(*paths))]


SENTENCE_TRANSFORMERS_FILES = (
    ".gitattributes",
    "1_Pooling/config.json",
    "README.md",
    "config.json",
    "config_sentence_transformers.json",
    "data_config.json",
    "model.safetensors",
    "modules.json",
    "sentence_bert_config.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
)


def test_reference_layout_keeps_inference_files_and_drops_docs_and_training_data():
    assert selected(*SENTENCE_TRANSFORMERS_FILES) == [
        "1_Pooling/config.json",
        "config.json",
        "config_sentence_transformers.json",
        "model.safetensors",
        "modules.json",
        "sentence_bert_config.json",
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
    ]


def test_duplicate_weight_formats_keep_only_safetensors():
    paths = selected(
        "config.json",
        "model.safetensors",
        "pytorch_model.bin",
        "tf_model.h5",
        "flax_model.msgpack",
        "rust_model.ot",
        "onnx/model.onnx",
        "onnx/config.json",
        "openvino/openvino_model.xml",
        "openvino/openvino_model.bin",
        "model.gguf",
    )
    assert paths == ["config.json", "model.safetensors"]


def test_sharded_safetensors_keep_every_shard_and_their_index_only():
    paths = selected(
        "config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "pytorch_model-00001-of-00002.bin",
        "pytorch_model-00002-of-00002.bin",
        "pytorch_model.bin.index.json",
        "tf_model.h5.index.json",
    )
    assert paths == [
        "config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
    ]


def test_shards_without_their_index_are_no_weights_transformers_loads():
    with pytest.raises(NoWeightsError, match="at its root"):
        selected("config.json", "model-00001-of-00002.safetensors", "vocab.txt")


def test_an_adapter_is_no_weights_and_its_config_is_never_packaged():
    """With peft, transformers would load adapter_config.json's base model from the Hub."""
    with pytest.raises(NoWeightsError, match="at its root"):
        selected("adapter_config.json", "adapter_model.safetensors", "vocab.txt")
    assert selected("adapter_config.json", "model.safetensors", "vocab.txt") == [
        "model.safetensors",
        "vocab.txt",
    ]


def test_an_index_beside_the_single_file_it_would_replace_is_not_packaged():
    assert selected("model.safetensors", "model.safetensors.index.json") == ["model.safetensors"]


def test_bin_only_repo_keeps_pytorch_weights_and_not_training_args():
    paths = selected("config.json", "pytorch_model.bin", "training_args.bin", "vocab.txt")
    assert paths == ["config.json", "pytorch_model.bin", "vocab.txt"]


def test_precision_variants_are_dropped_when_a_canonical_checkpoint_exists():
    assert selected("config.json", "model.safetensors", "model.fp16.safetensors") == [
        "config.json",
        "model.safetensors",
    ]


def test_only_precision_variants_at_the_root_are_refused_naming_them():
    with pytest.raises(NoWeightsError, match=r"at its root .*\['config\.json', 'model\.fp16\.s"):
        selected("config.json", "model.fp16.safetensors", "pytorch_model.fp16.bin")


def test_a_variant_beside_a_pytorch_checkpoint_leaves_the_bin_chosen():
    assert selected("config.json", "model.fp16.safetensors", "pytorch_model.bin") == [
        "config.json",
        "pytorch_model.bin",
    ]


def test_a_module_folder_with_only_variant_weights_is_refused_naming_it():
    with pytest.raises(NoWeightsError, match=r"in 2_Dense/ "):
        selected("model.safetensors", "2_Dense/config.json", "2_Dense/model.fp16.safetensors")


def test_the_index_of_a_sharded_variant_is_not_packaged():
    paths = selected(
        "model.safetensors", "model.fp16.safetensors.index.json", "model-00001-of-00001.fp16.x"
    )
    assert paths == ["model.safetensors"]


@pytest.mark.parametrize(
    "files",
    [
        ("tokenizer.json",),
        ("vocab.txt",),
        ("vocab.json", "merges.txt"),
        ("sentencepiece.bpe.model",),
        ("0_Transformer/spiece.model",),
    ],
)
def test_a_tokenizer_in_any_usual_form_passes_the_check(files):
    check_tokenizer("org/model", ["model.safetensors", "tokenizer_config.json", *files])


def test_no_tokenizer_files_are_refused_naming_what_is_missing():
    with pytest.raises(NoTokenizerError, match="org/model has no tokenizer files"):
        check_tokenizer("org/model", ["model.safetensors", "tokenizer_config.json", "config.json"])


def test_module_folder_weights_follow_the_same_preference():
    paths = selected(
        "model.safetensors",
        "2_Dense/config.json",
        "2_Dense/model.safetensors",
        "2_Dense/pytorch_model.bin",
    )
    assert paths == ["2_Dense/config.json", "2_Dense/model.safetensors", "model.safetensors"]


def test_non_module_folders_are_not_packaged():
    assert selected("model.safetensors", "checkpoints/step-100/config.json", "docs/x.txt") == [
        "model.safetensors"
    ]


def test_repo_without_pytorch_weights_is_rejected_naming_what_it_has():
    with pytest.raises(NoWeightsError, match=r"org/model .*tf_model\.h5"):
        select_files("org/model", listing("config.json", "tf_model.h5", "onnx/model.onnx"))


def test_selection_is_sorted_by_path_bytes():
    paths = selected("vocab.txt", "Config.json", "model.safetensors", "1_Pooling/config.json")
    assert paths == sorted(paths, key=str.encode)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("model.safetensors", True),
        ("pytorch_model.bin", True),
        ("onnx/model.onnx", True),
        ("onnx/model.onnx_data", True),
        ("config.json", False),
    ],
)
def test_weights_are_recognised_by_suffix(path, expected):
    assert is_weights(path) is expected


def test_dense_folder_with_only_pytorch_weights_keeps_its_bin_and_config():
    paths = selected("model.safetensors", "2_Dense/config.json", "2_Dense/pytorch_model.bin")
    assert paths == ["2_Dense/config.json", "2_Dense/pytorch_model.bin", "model.safetensors"]


def test_labse_layout_keeps_pooling_dense_and_normalize_folders():
    paths = selected(
        "modules.json",
        "model.safetensors",
        "pytorch_model.bin",
        "tf_model.h5",
        "1_Pooling/config.json",
        "2_Dense/config.json",
        "2_Dense/model.safetensors",
        "2_Dense/pytorch_model.bin",
        "3_Normalize/.gitkeep",
    )
    assert paths == [
        "1_Pooling/config.json",
        "2_Dense/config.json",
        "2_Dense/model.safetensors",
        "model.safetensors",
        "modules.json",
    ]


HUB_ONNX_LAYOUT = (
    *SENTENCE_TRANSFORMERS_FILES,
    "pytorch_model.bin",
    "onnx/model.onnx",
    "onnx/model_O1.onnx",
    "onnx/model_O2.onnx",
    "onnx/model_O3.onnx",
    "onnx/model_O4.onnx",
    "onnx/model_qint8_arm64.onnx",
    "onnx/model_qint8_avx512_vnni.onnx",
    "onnx/model_quint8_avx2.onnx",
    "openvino/openvino_model.xml",
    "openvino/openvino_model.bin",
    "openvino/openvino_model_qint8_quantized.bin",
)


def onnx_selected(*paths: str) -> list[str]:
    return [item.path for item in select_files("org/model", listing(*paths), engine="onnx")]


def test_onnx_engine_keeps_exactly_the_export_and_no_pytorch_weights():
    assert onnx_selected(*HUB_ONNX_LAYOUT) == list(ONNX_ARCHIVE_MODEL_FILES)


def test_onnx_engine_keeps_the_external_data_file_of_a_large_graph():
    paths = onnx_selected("config.json", "onnx/model.onnx", "onnx/model.onnx_data", "model.onnx")
    assert paths == ["config.json", "onnx/model.onnx", "onnx/model.onnx_data"]


def test_onnx_engine_still_keeps_dense_module_weights():
    paths = onnx_selected(
        "config.json",
        "model.safetensors",
        "onnx/model.onnx",
        "2_Dense/config.json",
        "2_Dense/model.safetensors",
    )
    assert paths == [
        "2_Dense/config.json",
        "2_Dense/model.safetensors",
        "config.json",
        "onnx/model.onnx",
    ]


def test_onnx_engine_without_the_export_names_the_file_and_the_onnx_files_there():
    with pytest.raises(NoOnnxExportError, match=r"onnx/model\.onnx .*model_O1\.onnx"):
        onnx_selected("config.json", "model.safetensors", "onnx/model_O1.onnx")


def test_torch_engine_never_packages_onnx_files():
    assert not [path for path in selected(*HUB_ONNX_LAYOUT) if "onnx" in path]


def test_has_onnx_export_looks_for_exactly_onnx_model_onnx():
    assert has_onnx_export(HUB_ONNX_LAYOUT)
    assert not has_onnx_export(["model.onnx", "onnx/model_O1.onnx", "onnx/model_fp16.onnx"])


def test_the_graphs_external_data_is_packaged_under_either_exporters_name():
    for data in ("onnx/model.onnx_data", "onnx/model.onnx.data"):
        paths = onnx_selected(*SENTENCE_TRANSFORMERS_FILES, "onnx/model.onnx", data)
        assert {"onnx/model.onnx", data} <= set(paths)


def test_other_graphs_their_data_and_tokenizer_copies_in_onnx_leave_the_export_usable():
    layout = (
        *HUB_ONNX_LAYOUT,
        "onnx/model_O4.onnx_data",
        "onnx/model_fp16.onnx.data",
        "onnx/config.json",
        "onnx/tokenizer.json",
        "onnx/sentencepiece.bpe.model",
    )
    assert has_onnx_export(layout)
    assert [p for p in onnx_selected(*layout) if p.startswith("onnx/")] == ["onnx/model.onnx"]


def test_an_unknown_file_in_onnx_may_be_weights_so_the_export_is_not_used():
    # bge-m3 style: the graph keeps a tensor in a file named after its node.
    layout = (*HUB_ONNX_LAYOUT, "onnx/model.onnx_data", "onnx/Constant_7_attr__value")
    assert not has_onnx_export(layout)
    with pytest.raises(NoOnnxExportError, match=r"onnx/Constant_7_attr__value.*external weights"):
        onnx_selected(*layout)
