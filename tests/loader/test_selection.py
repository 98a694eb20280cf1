"""Which repo files get packaged: one weights format, configs, tokenizer, module folders."""

from __future__ import annotations

import pytest

from loader.selection import NoWeightsError, RepoFile, is_weights, select_files


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


def test_bin_only_repo_keeps_pytorch_weights_and_not_training_args():
    paths = selected("config.json", "pytorch_model.bin", "training_args.bin", "vocab.txt")
    assert paths == ["config.json", "pytorch_model.bin", "vocab.txt"]


def test_precision_variants_are_dropped_when_a_canonical_checkpoint_exists():
    assert selected("config.json", "model.safetensors", "model.fp16.safetensors") == [
        "config.json",
        "model.safetensors",
    ]


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
    [("model.safetensors", True), ("pytorch_model.bin", True), ("config.json", False)],
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
