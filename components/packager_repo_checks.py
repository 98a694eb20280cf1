"""The packager's preview checks on the pinned commit's files: its code, its weights, prompts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from components.packager_checks import CheckRun
from components.project_provider import is_unknown
from facts.onnx_runtime import ONNX_MODEL_FILE, RUNTIME_WHEELS, onnx_file_problem

if TYPE_CHECKING:
    from loader.selection import RepoFile


def check_model_code(run: CheckRun) -> None:
    """A model that is its repository's own code must run on the ONNX engine, found at preview.

    A pass is kept in the state (`model_code_checked`), so the Hub is asked once per pinned commit;
    when a sha pin cannot reach the Hub or the token, the loader checks before any upload.
    """
    from facts.model_code import custom_code_problem
    from loader.errors import LoaderError
    from loader.repo_configs import custom_code_classes

    olds, inputs = run.olds, run.inputs
    pinned = inputs.get("pinned_revision")
    inputs["model_code_checked"] = None
    if inputs.get("engine") != "torch" or not pinned or is_unknown(pinned):
        return
    if inputs.get("source_model_data_url"):
        return  # the user's own archive: the loader checks its config.json while streaming it
    if olds.get("model_code_checked") == pinned and olds.get("model_id") == inputs.get("model_id"):
        inputs["model_code_checked"] = pinned
        return
    listed_at_preview = run.listing is not None
    try:
        files = run.files()
        classes = custom_code_classes(inputs["model_id"], pinned, files, run.token())
    except LoaderError as error:
        if listed_at_preview:
            run.fail_on(error, "model_id")
        return
    if not classes:
        inputs["model_code_checked"] = pinned
        return
    key, remedy = _model_code_remedy(inputs, files)
    run.fail(
        key,
        f"model '{inputs['model_id']}' at {pinned} cannot run on PyTorch here: "
        f"{custom_code_problem(classes)}. {remedy}",
    )


def _model_code_remedy(inputs: Mapping[str, Any], files: tuple[RepoFile, ...]) -> tuple[str, str]:
    """The input to change, and how, for a model that is its repository's own code."""
    from loader.selection import onnx_export_problem

    export_problem = onnx_export_problem(item.path for item in files)
    root_graphs = sorted(
        item.path for item in files if "/" not in item.path and item.path.endswith(".onnx")
    )
    # Other graphs in onnx/ the engine could be asked for (those a name alone does not refuse).
    other_graphs = sorted(
        item.path
        for item in files
        if item.path.startswith("onnx/")
        and item.path.endswith(".onnx")
        and onnx_file_problem(item.path) is None
        and onnx_export_problem((f.path for f in files), item.path) is None
    )
    if export_problem is not None and other_graphs:
        return (
            "onnx_file",
            f"It has no {ONNX_MODEL_FILE} but other graphs in onnx/ ({', '.join(other_graphs)}):"
            " set onnxFile to one of them (with inferenceEngine auto or onnx), and the ONNX "
            "engine serves it from that graph, without that code (quantized graphs, `*int8*`, "
            "`*quantized*`, give vectors about 0.99 in cosine from the fp32 ones)",
        )
    if export_problem is not None and root_graphs:
        graph = "model.onnx" if "model.onnx" in root_graphs else root_graphs[0]
        return (
            "onnx_file",
            f"It keeps its ONNX graphs at the repository root ({', '.join(root_graphs)}), not "
            f"at {ONNX_MODEL_FILE}: set onnxFile {graph} (with inferenceEngine auto or onnx), "
            "and the ONNX engine serves it from that graph, without that code",
        )
    if export_problem is not None:
        return (
            "model_id",
            f"It ships no export the ONNX engine can run either ({export_problem}), and only "
            "that engine serves such a model here: choose another model",
        )
    if (inputs.get("inference_engine") or "torch") == "torch":
        return (
            "inference_engine",
            f"Set inferenceEngine auto or onnx: the ONNX engine serves it from its export "
            f"{ONNX_MODEL_FILE}, without that code",
        )
    # auto, with a usable export: PyTorch only because the image's Python has no runtime
    return (
        "container_python",
        f"The ONNX engine would serve it from {ONNX_MODEL_FILE}, but no ONNX Runtime wheel "
        "is known for the image's Python: choose an image tag of Python "
        f"{', '.join(sorted(RUNTIME_WHEELS))}",
    )


def check_pickled_weights(run: CheckRun) -> None:
    """Weights that are pickles only are refused at preview, unless the stack trusts them.

    When preview has no listing, the loader refuses such a model before any upload.
    """
    from loader.errors import LoaderError
    from loader.selection import NoWeightsError, pickled_weights_problem, select_files

    olds, inputs = run.olds, run.inputs
    pinned, model_id = inputs.get("pinned_revision"), inputs.get("model_id")
    if inputs.get("allow_pickled_weights") or not pinned or is_unknown(pinned):
        return
    if inputs.get("source_model_data_url"):
        return
    if run.listing is None and not olds.get("allow_pickled_weights"):
        return
    engine, graph = inputs.get("engine") or "torch", inputs.get("onnx_file") or ONNX_MODEL_FILE
    try:
        selected = select_files(model_id, run.files(), engine, graph)
    except NoWeightsError as error:
        run.fail("model_id", str(error))  # the loader would refuse it before any upload
        return
    except LoaderError as error:
        run.fail_on(error, "model_id")
        return
    problem = pickled_weights_problem(f"model '{model_id}' at {pinned}", (f.path for f in selected))
    if problem is not None:
        run.fail("model_id", problem)


def check_prompt_name(run: CheckRun) -> None:
    """The stack's default prompt must be one of the model's, checked at preview."""
    from facts.sentence_modules import PROMPTS_FILE
    from loader.errors import LoaderError
    from loader.repo_configs import prompt_names

    olds, inputs = run.olds, run.inputs
    name, pinned = inputs.get("default_prompt_name"), inputs.get("pinned_revision")
    if not name or is_unknown(name) or not pinned or is_unknown(pinned):
        return
    if inputs.get("source_model_data_url"):
        return
    checked = olds.get("pinned_revision") == pinned and olds.get("default_prompt_name") == name
    if checked and olds.get("model_id") == inputs.get("model_id"):
        return
    try:
        names = prompt_names(inputs["model_id"], pinned, run.files(), run.token())
    except LoaderError as error:
        run.fail_on(error, "default_prompt_name")
        return
    if name not in names:
        offered = (
            f"its prompts are {', '.join(names)}" if names else f"it has no {PROMPTS_FILE} prompts"
        )
        run.fail(
            "default_prompt_name",
            f"defaultPromptName {name!r} is not a prompt of model '{inputs['model_id']}' at "
            f"{pinned}: {offered}. Set one of them, or remove defaultPromptName",
        )
