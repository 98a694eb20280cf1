"""Which files of a Hub repo an inference container needs (pure): one weights format per folder,
no repository code, no duplicate formats; for the ONNX engine one graph instead (docs/loader.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from facts.onnx_runtime import ONNX_MODEL_FILE, external_data_files
from facts.pickled_weights import ALLOW_PICKLES_KEY, PICKLE_SUFFIXES
from facts.weight_files import ADAPTER_CONFIG, is_checkpoint_file, loaded_weights, used_index

# sentence-transformers modules live in folders such as "1_Pooling" or "2_Dense".
_MODULE_FOLDER = re.compile(r"^\d+_[A-Za-z][A-Za-z0-9_]*$")
_SUPPORT_SUFFIXES = (".json", ".txt", ".model", ".tiktoken")
_TRAINING_LEFTOVERS = frozenset({"data_config.json", "trainer_state.json", ADAPTER_CONFIG})
# The files a tokenizer loads from: the fast tokenizer's tokenizer.json, or a vocabulary
# (WordPiece's vocab.txt, BPE's vocab.json, SentencePiece's *.model, tiktoken's *.tiktoken).
_TOKENIZER_FILE = re.compile(r"^(tokenizer\.json|vocab\.txt|vocab\.json|.+\.model|.+\.tiktoken)$")
# Weights under another name (model.fp16.safetensors, pytorch_model.fp16.bin), no leftover.
_VARIANT_WEIGHTS = re.compile(r"^(model|pytorch_model)\.[^/]+\.(safetensors|bin)$")
WEIGHT_SUFFIXES = (
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".h5",
    ".msgpack",
    ".onnx",
    ".onnx_data",
    ".onnx.data",
)


@dataclass(frozen=True)
class RepoFile:
    """A file in a repo listing, with its size from the Hub's file metadata."""

    path: str
    size: int


class NoWeightsError(ValueError):
    """The repo root has neither safetensors nor PyTorch .bin weights."""


class NoTokenizerError(ValueError):
    """The repo has no tokenizer files: the endpoint could not read text as the model does."""


class NoOnnxExportError(NoWeightsError):
    """The ONNX engine was asked for, but the repo lacks a usable onnx/model.onnx (or onnxFile)."""


def is_weights(path: str) -> bool:
    """True for tensor files (what `weights_bytes` counts)."""
    return path.endswith(WEIGHT_SUFFIXES)


def pickled_weights(paths: Iterable[str]) -> list[str]:
    """The pickles among the weights the container loads from `paths`, sorted.

    Per folder: none where safetensors are present, else its `pytorch_model*.bin`; other pickles
    (`training_args.bin`) are never loaded.
    """
    by_folder: dict[str, list[str]] = {}
    for path in paths:
        if _in_scope(path):
            by_folder.setdefault(_folder_of(path), []).append(path.rsplit("/", 1)[-1])
    found = []
    for folder, names in by_folder.items():
        weights, _ = loaded_weights(set(names))
        prefix = f"{folder}/" if folder else ""
        found.extend(prefix + name for name in weights if name.endswith(PICKLE_SUFFIXES))
    return sorted(found)


def pickled_weights_problem(source: str, paths: Iterable[str]) -> str | None:
    """Why `source`'s weights are refused (None: they are not pickles), naming the way out."""
    pickles = pickled_weights(paths)
    if not pickles:
        return None
    return (
        f"{source} has weights only as pickles ({', '.join(pickles)}): loading a pickle can run "
        "code in the endpoint's container, under its execution role. Choose a revision or model "
        f"with safetensors weights, or set {ALLOW_PICKLES_KEY}: true if you trust whoever can "
        "write to this repository (docs/configuration.md)"
    )


def _folder_of(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def names_in_folder(paths: Iterable[str], folder: str) -> set[str]:
    """The bare names of the files among `paths` that lie directly in `folder` ("": the root)."""
    return {path.rpartition("/")[2] for path in paths if path.rpartition("/")[0] == folder}


def _in_scope(path: str) -> bool:
    """Root files and files directly inside a sentence-transformers module folder."""
    parts = path.split("/")
    return len(parts) == 1 or (len(parts) == 2 and is_module_folder(parts[0]))


def is_module_folder(path: str) -> bool:
    """A folder a sentence-transformers module may live in: `1_Pooling`, `2_Dense`."""
    return bool(_MODULE_FOLDER.fullmatch(path))


def may_package(path: str) -> bool:
    """Whether a source archive's file may go into the archive: canonical weights, their index
    or a support file (configs, vocabularies), at the root or in a module folder.

    Everything else is left out: Python files above all (the model server's worker has the
    model folder on its import path, so a `sitecustomize.py` there runs at start), and
    checkpoints, logs and pickles the container never loads.
    """
    if not _in_scope(path):
        return False
    name = path.rsplit("/", 1)[-1]
    return is_checkpoint_file(name) or (
        name.endswith(_SUPPORT_SUFFIXES) and name not in _TRAINING_LEFTOVERS
    )


# Files in `onnx/` that are no weights of the chosen graph: other graphs and their data, and
# the tokenizer and config copies some repos keep there.
_ONNX_FOLDER_EXTRAS = re.compile(
    r"^onnx/(?:[^/]+\.onnx|model_[^/]+\.onnx(?:_data|\.data)|[^/]+\.(?:json|txt|md|model))$"
)


def onnx_export_problem(paths: Iterable[str], graph: str = ONNX_MODEL_FILE) -> str | None:
    """Why the ONNX engine cannot run this repo's export `graph` (None: it can).

    Any other file in `onnx/` may be weights the graph references by a name of its own, which the
    archive would lack: such a repo is PyTorch's under `auto`.
    """
    paths = set(paths)
    data_files = external_data_files(graph)
    other_graphs_data = {
        data for path in paths if path.endswith(".onnx") for data in external_data_files(path)
    } - set(data_files)
    if graph not in paths:
        graphs_and_data = (".onnx", ".onnx_data", ".onnx.data")
        found = sorted(path for path in paths if path.endswith(graphs_and_data))
        return f"{graph} is not in the repository (ONNX files there: {found or 'none'})"
    # A graph at the root has its external data beside it too; the root holds other weights
    # (safetensors, .bin) the check cannot tell from data under other names, so it looks in onnx/.
    unknown = sorted(
        path
        for path in paths
        if graph.startswith("onnx/")
        and path.startswith("onnx/")
        and path != graph
        and path not in data_files
        and path not in other_graphs_data
        and not _ONNX_FOLDER_EXTRAS.match(path)
    )
    if unknown:
        return (
            f"onnx/ also holds {unknown}, which may be external weights of {graph} "
            f"under other names than {list(data_files)}"
        )
    return None


def check_tokenizer(model_id: str, paths: Iterable[str]) -> None:
    """NoTokenizerError when the files to package hold no tokenizer at all.

    transformers 4 fails the endpoint's load on such a model, only once deployed; transformers 5
    builds a five-token vocabulary instead and reads every word as [UNK], so that every text
    gets nearly the same vector.
    """
    if not any(_TOKENIZER_FILE.match(path.rsplit("/", 1)[-1]) for path in paths):
        raise NoTokenizerError(
            f"{model_id} has no tokenizer files (tokenizer.json, vocab.txt, vocab.json or a "
            "SentencePiece *.model) at its root or in a module folder: the endpoint could not "
            "read text as the model does; choose a revision or model that ships its tokenizer"
        )


def has_onnx_export(paths: Iterable[str], graph: str = ONNX_MODEL_FILE) -> bool:
    """True when a repo listing holds the ONNX export `graph`, which the engine can run."""
    return onnx_export_problem(paths, graph) is None


def onnx_export_files(
    model_id: str, listing: Iterable[RepoFile], graph: str = ONNX_MODEL_FILE
) -> list[RepoFile]:
    """`graph` and its external-data file if listed; NoOnnxExportError otherwise."""
    by_path = {item.path: item for item in listing}
    problem = onnx_export_problem(by_path, graph)
    if problem is not None:
        remedy = (
            "use inferenceEngine auto or torch for this model"
            if graph == ONNX_MODEL_FILE
            else "set onnxFile to one of the repository's graphs, or unset it"
        )
        raise NoOnnxExportError(
            f"{model_id} has no ONNX export the engine can run: {problem}; {remedy}"
        )
    wanted = (graph, *external_data_files(graph))
    return [by_path[path] for path in wanted if path in by_path]


def select_files(
    model_id: str,
    listing: Iterable[RepoFile],
    engine: str = "torch",
    onnx_file: str = ONNX_MODEL_FILE,
) -> list[RepoFile]:
    """The files to package for `engine`, sorted by path; NoWeightsError names what is there."""
    listing = list(listing)
    files = [f for f in listing if _in_scope(f.path)]
    by_folder: dict[str, list[RepoFile]] = {}
    for item in files:
        by_folder.setdefault(_folder_of(item.path), []).append(item)

    selected: list[RepoFile] = []
    for folder, items in by_folder.items():
        names = [item.path.rsplit("/", 1)[-1] for item in items]
        weights, chosen = loaded_weights(set(names))
        if folder == "" and engine == "onnx":
            weights, chosen = [], None  # the ONNX graph holds the transformer's weights
        elif chosen is None and (folder == "" or any(map(_VARIANT_WEIGHTS.match, names))):
            where = "at its root" if folder == "" else f"in {folder}/"
            raise NoWeightsError(
                f"{model_id} has no PyTorch weights {where} that transformers loads "
                "(model.safetensors, model-0000N-of-0000M.safetensors or pytorch_model*.bin; "
                "precision variants such as model.fp16.safetensors need a `variant=` this "
                f"project does not pass); files there: {sorted(names)}"
            )
        keep = set(weights) | set(used_index(names, chosen))
        for name in names:
            if name.endswith(_SUPPORT_SUFFIXES) and not name.endswith(".index.json"):
                if name not in _TRAINING_LEFTOVERS:
                    keep.add(name)
        selected.extend(item for item, name in zip(items, names, strict=True) if name in keep)
    if engine == "onnx":
        selected.extend(onnx_export_files(model_id, listing, onnx_file))
    return sorted(selected, key=lambda f: f.path.encode("utf-8"))
