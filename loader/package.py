"""Packaging a Hub model at a pinned commit into a reproducible archive in S3."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from facts.artifact_keys import ArtifactLocation, artifact_location
from facts.loader_contract import LoaderRequest, LoaderResult
from facts.model_code import CONFIG_FILE
from facts.onnx_external_data import graph_file_problem
from facts.onnx_fusion import MAX_FUSED_GRAPH_BYTES
from facts.onnx_quantization import (
    MAX_QUANTIZED_GRAPH_BYTES,
    NO_QUANTIZATION,
    QUANTIZATION_PACKAGES,
)
from facts.onnx_runtime import external_data_files
from facts.sentence_modules import PROMPTS_FILE
from loader.archive import Member, TarEntry, gzip_size, tar_size
from loader.artifacts import lookup_existing
from loader.errors import GatedRepoAccessDenied, LoaderError, PickledWeights
from loader.graph_fusion import fuse_graph, optimizer_problem
from loader.graph_quantization import quantize_graph
from loader.hub import fetch_snapshot, stream_file
from loader.modules import MAX_MODULES_BYTES, MODULES_FILE, UnsupportedModules, check_modules
from loader.publish import publish
from loader.quantization_check import (
    QualityReport,
    QuantizationRefused,
    check_quantized,
    check_settings,
)
from loader.repo_configs import (
    check_tokenizer_code,
    checked_config_file,
    checked_prompts_file,
    checked_weight_indexes,
)
from loader.selection import (
    NoTokenizerError,
    NoWeightsError,
    RepoFile,
    check_tokenizer,
    pickled_weights_problem,
    select_files,
)
from loader.upload import part_size_for
from loader.version import container_code, format_version

log = logging.getLogger(__name__)
# Reads of a graph from local disk into the archive (as the Hub's files stream, in chunks).
READ_CHUNK = 1024 * 1024


def parent_directories(paths: list[str]) -> list[str]:
    """Every folder that holds one of `paths` (tar entries of their own, for strict extractors)."""
    folders = set()
    for path in paths:
        parts = path.split("/")[:-1]
        folders.update("/".join(parts[: depth + 1]) for depth in range(len(parts)))
    return sorted(folders)


def checked_modules_file(
    model: str, revision: str, selected: list[RepoFile], token: str | None
) -> bytes | None:
    """modules.json's bytes (when the repo has one), refused before any upload if the script
    cannot run it; the same bytes then go into the archive.
    """
    item = next((f for f in selected if f.path == MODULES_FILE), None)
    if item is None:
        return None
    if item.size > MAX_MODULES_BYTES:
        raise UnsupportedModules(
            f"modules.json is {item.size} bytes, over {MAX_MODULES_BYTES}: not a "
            "sentence-transformers module list",
            step="check-modules",
            model=model,
            file=MODULES_FILE,
        )
    data = b"".join(stream_file(model, revision, item, token))
    check_modules(model, data, [f.path for f in selected])
    return data


def package_hub_model(request: LoaderRequest, s3: Any, token: str | None) -> LoaderResult:
    """Resolve, select, stream every file into one archive upload; idempotent per commit."""
    version = format_version(request.runtime, request.onnx_fusion, request.onnx_quantization)
    model = request.model_id
    snapshot = fetch_snapshot(model, request.revision, token)
    if snapshot.gated and not token:
        raise GatedRepoAccessDenied(
            f"'{model}' is a gated repo and no token was given: accept its terms on the Hub, then "
            "set a token of that account (config secret hfToken, or hfTokenSecretArn)",
            step="list-files",
            model=model,
        )
    try:
        selected = select_files(model, snapshot.files, request.engine, request.onnx_file)
        check_tokenizer(model, [item.path for item in selected])
    except (NoWeightsError, NoTokenizerError) as error:
        raise LoaderError(str(error), step="select-files", model=model) from error
    problem = pickled_weights_problem(f"{model} at {snapshot.revision}", [f.path for f in selected])
    if problem is not None and not request.allow_pickled_weights:
        raise PickledWeights(problem, step="select-files", model=model)
    location = artifact_location(
        request.bucket,
        request.key_prefix,
        model,
        snapshot.revision,
        version,
        request.artifact_variant,
    )
    existing = lookup_existing(s3, location, version, model, request.expected_sha256)
    if existing is not None:
        log.info("artifact already present, nothing to do: %s", location.url)
        return existing

    config = None
    if request.engine == "torch":
        config = checked_config_file(model, snapshot.revision, selected, token)
    check_tokenizer_code(model, snapshot.revision, selected, token)
    modules = checked_modules_file(model, snapshot.revision, selected, token)
    indexes = checked_weight_indexes(model, snapshot.revision, selected, token)
    prompts = checked_prompts_file(model, snapshot.revision, selected, token)
    code = container_code(request.runtime)
    files: dict[str, RepoFile | bytes | Path] = {item.path: item for item in selected}
    if config is not None:
        files[CONFIG_FILE] = config
    if modules is not None:
        files[MODULES_FILE] = modules
    files.update(indexes)
    if prompts is not None:
        files[PROMPTS_FILE] = prompts
    files.update(code)
    with tempfile.TemporaryDirectory(prefix="graph-") as scratch:
        report = None
        if request.onnx_fusion or request.onnx_quantization != NO_QUANTIZATION:
            graph = packaged_graph(request, snapshot.revision, selected, token, Path(scratch))
            if graph is not None:
                files[request.onnx_file] = graph
        if request.onnx_quantization != NO_QUANTIZATION:
            quantized, report = quantized_graph(request, snapshot.revision, files, token, graph)
            files[request.onnx_file] = quantized
        return _publish_files(request, s3, location, snapshot.revision, files, token, report)


def packaged_graph(
    request: LoaderRequest, commit: str, selected: list[RepoFile], token: str | None, scratch: Path
) -> Path | None:
    """The graph to package in place of the repository's, on local disk; None: stream the repo's.

    Downloaded only when it may be fused or quantized (one file within MAX_FUSED_GRAPH_BYTES);
    then the fused graph when fusion was asked for, else the download itself.
    """
    model = request.model_id
    item = next((f for f in selected if f.path == request.onnx_file), None)
    if item is None:
        return None
    beside = sorted(set(external_data_files(item.path)) & {f.path for f in selected})
    reason = f"its weights are in {beside[0]}" if beside else None
    if item.size > MAX_FUSED_GRAPH_BYTES:
        reason = f"it is {item.size} bytes, over {MAX_FUSED_GRAPH_BYTES}"
    if reason is not None:
        log.info("%s packaged unfused: %s", item.path, reason)
        return None
    export = scratch / "export.onnx"
    with export.open("wb") as handle:
        for chunk in stream_file(model, commit, item, token):
            handle.write(chunk)
    problem = graph_file_problem(str(export), ())  # a one-file graph: nothing lies beside it
    if problem is not None:
        raise LoaderError(problem, step="check-graph", model=model, file=item.path)
    if not request.onnx_fusion:
        return export
    fused = scratch / "fused.onnx"
    report = fuse_graph(export, fused, model)
    log.info("%s %s", item.path, report.describe())
    return fused if report.applied else export


def quantized_graph(
    request: LoaderRequest,
    commit: str,
    files: dict[str, RepoFile | bytes | Path],
    token: str | None,
    graph: Path | None,
) -> tuple[Path, QualityReport]:
    """The int8 graph beside `graph` and its quality report; QuantizationRefused otherwise.

    The repository's small files the check reads (tokenizer, Pooling and sentence-transformers
    configs) replace their entries in `files` as bytes, so the archive does not fetch them again.
    """
    model = request.model_id
    if graph is None:
        raise QuantizationRefused(
            f"onnxQuantization int8 needs {request.onnx_file} as one file of at most "
            f"{MAX_QUANTIZED_GRAPH_BYTES} bytes (the loader quantizes and checks it within its "
            f"memory), and '{model}' ships it larger or with its weights beside it: set "
            "onnxQuantization none",
            step="quantize-graph",
            model=model,
            file=request.onnx_file,
        )
    problem = optimizer_problem(QUANTIZATION_PACKAGES, "quantizing the ONNX graph")
    if problem:
        raise QuantizationRefused(problem, step="quantize-graph", model=model)

    def read(path: str) -> bytes | None:
        value = files.get(path)
        if isinstance(value, RepoFile):
            files[path] = value = b"".join(stream_file(model, commit, value, token))
        return value if isinstance(value, bytes) else None

    settings = check_settings(model, read)
    quantized = graph.with_name("int8.onnx")
    quantize_graph(graph, quantized)
    return quantized, check_quantized(model, graph, quantized, settings)


def _publish_files(
    request: LoaderRequest,
    s3: Any,
    location: ArtifactLocation,
    revision: str,
    files: dict[str, RepoFile | bytes | Path],
    token: str | None,
    report: QualityReport | None = None,
) -> LoaderResult:
    """Frame `files` (repo files streamed, local files read, bytes as they are) and publish."""
    model = request.model_id
    entries = [TarEntry(d, 0, is_directory=True) for d in parent_directories(list(files))]
    entries += [TarEntry(name, _size(value)) for name, value in files.items()]
    entries.sort(key=lambda e: e.name.encode("utf-8"))
    total = gzip_size(tar_size(entries))
    log.info("packaging %s@%s: %d files, %d bytes", model, revision, len(files), total)

    def members() -> Iterator[Member]:
        for entry in entries:
            value = files.get(entry.name)
            if isinstance(value, RepoFile):
                yield entry, stream_file(model, revision, value, token)
            elif isinstance(value, Path):
                yield entry, _read_chunks(value)
            else:  # a folder, or bytes already in memory
                yield entry, () if value is None else (value,)

    quality = None if report is None else report.as_dict()
    result = publish(s3, location, request, revision, members(), part_size_for(total), quality)
    log.info("packaged %s: sha256 %s, %d bytes", location.url, result.sha256, result.size_bytes)
    return result


def _size(value: RepoFile | bytes | Path) -> int:
    if isinstance(value, RepoFile):
        return value.size
    return value.stat().st_size if isinstance(value, Path) else len(value)


def _read_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            yield chunk
