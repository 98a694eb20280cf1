"""Which weight files transformers loads from a folder, and the index of a sharded checkpoint.

transformers opens every file a `*.index.json` names in its `weight_map`, and opens any name that
does not end in `.safetensors` with `torch.load`: an index naming `notes.txt` loads a pickle
(or TorchScript, which runs code even under `weights_only=True` before torch 2.6) from a file no
pickle check looked at. The loader refuses such an index before packaging and the container
before loading (standard library only, Python 3.9-safe: copied into `code/facts/`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection

# What transformers 4 loads from a folder, in its order: model.safetensors, else the shards
# model.safetensors.index.json names, else pytorch_model.bin, else the shards of its index. Shards
# without their index are never read (and do not keep a .bin beside them from being loaded).
# Precision variants (model.fp16.safetensors) need a `variant=` and are never packaged; adapters
# (adapter_model.*, adapter_config.json) would make transformers fetch their base model.
CHECKPOINTS = (
    ("safetensors", "model.safetensors", re.compile(r"model-\d{5}-of-\d{5}\.safetensors")),
    ("bin", "pytorch_model.bin", re.compile(r"pytorch_model-\d{5}-of-\d{5}\.bin")),
)
_SHARDS_OF = {single: shard for _, single, shard in CHECKPOINTS}
LOADED_INDEXES = tuple(f"{single}.index.json" for _, single, _ in CHECKPOINTS)
# With peft installed, transformers reads this file and loads `base_model_name_or_path` instead.
ADAPTER_CONFIG = "adapter_config.json"


def loaded_weights(names: Collection[str]) -> tuple[list[str], str | None]:
    """The weight files transformers loads from a folder holding `names`, and their format
    (`safetensors`, `bin`; None: no weights it loads)."""
    for fmt, single, shard in CHECKPOINTS:
        if single in names:
            return [single], fmt
        if f"{single}.index.json" in names:
            return sorted(name for name in names if shard.fullmatch(name)), fmt
    return [], None


def used_index(names: Collection[str], fmt: str | None) -> list[str]:
    """The index transformers reads among `names` for the format `fmt` ([] when it reads the
    single file instead, or there is none)."""
    for each, single, _ in CHECKPOINTS:
        if each == fmt and single not in names and f"{single}.index.json" in names:
            return [f"{single}.index.json"]
    return []


def is_checkpoint_file(name: str) -> bool:
    """A file of a checkpoint transformers may load: a weights file, a shard or an index."""
    if name in LOADED_INDEXES:
        return True
    return any(name == single or shard.fullmatch(name) for _, single, shard in CHECKPOINTS)


def index_problem(index: str, data: bytes, folder_files: Collection[str]) -> str | None:
    """Why the index file `index` (its bytes `data`) may not be loaded; None: it may.

    Its shards must be the canonical shards of its own format (`model-00001-of-00002.safetensors`
    for `model.safetensors.index.json`), by bare name, present in its folder (`folder_files`).
    """
    weights = index.rsplit("/", 1)[-1][: -len(".index.json")]
    pattern = _SHARDS_OF.get(weights)
    if pattern is None:
        return None  # transformers loads no other index (TF and Flax are not packaged)
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        return f"{index} is not valid JSON: {error}"
    weight_map = document.get("weight_map") if isinstance(document, dict) else None
    if not isinstance(weight_map, dict) or not all(
        isinstance(name, str) for name in weight_map.values()
    ):
        return f"{index} has no 'weight_map' object of tensor name → shard file name"
    shards = sorted(set(weight_map.values()))
    foreign = [name for name in shards if not pattern.fullmatch(name)]
    if foreign:
        return (
            f"{index} sends tensors to {foreign[:5]}, which are not shards of {weights} "
            f"({pattern.pattern}): transformers would open them as weights, and a file that is "
            "not safetensors with torch.load, which can run code"
        )
    missing = [name for name in shards if name not in folder_files]
    if missing:
        return f"{index} names shards the folder lacks: {missing[:5]}"
    return None
