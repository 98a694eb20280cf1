"""The dynamic provider behind HfModelPackager: check, diff, create, update, delete, read.

`PackagerProvider` is the pickled shell (components/project_provider.py); every client is
created per call. State: components/packager_state.py; checks: packager_checks.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, UpdateResult

from components.packager_checks import (
    CheckRun,
    check_local_packages,
    pin_revision,
    secret_token,
    settle_engine,
)
from components.packager_repo_checks import (
    check_model_code,
    check_pickled_weights,
    check_prompt_name,
)
from components.packager_state import PackagerInputs, recorded_result, state_outputs
from components.packaging_runs import RUNNERS, PackagingError, PackagingRequest, run_loader
from components.project_provider import ProjectProvider, is_unknown, pickle_by_value
from deploy_account.session import AwsSettings
from facts.identifiers import COMMIT_SHA


def check(olds: Mapping[str, Any], news: Mapping[str, Any]) -> CheckResult:
    """Pin the requested revision to a commit sha, then settle the engine for that commit.

    A branch moves upstream: the pin moves only when model, revision or source change, or after
    `pulumi refresh` found the branch moved (see `read`).
    """
    run = CheckRun(olds, dict(news))
    runner = run.inputs.get("runner")
    if not is_unknown(runner) and runner not in RUNNERS:
        run.fail("runner", f"runner {runner!r} is invalid: expected one of lambda, local")
    if runner == "lambda" and not run.inputs.get("function_name"):
        run.fail("function_name", "runner 'lambda' needs the loader function")
    pin_revision(run)
    # Each later step runs only while nothing has failed.
    steps = (settle_engine, check_local_packages, check_model_code, check_pickled_weights)
    for step in (*steps, check_prompt_name):
        if not run.failures:
            step(run)
    return CheckResult(run.inputs, run.failures)


def diff(resource_id: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> DiffResult:
    """Replace (create first, delete after) when the artifact's identity changes.

    Identity: the `PackagerInputs` fields marked `replaces`; anything else only updates the state,
    and a token change alone is no change at all.
    """
    old, new = PackagerInputs.from_mapping(olds), PackagerInputs.from_mapping(news)
    replaces = old.changed(new, replacing=True)
    bookkeeping = old.changed(new, replacing=False)
    return DiffResult(
        changes=bool(replaces or bookkeeping),
        replaces=replaces,
        stables=[],
        delete_before_replace=False,
    )


def create(props: dict[str, Any]) -> CreateResult:
    result = run_loader(PackagingRequest.from_inputs(props))
    expected_format = props.get("format_version")
    if expected_format and result.format_version != expected_format:
        # Otherwise every later diff would see a format change and replace the artifact again.
        raise PackagingError(
            f"the loader packaged format {result.format_version} but this program's loader is "
            f"{expected_format}: the loader Lambda runs stale code; run `pulumi up` again after "
            "its code update, or use runner 'local'"
        )
    return CreateResult(result.model_data_url, state_outputs(props, result))


def update(resource_id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
    """Only state changes reach here (see `diff`): the artifact itself stays as it is."""
    result = recorded_result(olds)
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
    """Remove the archive and its manifest, unless the stack retains artifacts, and only while
    the manifest records this resource's sha256 (a newer resource may have rebuilt the key).
    """
    from botocore.exceptions import ClientError

    from loader.artifacts import delete_artifact as delete_recorded_artifact

    result = recorded_result(state)
    if PackagerInputs.from_mapping(state).retain_artifacts or not result["model_data_url"]:
        return
    try:
        delete_recorded_artifact(
            s3_client(state), result["model_data_url"], only_if_sha256=result["sha256"]
        )
    except ClientError as error:
        # The bucket went first (deleted out of band): nothing of ours is left to remove.
        if error.response.get("Error", {}).get("Code") != "NoSuchBucket":
            raise


def read(resource_id: str, state: Mapping[str, Any]) -> ReadResult:
    """Report the resource gone (empty id) when its archive was deleted or replaced out of band."""
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
        inputs = PackagerInputs.from_mapping(state).as_dict() | {"pinned_revision": None}
        return ReadResult(resource_id, dict(state), inputs)
    return ReadResult(resource_id, dict(state))


def upstream_moved(state: Mapping[str, Any]) -> bool:
    """True when the requested branch or tag now names another commit (best effort: else False)."""
    from loader.errors import LoaderError
    from loader.hub import resolve_revision

    inputs = PackagerInputs.from_mapping(state)
    requested = inputs.requested_revision
    if inputs.source_model_data_url or not requested or COMMIT_SHA.matches(requested):
        return False
    try:
        resolved = resolve_revision(str(inputs.model_id), requested, secret_token(state))
        return resolved != inputs.pinned_revision
    except LoaderError:
        return False


class PackagerProvider(ProjectProvider):
    OPERATIONS_MODULE = "components.packager_provider"


pickle_by_value(PackagerProvider)
