"""A failed deploy check keeps what the endpoint still serves: a test of the resource graph.

An update that SageMaker rolls back leaves the endpoint on the old Model and EndpointConfiguration.
What keeps them alive is the order of the engine's steps over this program's graph
(pulumi/pkg/resource/deploy: deployment_executor.go `performDeletes`, step_generator.go):

- a resource is stepped once every resource it depends on has completed (the SDK registers it
  only then, which is also the order the mocks record);
- a replaced resource *without* delete_before_replace creates its replacement and leaves the
  old one for the delete phase, which runs after every other step and only when all of them
  succeeded; with delete_before_replace the old one is deleted before the new one is created.

`engine_steps` replays exactly that over the graph the program registers, for an update that
replaces the Model and the EndpointConfiguration (a new archive) and whose deploy check fails.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.fixtures.pulumi_mocks import ProgramRun
from tests.support.stacks import stack_config

MODEL = "aws:sagemaker/model:Model"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
CHECK = "command:local:Command"


def engine_steps(run: ProgramRun, replaced: set[str], failing: str) -> list[tuple[str, str]]:
    """The engine's steps for an update replacing `replaced`, in which `failing` fails."""
    steps: list[tuple[str, str]] = []
    deferred: list[tuple[str, str]] = []
    for resource in run.resources:
        if not resource.custom:
            continue
        if resource.urn in replaced and resource.delete_before_replace:
            steps += [("delete-replaced", resource.urn), ("create-replacement", resource.urn)]
        elif resource.urn in replaced:
            steps.append(("create-replacement", resource.urn))
            deferred.append(("delete-replaced", resource.urn))
        else:
            steps.append(("same-or-update", resource.urn))
        if resource.urn == failing:
            return [*steps, ("failed", resource.urn)]  # the delete phase never runs
    return steps + deferred


@pytest.fixture
def dev(pulumi_program: Callable[..., ProgramRun]) -> ProgramRun:
    return pulumi_program(stack_config("dev"), stack="dev")


def test_the_check_runs_after_the_endpoint_moved_to_the_new_configuration(dev: ProgramRun) -> None:
    check, endpoint, config = dev.one(CHECK), dev.one(ENDPOINT), dev.one(CONFIG)
    assert endpoint.urn in check.dependencies
    assert config.urn in endpoint.dependencies
    assert dev.one(MODEL).urn in config.dependencies


def test_a_failed_check_deletes_neither_the_old_model_nor_the_old_configuration(
    dev: ProgramRun,
) -> None:
    model, config, check = dev.one(MODEL), dev.one(CONFIG), dev.one(CHECK)
    steps = engine_steps(dev, replaced={model.urn, config.urn, check.urn}, failing=check.urn)
    assert steps[-1] == ("failed", check.urn)
    assert ("create-replacement", model.urn) in steps
    assert ("create-replacement", config.urn) in steps
    deleted = [urn for step, urn in steps if step == "delete-replaced"]
    assert model.urn not in deleted and config.urn not in deleted


def test_a_passing_check_lets_the_engine_delete_them_at_the_end(dev: ProgramRun) -> None:
    model, config, check = dev.one(MODEL), dev.one(CONFIG), dev.one(CHECK)
    steps = engine_steps(dev, replaced={model.urn, config.urn}, failing="")
    check_step = steps.index(("same-or-update", check.urn))
    for urn in (model.urn, config.urn):
        assert steps.index(("delete-replaced", urn)) > check_step
