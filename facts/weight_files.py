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

# The canonical (possibly sharded) checkpoint, the only one transformers loads without being
# told a `variant=`: precision variants such as model.fp16.safetensors are never packaged.
CANONICAL_SAFETENSORS = re.compile(r"(model|adapter_model)(-\d{5}-of-\d{5})?\.safetensors")
PYTORCH_BIN = re.compile(r"(pytorch_model|adapter_model)(-\d{5}-of-\d{5})?\.bin")
# The index of a sharded checkpoint (`model.safetensors.index.json`) and the shards it may name.
WEIGHT_INDEX = re.compile(r"(?P<weights>.+\.(safetensors|bin|h5|msgpack))\.index\.json")
_SHARDS_OF = {
    "model.safetensors": re.compile(r"model-\d{5}-of-\d{5}\.safetensors"),
    "adapter_model.safetensors": re.compile(r"adapter_model-\d{5}-of-\d{5}\.safetensors"),
    "pytorch_model.bin": re.compile(r"pytorch_model-\d{5}-of-\d{5}\.bin"),
    "adapter_model.bin": re.compile(r"adapter_model-\d{5}-of-\d{5}\.bin"),
}
LOADED_INDEXES = tuple(f"{name}.index.json" for name in _SHARDS_OF)


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
