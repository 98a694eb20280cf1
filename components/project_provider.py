"""The pickled shell of this project's dynamic providers: find the checkout, run its operations.

The provider process may not have this project on `sys.path` (pulumi issue 7453), so the pickled
shell (by value) finds the checkout and calls its operations module's function of the same name;
everything below it is ordinary, testable code (docs/packager.md).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import ResourceProvider

from deploy_account.session import AwsSettings

# pulumi.runtime.rpc.UNKNOWN: what an input not yet known during preview looks like to a provider.
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def is_unknown(value: object) -> bool:
    """True for an input Pulumi does not know yet (preview)."""
    return value == UNKNOWN


def aws_inputs(aws: AwsSettings) -> dict[str, Any]:
    """A dynamic resource's AWS inputs (`as_inputs`), the role chain secret in its state when it
    should be."""
    inputs = aws.as_inputs()
    if aws.carries_secrets:
        inputs["aws_assume_roles"] = pulumi.Output.secret(inputs["aws_assume_roles"])
    return inputs


def pickle_by_value(cls: type) -> type:
    """Make dill pickle `cls` and its methods by value, as it does `__main__`'s objects."""
    cls.__module__ = "__main__"
    for member in vars(cls).values():
        function = getattr(member, "__func__", member)
        if inspect.isfunction(function):
            function.__module__ = "__main__"
    return cls


class ProjectProvider(ResourceProvider):
    """Pickled by value; each method calls the function of the same name in `OPERATIONS_MODULE`."""

    # The dotted module holding check/diff/create/update/delete/read (set by each subclass).
    OPERATIONS_MODULE = ""

    def __init__(self, project_root: str | None = None) -> None:
        ResourceProvider.__init__(self)
        # Where the program ran when the resource was last written; the state keeps it.
        self.project_root = project_root or str(Path(__file__).resolve().parents[1])

    def _operations(self):
        """The operations module, from the checkout `pulumi` runs in now, else the recorded one
        (a `destroy` from another clone must not depend on the path recorded at create).
        """
        import importlib
        import os
        import sys

        module = self.OPERATIONS_MODULE
        relative = os.path.join(*module.split(".")) + ".py"
        candidates = [os.getcwd(), self.project_root]
        found = [root for root in candidates if os.path.isfile(os.path.join(root, relative))]
        if not found:
            raise RuntimeError(
                f"cannot find this project's {relative} in the working directory "
                f"{candidates[0]} nor in {candidates[1]}, where the resource was last deployed "
                "from: run pulumi from the project's checkout"
            )
        if found[0] not in sys.path:
            sys.path.insert(0, found[0])
        return importlib.import_module(module)

    def check(self, olds, news):
        return self._operations().check(olds, news)

    def diff(self, _id, olds, news):
        return self._operations().diff(_id, olds, news)

    def create(self, props):
        return self._operations().create(props)

    def update(self, _id, olds, news):
        return self._operations().update(_id, olds, news)

    def delete(self, _id, props):
        return self._operations().delete(_id, props)

    def read(self, id_, props):
        return self._operations().read(id_, props)


pickle_by_value(ProjectProvider)
