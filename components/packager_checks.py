"""The packager's preview checks: pin the revision, settle the engine, vet the model's code.

Each step of `check` takes the one `CheckRun` and appends `CheckFailure`s to it, so a model the
endpoint cannot serve fails at `pulumi preview`. The Hub and Secrets Manager are asked at most once
per `check`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pulumi.dynamic import CheckFailure

from components.project_provider import is_unknown
from deploy_account.session import AwsSettings
from facts import engine_choice
from facts.engine_choice import EngineAsk, EngineChoice, choose_engine
from facts.identifiers import COMMIT_SHA
from facts.onnx_quantization import INT8, NO_QUANTIZATION, QUANTIZATION_PACKAGES
from facts.onnx_runtime import ONNX_MODEL_FILE

if TYPE_CHECKING:
    from loader.selection import RepoFile


class CheckRun:
    """One `check`: the state before, the inputs it settles, the failures it found, and the pinned
    commit's file listing and Hub token, each read at most once."""

    def __init__(self, olds: Mapping[str, Any], inputs: dict[str, Any]) -> None:
        self.olds = olds
        self.inputs = inputs
        self.failures: list[CheckFailure] = []
        # The listing, once the Hub was asked for it (by the pin, or by `files`).
        self.listing: tuple[RepoFile, ...] | None = None
        self._token: tuple[str | None] | None = None
        self.token_failed = False

    def token(self) -> str | None:
        """The Hub token (`hub_token`); LoaderError, remembered in `token_failed`, if unreadable."""
        if self._token is None:
            try:
                self._token = (hub_token(self.inputs),)
            except Exception:
                self.token_failed = True
                raise
        return self._token[0]

    def files(self) -> tuple[RepoFile, ...]:
        """The listing at the pinned commit, asked of the Hub on first use."""
        if self.listing is None:
            from loader.hub import fetch_snapshot

            model_id, pinned = self.inputs["model_id"], self.inputs["pinned_revision"]
            self.listing = tuple(fetch_snapshot(model_id, pinned, self.token()).files)
        return self.listing

    def fail(self, key: str, message: str) -> None:
        self.failures.append(CheckFailure(key, message))

    def fail_on(self, error: Exception, key: str) -> None:
        """`error` as a failure of `key`; of `hf_token_secret_arn` when the token was unreadable."""
        self.fail("hf_token_secret_arn" if self.token_failed else key, str(error))


def pin_revision(run: CheckRun) -> None:
    """Set `pinned_revision`, and `run.listing` when the Hub was asked for the files."""
    olds, inputs = run.olds, run.inputs
    model_id, requested = inputs.get("model_id"), inputs.get("requested_revision")
    if inputs.get("source_model_data_url"):
        # The loader keys a training output by its ETag/VersionId; nothing to pin on the Hub.
        inputs["pinned_revision"] = None
        return
    if is_unknown(model_id) or is_unknown(requested) or not model_id or not requested:
        return
    same_request = (
        olds.get("model_id") == model_id
        and olds.get("requested_revision") == requested
        and not olds.get("source_model_data_url")
        and olds.get("pinned_revision")
    )
    if same_request:
        inputs["pinned_revision"] = olds["pinned_revision"]
        return
    if COMMIT_SHA.matches(requested):
        inputs["pinned_revision"] = requested
        return
    from loader.errors import LoaderError
    from loader.hub import fetch_snapshot

    try:
        token = run.token()
        snapshot = fetch_snapshot(model_id, requested, token)
    except LoaderError as error:
        run.fail_on(error, "requested_revision")
        return
    inputs["pinned_revision"] = snapshot.revision
    run.listing = tuple(snapshot.files)
    if snapshot.gated and not token and not inputs.get("hf_token_secret_arn"):
        # Caught here, at preview, rather than after the loader Lambda was created.
        run.fail(
            "hf_token",
            f"model '{model_id}' is gated on the Hub: accept its terms with your account, "
            "then `pulumi config set --secret embedding-endpoint:hfToken <token>`",
        )


def settle_engine(run: CheckRun) -> None:
    """Resolve `inference_engine` (auto | torch | onnx) into `engine` for the pinned commit.

    The rules are facts/engine_choice.py's. Whether a commit ships a graph never changes, so it is
    kept in the state (`onnx_export`): the Hub is asked once per pinned commit and graph.
    """
    from loader.version import format_version

    inputs = run.inputs
    graph = inputs.get("onnx_file") or ONNX_MODEL_FILE
    ask = EngineAsk(
        engine=inputs.get("inference_engine") or "torch",
        python=inputs.get("container_python"),
        # The default graph named out loud is the default: the same archive, nothing to replace.
        onnx_file=None if graph == ONNX_MODEL_FILE else graph,
        onnx_fusion=inputs.get("onnx_fusion"),
        onnx_quantization=inputs.get("onnx_quantization") or NO_QUANTIZATION,
        source_archive=bool(inputs.get("source_model_data_url")),
    )
    inputs["onnx_file"] = ask.onnx_file
    inputs["onnx_export"] = None
    if choose_engine(ask).export_decides:
        inputs["onnx_export"] = onnx_export(run, graph)
    choice = choose_engine(replace(ask, onnx_export=inputs["onnx_export"]))
    run.failures.extend(_engine_failure(run, problem, choice) for problem in choice.problems)
    if choice.engine == "onnx":
        inputs["engine"] = "onnx"
        inputs["onnx_fusion"] = choice.fusion
        inputs["onnx_quantization"] = None if choice.quantization == NO_QUANTIZATION else INT8
        inputs["format_version"] = format_version(
            choice.runtime, choice.fusion, choice.quantization
        )
    else:
        inputs["engine"] = "torch"
        inputs["container_python"] = None  # the runtime is no part of a PyTorch archive
        inputs["onnx_file"] = None
        inputs["onnx_fusion"] = None
        inputs["onnx_quantization"] = None


def onnx_export(run: CheckRun, graph: str) -> bool | None:
    """Whether the pinned commit ships `graph`: as the state recorded it, else from its listing."""
    from loader.errors import LoaderError
    from loader.selection import has_onnx_export

    olds, pinned = run.olds, run.inputs.get("pinned_revision")
    if not pinned or is_unknown(pinned):
        return None
    if (
        run.listing is None
        and olds.get("pinned_revision") == pinned
        and (olds.get("onnx_file") or ONNX_MODEL_FILE) == graph
        and olds.get("onnx_export") is not None
    ):
        return olds["onnx_export"]
    try:
        return has_onnx_export([item.path for item in run.files()], graph)
    except LoaderError as error:
        run.fail_on(error, "inference_engine")
        return None


# The check's input each engine rule's field is about.
_INPUT_OF = {
    engine_choice.ENGINE: "inference_engine",
    engine_choice.PYTHON: "container_python",
    engine_choice.ONNX_FILE: "onnx_file",
    engine_choice.ONNX_FUSION: "onnx_fusion",
    engine_choice.ONNX_QUANTIZATION: "onnx_quantization",
}


def _engine_failure(
    run: CheckRun, problem: engine_choice.EngineProblem, choice: EngineChoice
) -> CheckFailure:
    """The engine rule's problem in the stack's terms, as `check` reports it."""
    from loader.selection import onnx_export_problem

    inputs, key = run.inputs, _INPUT_OF[problem.field]
    model, pinned, graph = inputs.get("model_id"), inputs.get("pinned_revision"), choice.graph
    if problem.field == engine_choice.ONNX_QUANTIZATION:
        why = problem.explain()
        if problem.reason == engine_choice.NO_EXPORT:
            why = f"model '{model}' at {pinned} does not ship {graph}"
        return CheckFailure(
            key,
            f"onnxQuantization is int8, but no ONNX archive can be packaged: {why}, so there is "
            "no graph to quantize. Use inferenceEngine auto or onnx with a model that ships its "
            "ONNX export, or set onnxQuantization none (fp32)",
        )
    if problem.reason == engine_choice.NO_EXPORT:
        why = f"{graph} is not in the repository"
        if run.listing is not None:
            why = onnx_export_problem((item.path for item in run.listing), graph) or why
        asked, remedy = (
            (f"onnxFile is {graph}", "Set onnxFile to one of its graphs, or unset it")
            if key == "onnx_file"
            else ("inferenceEngine is onnx", "Use auto or torch (PyTorch)")
        )
        return CheckFailure(
            key,
            f"{asked}, but model '{model}' at {pinned} has no ONNX export the engine can run: "
            f"{why}. {remedy}, or another model",
        )
    if problem.field == engine_choice.PYTHON:
        return CheckFailure(
            key,
            f"inferenceEngine is onnx, but no ONNX Runtime wheel is known for Python "
            f"{inputs.get('container_python')!r}",
        )
    return CheckFailure(key, f"{key} {inputs.get(key)!r} cannot be packaged: {problem.explain()}")


def check_local_packages(run: CheckRun) -> None:
    """Runner local fuses (and for int8, quantizes and checks) in this process: with the loader
    Lambda's versions, else the bytes would differ from the Lambda's for the same inputs.
    """
    from loader.graph_fusion import optimizer_problem

    if run.inputs.get("runner") != "local":
        return
    problem, key, way_out = None, "onnx_fusion", "set onnxFusion false"
    if run.inputs.get("onnx_fusion"):
        problem = optimizer_problem()
    if problem is None and run.inputs.get("onnx_quantization"):
        problem = optimizer_problem(QUANTIZATION_PACKAGES, "quantizing the ONNX graph")
        key, way_out = "onnx_quantization", "set onnxQuantization none"
    if problem is not None:
        run.fail(
            key,
            f"runner 'local' packages the ONNX graph in the Pulumi process, and {problem}: "
            f"pip install them into the program's virtualenv, or {way_out}",
        )


def hub_token(inputs: Mapping[str, Any]) -> str | None:
    """The token for the Hub: the `hf_token` input, else the secret's; LoaderError if unreadable."""
    token = None if is_unknown(inputs.get("hf_token")) else inputs.get("hf_token")
    return token or secret_token(inputs)


def secret_token(inputs: Mapping[str, Any]) -> str | None:
    """The Hub token from `hf_token_secret_arn`, read in the stack's account; None without one.

    Resolving a private repo's branch needs it, so pulumi's account needs GetSecretValue too. The
    token stays in this process; it is never an input or output.
    """
    from loader.errors import LoaderError
    from loader.secrets import token_from_secret

    arn = inputs.get("hf_token_secret_arn")
    if not arn or is_unknown(arn):
        return None
    try:
        client = AwsSettings.from_inputs(inputs).client("secretsmanager")
    except Exception as error:  # a profile or role chain that cannot be used
        raise LoaderError(
            str(error), step="read-token-secret", model=inputs.get("model_id")
        ) from error
    try:
        return token_from_secret(client, arn, inputs.get("model_id") or "")
    except LoaderError as error:
        raise LoaderError(
            f"{error.detail}; `pulumi preview` and `up` read it to pin the revision, so the "
            "account running pulumi needs secretsmanager:GetSecretValue on it as well (or set "
            "modelRevision to a 40-hex commit sha)",
            step=error.step,
            model=error.model,
        ) from None
