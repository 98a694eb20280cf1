"""The dynamic provider behind HfModelPackager: check (pin), diff, create, update, delete, read.

The pickled part is `PackagerProvider`, a `ProjectProvider` shell (components/project_provider.py)
that calls the function of the same name in this module, from the project's checkout. Every AWS
and Hub client is created per call. Running the loader is `components/packaging_runs.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    UpdateResult,
)

from components.packaging_runs import (
    RESULT_NAMES,
    RUNNERS,
    PackagingError,
    PackagingRequest,
    run_loader,
)
from components.project_provider import ProjectProvider, pickle_by_value
from embedding_client.aws_session import AwsSettings
from facts.identifiers import COMMIT_SHA

if TYPE_CHECKING:
    from loader.selection import RepoFile

# Properties the dynamic resource exposes (declared on the Resource class, seeded as None).
OUTPUT_NAMES = (*RESULT_NAMES, "pinned_revision", "engine")
# Inputs that identify the artifact: a change to any of them packages a new one (a replacement).
REPLACING_INPUTS = (
    "bucket",
    "key_prefix",
    "model_id",
    "pinned_revision",
    "source_model_data_url",
    "format_version",
    "engine",
    "container_python",
    "onnx_file",
    "onnx_fusion",
)
# Inputs copied into the outputs (state) so that delete/read/update have what they need.
STATE_INPUTS = (
    "model_id",
    "requested_revision",
    "pinned_revision",
    "bucket",
    "key_prefix",
    "source_model_data_url",
    "expected_sha256",
    "retain_artifacts",
    "runner",
    "region",
    "aws_endpoints",
    "aws_profile",
    "aws_assume_roles",
    "function_name",
    "hf_token_secret_arn",
    "format_version",
    "local_timeout_seconds",
    "inference_engine",
    "engine",
    "container_python",
    "onnx_file",
    "onnx_fusion",
    "onnx_export",
    "model_code_checked",
    "allow_pickled_weights",
)
# pulumi.runtime.rpc.UNKNOWN: what an input not yet known during preview looks like here.
_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


# --- the pure decisions ------------------------------------------------------------------------


def is_unknown(value: object) -> bool:
    """True for an input Pulumi does not know yet (preview)."""
    return value == _UNKNOWN


# What a state written before an input existed meant by its absence.
_ABSENT_MEANS = {"engine": "torch", "allow_pickled_weights": False}


def changed_inputs(olds: Mapping[str, Any], news: Mapping[str, Any], names: tuple[str, ...]):
    """The names among `names` whose value differs between olds and news (unknown = changed)."""

    def value(inputs: Mapping[str, Any], name: str) -> Any:
        found = inputs.get(name)
        return _ABSENT_MEANS.get(name) if found is None else found

    return [name for name in names if value(olds, name) != value(news, name)]


def diff(resource_id: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> DiffResult:
    """Replace (create first, delete after) when the artifact's identity changes.

    Identity: bucket, prefix, model, pinned revision, source and format version. A format change
    rebuilds the same key; the old resource's delete then finds the new sha256 in the manifest
    and leaves the object alone. Anything else (retention, runner, endpoints, the expected
    sha256) only updates the state, and a token change alone is no change at all.
    """
    replaces = changed_inputs(olds, news, REPLACING_INPUTS)
    bookkeeping = changed_inputs(
        olds, news, tuple(n for n in STATE_INPUTS if n not in REPLACING_INPUTS)
    )
    return DiffResult(
        changes=bool(replaces or bookkeeping),
        replaces=replaces,
        stables=[],
        delete_before_replace=False,
    )


def state_outputs(inputs: Mapping[str, Any], result: Mapping[str, Any]) -> dict[str, Any]:
    """Outputs = the inputs delete/read need (never the token) plus the loader's result."""
    outs = {name: inputs.get(name) for name in STATE_INPUTS}
    outs.update({name: result.get(name) for name in RESULT_NAMES})
    # The pin stays what `check` decided (None for a source archive, whose `revision` is the
    # loader's id of the source object), so that the next diff compares like with like.
    outs["pinned_revision"] = inputs.get("pinned_revision")
    return outs


# --- revision pinning --------------------------------------------------------------------------


def check(olds: Mapping[str, Any], news: Mapping[str, Any]) -> CheckResult:
    """Pin the requested revision to a commit sha, then settle the engine for that commit.

    A branch such as `main` moves upstream; re-resolving it on every `pulumi up` would repackage
    and redeploy silently. The pin moves only when model id, requested revision or source change,
    or after `pulumi refresh` found the branch moved (see `read`). The engine: see `settle_engine`.
    """
    inputs = dict(news)
    failures: list[CheckFailure] = []
    runner = inputs.get("runner")
    if not is_unknown(runner) and runner not in RUNNERS:
        failures.append(
            CheckFailure("runner", f"runner {runner!r} is invalid: expected one of lambda, local")
        )
    if runner == "lambda" and not inputs.get("function_name"):
        failures.append(CheckFailure("function_name", "runner 'lambda' needs the loader function"))
    commit = CommitFiles(inputs)
    pin_revision(olds, inputs, commit, failures)
    if not failures:
        settle_engine(olds, inputs, commit, failures)
    if not failures and runner == "local" and inputs.get("onnx_fusion"):
        check_local_fusion(failures)
    if not failures:
        check_model_code(olds, inputs, commit, failures)
    if not failures:
        check_pickled_weights(olds, inputs, commit, failures)
    if not failures:
        check_prompt_name(olds, inputs, commit, failures)
    return CheckResult(inputs, failures)


class CommitFiles:
    """The pinned commit's file listing and the Hub token, each read at most once per `check`.

    The pin, the engine, the model-code and the prompt checks may each need them; the token can
    be a Secrets Manager read in the stack's account, and the listing is a Hub request.
    """

    def __init__(self, inputs: Mapping[str, Any]) -> None:
        self._inputs = inputs
        # The listing, once the Hub was asked for it (by the pin, or by `files`).
        self.listing: tuple[RepoFile, ...] | None = None
        self._token: tuple[str | None] | None = None
        self.token_failed = False

    def token(self) -> str | None:
        """The Hub token (`hub_token`); LoaderError, remembered in `token_failed`, if unreadable."""
        if self._token is None:
            try:
                self._token = (hub_token(self._inputs),)
            except Exception:
                self.token_failed = True
                raise
        return self._token[0]

    def files(self) -> tuple[RepoFile, ...]:
        """The listing at the pinned commit, asked of the Hub on first use."""
        if self.listing is None:
            from loader.hub import fetch_snapshot

            model_id, pinned = self._inputs["model_id"], self._inputs["pinned_revision"]
            self.listing = tuple(fetch_snapshot(model_id, pinned, self.token()).files)
        return self.listing

    def failure(self, error: Exception, key: str) -> CheckFailure:
        """`error` as a failure of `key`; of `hf_token_secret_arn` when the token was unreadable."""
        return CheckFailure("hf_token_secret_arn" if self.token_failed else key, str(error))


def pin_revision(
    olds: Mapping[str, Any],
    inputs: dict[str, Any],
    commit: CommitFiles,
    failures: list[CheckFailure],
) -> None:
    """Set `pinned_revision`, and `commit.listing` when the Hub was asked for the files."""
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
        token = commit.token()
        snapshot = fetch_snapshot(model_id, requested, token)
    except LoaderError as error:
        failures.append(commit.failure(error, "requested_revision"))
        return
    inputs["pinned_revision"] = snapshot.revision
    commit.listing = tuple(snapshot.files)
    if snapshot.gated and not token and not inputs.get("hf_token_secret_arn"):
        # Caught here, at preview, rather than after the loader Lambda was created.
        failures.append(
            CheckFailure(
                "hf_token",
                f"model '{model_id}' is gated on the Hub: accept its terms with your account, "
                "then `pulumi config set --secret embedding-endpoint:hfToken <token>`",
            )
        )


def settle_engine(
    olds: Mapping[str, Any],
    inputs: dict[str, Any],
    commit: CommitFiles,
    failures: list[CheckFailure],
) -> None:
    """Resolve `inference_engine` (auto | torch | onnx) into `engine` for the pinned commit.

    `auto` is ONNX when the commit ships the graph (`onnx_file`, by default `onnx/model.onnx`)
    and a runtime wheel is known for the image's Python (`container_python`), PyTorch otherwise;
    `onnx` without the export fails here, at preview, and so does a graph the stack named
    (`onnxFile`) that the commit lacks, under `auto` too: it was asked for. Whether a commit
    ships a graph never changes, so it is kept in the state (`onnx_export`) and the Hub is asked
    at most once per pinned commit and graph. The ONNX archive's format version also names the
    runtime wheel, so a new wheel repackages.
    """
    from facts.onnx_runtime import ONNX_MODEL_FILE, runtime_wheel
    from loader.errors import LoaderError
    from loader.selection import has_onnx_export, onnx_export_problem
    from loader.version import format_version

    requested = inputs.get("inference_engine") or "torch"
    runtime = runtime_wheel(inputs.get("container_python"))
    pinned = inputs.get("pinned_revision")
    graph = inputs.get("onnx_file") or ONNX_MODEL_FILE
    asked_graph = graph != ONNX_MODEL_FILE
    # The default graph named out loud is the default: the same archive, nothing to replace.
    inputs["onnx_file"] = graph if asked_graph else None
    inputs["onnx_export"] = None
    if requested != "torch" and runtime is not None and pinned and not is_unknown(pinned):
        if (
            commit.listing is None
            and olds.get("pinned_revision") == pinned
            and (olds.get("onnx_file") or ONNX_MODEL_FILE) == graph
        ):
            inputs["onnx_export"] = olds.get("onnx_export")
        if inputs["onnx_export"] is None:
            try:
                paths = [item.path for item in commit.files()]
                inputs["onnx_export"] = has_onnx_export(paths, graph)
            except LoaderError as error:
                failures.append(commit.failure(error, "inference_engine"))
    if (requested == "onnx" or asked_graph) and inputs["onnx_export"] is False:
        why = f"{graph} is not in the repository"
        if commit.listing is not None:
            why = onnx_export_problem((item.path for item in commit.listing), graph) or why
        key, asked, remedy = (
            ("onnx_file", f"onnxFile is {graph}", "Set onnxFile to one of its graphs, or unset it")
            if asked_graph
            else ("inference_engine", "inferenceEngine is onnx", "Use auto or torch (PyTorch)")
        )
        failures.append(
            CheckFailure(
                key,
                f"{asked}, but model '{inputs.get('model_id')}' at {pinned} has no ONNX export "
                f"the engine can run: {why}. {remedy}, or another model",
            )
        )
    if requested == "onnx" and runtime is None:
        failures.append(
            CheckFailure(
                "container_python",
                f"inferenceEngine is onnx, but no ONNX Runtime wheel is known for Python "
                f"{inputs.get('container_python')!r}",
            )
        )
    if inputs["onnx_export"] and runtime is not None:
        inputs["engine"] = "onnx"
        inputs["onnx_fusion"] = inputs.get("onnx_fusion") is not False
        inputs["format_version"] = format_version(runtime, fusion=inputs["onnx_fusion"])
    else:
        inputs["engine"] = "torch"
        inputs["container_python"] = None  # the runtime is no part of a PyTorch archive
        inputs["onnx_file"] = None
        inputs["onnx_fusion"] = None


def check_local_fusion(failures: list[CheckFailure]) -> None:
    """Runner local fuses the ONNX graph in this process: with the loader Lambda's optimizer.

    Fusing with another version (or packaging unfused for want of one) would give other bytes
    than the Lambda gives for the same inputs, so a missing or other version fails at preview.
    """
    from loader.graph_fusion import optimizer_problem

    problem = optimizer_problem()
    if problem is not None:
        failures.append(
            CheckFailure(
                "onnx_fusion",
                f"runner 'local' fuses the ONNX graph in the Pulumi process, and {problem}: "
                "pip install them into the program's virtualenv, or set onnxFusion false",
            )
        )


def check_model_code(
    olds: Mapping[str, Any],
    inputs: dict[str, Any],
    commit: CommitFiles,
    failures: list[CheckFailure],
) -> None:
    """A model that is its repository's own code must run on the ONNX engine, found at preview.

    PyTorch would build transformers' own class in its place and serve wrong vectors (see
    facts/model_code.py). A commit's config.json never changes, so a pass is kept in the state
    (`model_code_checked`: the commit) and the Hub is asked once per pinned commit. A commit
    pinned by sha needed neither the Hub nor the token at preview before this check: when either
    cannot be reached for one, the check is left to the loader, which makes it before anything
    is uploaded (loader/repo_configs.py).
    """
    from facts.model_code import custom_code_problem
    from facts.onnx_runtime import ONNX_MODEL_FILE, RUNTIME_WHEELS, onnx_file_problem
    from loader.errors import LoaderError
    from loader.repo_configs import custom_code_classes
    from loader.selection import onnx_export_problem

    pinned = inputs.get("pinned_revision")
    inputs["model_code_checked"] = None
    if inputs.get("engine") != "torch" or not pinned or is_unknown(pinned):
        return
    if inputs.get("source_model_data_url"):
        return  # the user's own archive: the loader checks its config.json while streaming it
    if olds.get("model_code_checked") == pinned and olds.get("model_id") == inputs.get("model_id"):
        inputs["model_code_checked"] = pinned
        return
    listed_at_preview = commit.listing is not None
    try:
        files = commit.files()
        classes = custom_code_classes(inputs["model_id"], pinned, files, commit.token())
    except LoaderError as error:
        if listed_at_preview:
            failures.append(commit.failure(error, "model_id"))
        return
    if not classes:
        inputs["model_code_checked"] = pinned
        return
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
        key, remedy = (
            "onnx_file",
            f"It has no {ONNX_MODEL_FILE} but other graphs in onnx/ ({', '.join(other_graphs)}):"
            " set onnxFile to one of them (with inferenceEngine auto or onnx), and the ONNX "
            "engine serves it from that graph, without that code (quantized graphs, `*int8*`, "
            "`*quantized*`, give vectors about 0.99 in cosine from the fp32 ones)",
        )
    elif export_problem is not None and root_graphs:
        graph = "model.onnx" if "model.onnx" in root_graphs else root_graphs[0]
        key, remedy = (
            "onnx_file",
            f"It keeps its ONNX graphs at the repository root ({', '.join(root_graphs)}), not "
            f"at {ONNX_MODEL_FILE}: set onnxFile {graph} (with inferenceEngine auto or onnx), "
            "and the ONNX engine serves it from that graph, without that code",
        )
    elif export_problem is not None:
        key, remedy = (
            "model_id",
            f"It ships no export the ONNX engine can run either ({export_problem}), and only "
            "that engine serves such a model here: choose another model",
        )
    elif (inputs.get("inference_engine") or "torch") == "torch":
        key, remedy = (
            "inference_engine",
            f"Set inferenceEngine auto or onnx: the ONNX engine serves it from its export "
            f"{ONNX_MODEL_FILE}, without that code",
        )
    else:  # auto, with a usable export: PyTorch only because the image's Python has no runtime
        key, remedy = (
            "container_python",
            f"The ONNX engine would serve it from {ONNX_MODEL_FILE}, but no ONNX Runtime wheel "
            "is known for the image's Python: choose an image tag of Python "
            f"{', '.join(sorted(RUNTIME_WHEELS))}",
        )
    failures.append(
        CheckFailure(
            key,
            f"model '{inputs['model_id']}' at {pinned} cannot run on PyTorch here: "
            f"{custom_code_problem(classes)}. {remedy}",
        )
    )


def check_pickled_weights(
    olds: Mapping[str, Any],
    inputs: Mapping[str, Any],
    commit: CommitFiles,
    failures: list[CheckFailure],
) -> None:
    """Weights that are pickles only are refused at preview, unless the stack trusts them.

    Loading a pickle can run code (facts/pickled_weights.py). Seen in the pinned commit's listing
    when preview has it, or asks for it because the stack stopped trusting pickles; otherwise
    the loader refuses such a model before any upload, and a source archive once it is read.
    """
    from facts.onnx_runtime import ONNX_MODEL_FILE
    from loader.errors import LoaderError
    from loader.selection import NoWeightsError, pickled_weights_problem, select_files

    pinned, model_id = inputs.get("pinned_revision"), inputs.get("model_id")
    if inputs.get("allow_pickled_weights") or not pinned or is_unknown(pinned):
        return
    if inputs.get("source_model_data_url"):
        return
    if commit.listing is None and not olds.get("allow_pickled_weights"):
        return
    engine, graph = inputs.get("engine") or "torch", inputs.get("onnx_file") or ONNX_MODEL_FILE
    try:
        selected = select_files(model_id, commit.files(), engine, graph)
    except NoWeightsError:
        return  # the loader names what the repository has instead
    except LoaderError as error:
        failures.append(commit.failure(error, "model_id"))
        return
    problem = pickled_weights_problem(f"model '{model_id}' at {pinned}", (f.path for f in selected))
    if problem is not None:
        failures.append(CheckFailure("model_id", problem))


def check_prompt_name(
    olds: Mapping[str, Any],
    inputs: Mapping[str, Any],
    commit: CommitFiles,
    failures: list[CheckFailure],
) -> None:
    """The stack's default prompt must be one of the model's, found at preview.

    Otherwise the endpoint would fail to load minutes into the deploy. Asked of the Hub once per
    (pinned commit, name); a source archive is the user's own model, checked when it loads.
    """
    from facts.sentence_modules import PROMPTS_FILE
    from loader.errors import LoaderError
    from loader.repo_configs import prompt_names

    name, pinned = inputs.get("default_prompt_name"), inputs.get("pinned_revision")
    if not name or is_unknown(name) or not pinned or is_unknown(pinned):
        return
    if inputs.get("source_model_data_url"):
        return
    checked = olds.get("pinned_revision") == pinned and olds.get("default_prompt_name") == name
    if checked and olds.get("model_id") == inputs.get("model_id"):
        return
    try:
        names = prompt_names(inputs["model_id"], pinned, commit.files(), commit.token())
    except LoaderError as error:
        failures.append(commit.failure(error, "default_prompt_name"))
        return
    if name not in names:
        offered = (
            f"its prompts are {', '.join(names)}" if names else f"it has no {PROMPTS_FILE} prompts"
        )
        failures.append(
            CheckFailure(
                "default_prompt_name",
                f"defaultPromptName {name!r} is not a prompt of model '{inputs['model_id']}' at "
                f"{pinned}: {offered}. Set one of them, or remove defaultPromptName",
            )
        )


def hub_token(inputs: Mapping[str, Any]) -> str | None:
    """The token for the Hub: the `hf_token` input, else the secret's; LoaderError if unreadable."""
    token = None if is_unknown(inputs.get("hf_token")) else inputs.get("hf_token")
    return token or secret_token(inputs)


def secret_token(inputs: Mapping[str, Any]) -> str | None:
    """The Hub token from `hf_token_secret_arn`, read in the stack's account; None without one.

    A branch of a private (or gated) repo can only be resolved with the token, so `check` reads
    it here too, not only the loader: the account running pulumi needs GetSecretValue on it.
    The token stays in this process; it is never an input or output.
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


# --- packaging ---------------------------------------------------------------------------------


def create(props: dict[str, Any]) -> CreateResult:
    result = run_loader(PackagingRequest.from_inputs(props))
    expected_format = props.get("format_version")
    if expected_format and result["format_version"] != expected_format:
        # Otherwise every later diff would see a format change and replace the artifact again.
        raise PackagingError(
            f"the loader packaged format {result['format_version']} but this program's loader is "
            f"{expected_format}: the loader Lambda runs stale code; run `pulumi up` again after "
            "its code update, or use runner 'local'"
        )
    return CreateResult(result["model_data_url"], state_outputs(props, result))


def update(resource_id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
    """Only state changes reach here (see `diff`): the artifact itself stays as it is."""
    result = {name: olds.get(name) for name in RESULT_NAMES}
    expected = news.get("expected_sha256")
    if expected and expected != result["sha256"]:
        raise PackagingError(
            f"artifact {result['model_data_url']} has sha256 {result['sha256']}, not the "
            f"expected {expected}: update expectedArtifactSha256 or the model revision"
        )
    return UpdateResult(state_outputs(news, result))


# --- the artifact in S3 ------------------------------------------------------------------------


def s3_client(state: Mapping[str, Any]):
    """An S3 client in the stack's account and region, at its (emulator) endpoint if any."""
    return AwsSettings.from_inputs(state).client("s3")


def delete(resource_id: str, state: Mapping[str, Any]) -> None:
    """Remove the archive and its manifest, unless the stack retains artifacts.

    Only while the manifest still records this resource's sha256: if a newer resource rebuilt the
    same key, its artifact is not this one to delete.
    """
    from botocore.exceptions import ClientError

    from loader.artifacts import delete_artifact as delete_recorded_artifact

    if state.get("retain_artifacts") or not state.get("model_data_url"):
        return
    try:
        delete_recorded_artifact(
            s3_client(state), state["model_data_url"], only_if_sha256=state.get("sha256")
        )
    except ClientError as error:
        # The bucket went first (deleted out of band): nothing of ours is left to remove.
        if error.response.get("Error", {}).get("Code") != "NoSuchBucket":
            raise


def read(resource_id: str, state: Mapping[str, Any]) -> ReadResult:
    """Report the resource gone when its archive was deleted or replaced out of band.

    An empty id tells Pulumi the resource no longer exists: `pulumi refresh` drops it from the
    state and the next `pulumi up` packages it again.
    """
    from facts.artifact_keys import ArtifactLocation
    from facts.identifiers import parse_s3_url
    from loader.artifacts import find_existing

    if not state.get("model_data_url"):
        return ReadResult(resource_id, dict(state))
    bucket, key = parse_s3_url(state["model_data_url"])
    recorded = find_existing(
        s3_client(state), ArtifactLocation(bucket, key), str(state.get("format_version"))
    )
    if recorded is None or recorded.sha256 != state.get("sha256"):
        return ReadResult("", {})
    if upstream_moved(state):
        # Drop the pin from the recorded inputs: the next `check` re-resolves the branch, so
        # `pulumi up --refresh` repackages the new commit (and plain `pulumi up` never does).
        inputs = {name: state.get(name) for name in STATE_INPUTS} | {"pinned_revision": None}
        return ReadResult(resource_id, dict(state), inputs)
    return ReadResult(resource_id, dict(state))


def upstream_moved(state: Mapping[str, Any]) -> bool:
    """True when the requested branch or tag now names another commit than the pinned one.

    Best effort: when the Hub cannot answer (offline, a private repo whose token is not in a
    readable secret), the pin stands and refresh reports no drift.
    """
    from loader.errors import LoaderError
    from loader.hub import resolve_revision

    requested, pinned = state.get("requested_revision"), state.get("pinned_revision")
    if state.get("source_model_data_url") or not requested or COMMIT_SHA.matches(requested):
        return False
    try:
        return resolve_revision(state["model_id"], requested, secret_token(state)) != pinned
    except LoaderError:
        return False


# --- the pickled shell ---------------------------------------------------------------------------


class PackagerProvider(ProjectProvider):
    """Pickled by value; each method calls this module's function of the same name."""

    OPERATIONS_MODULE = "components.packager_provider"


pickle_by_value(PackagerProvider)
