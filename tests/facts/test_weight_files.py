"""A sharded checkpoint's index may name only its own shards, present beside it."""

from __future__ import annotations

import json

import pytest

from facts.weight_files import index_problem

SHARDS = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]


def index(*shards: str) -> bytes:
    return json.dumps({"weight_map": {f"t{i}": name for i, name in enumerate(shards)}}).encode()


def test_an_index_of_present_canonical_shards_passes():
    assert index_problem("model.safetensors.index.json", index(*SHARDS), SHARDS) is None


@pytest.mark.parametrize(
    "shard",
    [
        "notes.txt",
        "model-00001-of-00002.bin",
        "../model-00001-of-00002.safetensors",
        "sub/model-00001-of-00002.safetensors",
        "model-00001-of-00002.safetensors\n",
        "pytorch_model-00001-of-00002.bin",
    ],
)
def test_a_safetensors_index_naming_anything_but_its_shards_is_refused(shard):
    problem = index_problem("model.safetensors.index.json", index(SHARDS[0], shard), [shard])
    assert problem is not None and "not shards of model.safetensors" in problem


def test_a_pytorch_index_takes_pytorch_shards_only():
    shards = ["pytorch_model-00001-of-00001.bin"]
    assert index_problem("pytorch_model.bin.index.json", index(*shards), shards) is None
    problem = index_problem("pytorch_model.bin.index.json", index("x.pt"), ["x.pt"])
    assert problem is not None and "x.pt" in problem


def test_a_shard_the_folder_lacks_is_named():
    problem = index_problem("model.safetensors.index.json", index(*SHARDS), SHARDS[:1])
    assert problem == f"model.safetensors.index.json names shards the folder lacks: {SHARDS[1:]}"


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"{not json", "is not valid JSON"),
        (b"[]", "has no 'weight_map' object"),
        (b'{"weight_map": {"a": 1}}', "has no 'weight_map' object"),
    ],
)
def test_an_unreadable_index_is_refused(data, says):
    assert says in (index_problem("1_X/model.safetensors.index.json", data, []) or "")
