"""State made in one checkout works from another: diff and delete after the first one moved away.

The state keeps the pickled provider, and the provider records the checkout it was pickled in.
A `pulumi destroy` from a CI runner or a teammate's clone, after the original checkout moved or
was deleted, must still diff and delete the packaged artifact. Pulumi starts the provider process
in the program's directory (see docs/packager.md), so the provider looks for the project there
first.

Each step runs in a fresh interpreter, as Pulumi runs them: the program (which pickles the
provider through HfModelPackager under mocks) and `create` in copy A; then A is moved away and
`diff` and `delete` run from copy B. The interpreters see neither this worktree nor the editable
install of its packages: site-packages is put on `sys.path` without its `.pth` files, so
`loader`, `facts`, `deploy_account`, `embedding_client` and `components` can only come from the
copy the provider chose, and each step reports the file its modules were loaded from.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.fixtures.aws import FAKE_CREDENTIALS, AwsEndpoint
from tests.fixtures.hub import HubServer
from tests.support.packager import TINY_COMMIT, object_keys, register_tiny, resource_inputs

ROOT = Path(__file__).resolve().parents[2]
# What a checkout needs for the program's packager and the provider (tests: the mocks helper).
CHECKOUT_FOLDERS = (
    "components",
    "loader",
    "facts",
    "deploy_account",
    "embedding_client",
    "container",
    "tests",
)
PROJECT_PACKAGES = ("components", "loader", "facts", "deploy_account", "embedding_client")

# Without site's .pth processing: no editable-install finder pointing back at this worktree.
ISOLATED_PRELUDE = """
import importlib.util, json, sys
sys.path.append({site_packages!r})
leaked = [p for p in {packages!r} if importlib.util.find_spec(p) is not None]
assert not leaked, f"importable before the provider chose a checkout: {{leaked}}"
"""

PICKLE_IN_CHECKOUT = """
import os
sys.path.insert(0, os.getcwd())  # the language host runs the program from its directory
from tests.support.packager import registered_provider
print(json.dumps({"provider": registered_provider()["value"]}))
"""

RUN_PROVIDER = """
import base64, dill
provider = dill.loads(base64.b64decode(sys.stdin.read()))
request = json.loads(sys.argv[1])
answer = {}
for operation in request["operations"]:
    if operation == "create":
        checked = provider.check({}, request["news"])
        assert not checked.failures, [f.reason for f in checked.failures]
        created = provider.create(checked.inputs)
        answer["create"] = {"id": created.id, "outs": created.outs}
    elif operation == "diff":
        # As Pulumi runs them: check the new inputs against the state, then diff.
        checked = provider.check(request["olds"], request["news"])
        assert not checked.failures, [f.reason for f in checked.failures]
        result = provider.diff(request["id"], request["olds"], checked.inputs)
        answer["diff"] = {"changes": result.changes, "replaces": result.replaces}
    elif operation == "delete":
        provider.delete(request["id"], request["olds"])
        answer["delete"] = "done"
answer["loaded_from"] = {
    name: sys.modules[name].__file__ for name in {packages!r} if name in sys.modules
}
print(json.dumps(answer))
"""


def make_checkout(destination: Path) -> Path:
    for folder in CHECKOUT_FOLDERS:
        shutil.copytree(
            ROOT / folder, destination / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    return destination


def run_isolated(code: str, cwd: Path, *, stdin: str = "", args: tuple[str, ...] = ()) -> dict:
    """A fresh interpreter started in `cwd` as Pulumi starts its processes, no PYTHONPATH."""
    environment = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AWS_ENDPOINT_URL")
    }
    environment |= FAKE_CREDENTIALS | {"AWS_DEFAULT_REGION": "us-east-1"}
    prelude = ISOLATED_PRELUDE.format(
        site_packages=sysconfig.get_paths()["purelib"], packages=PROJECT_PACKAGES
    )
    script = prelude + code
    completed = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script, *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def run_provider(serialized: str, cwd: Path, request: dict) -> dict:
    code = RUN_PROVIDER.replace("{packages!r}", repr(PROJECT_PACKAGES))
    return run_isolated(code, cwd, stdin=serialized, args=(json.dumps(request),))


def assert_loaded_from(answer: dict, checkout: Path) -> None:
    for name, path in answer["loaded_from"].items():
        assert Path(path).is_relative_to(checkout), f"{name} came from {path}, not {checkout}"


@pytest.mark.usefixtures("aws")
def test_a_checkout_moved_after_create_still_diffs_and_deletes_from_another_one(
    tmp_path: Path, hub: HubServer, moto_server: AwsEndpoint, s3_bucket: str
) -> None:
    register_tiny(hub)
    first = make_checkout(tmp_path / "first-clone")
    serialized = run_isolated(PICKLE_IN_CHECKOUT, first)["provider"]
    # The children inherit HF_ENDPOINT (the Hub fixture) and reach S3 through the stack's input.
    news = resource_inputs(s3_bucket, aws_endpoints={"s3": moto_server.url})
    created = run_provider(serialized, first, {"operations": ["create"], "news": news})
    assert_loaded_from(created, first)
    resource_id, outs = created["create"]["id"], created["create"]["outs"]
    assert outs["pinned_revision"] == TINY_COMMIT
    s3 = moto_server.client("s3")
    assert any(key.endswith("model.tar.gz") for key in object_keys(s3, s3_bucket))

    # The original checkout is gone; another clone (a CI runner's) runs diff and destroy.
    shutil.move(first, tmp_path / "moved-away")
    shutil.rmtree(tmp_path / "moved-away")
    second = make_checkout(tmp_path / "ci-runner-clone")
    answer = run_provider(
        serialized,
        second,
        {
            "operations": ["diff", "delete"],
            "id": resource_id,
            "olds": outs,
            "news": news | {"pinned_revision": outs["pinned_revision"]},
        },
    )
    assert_loaded_from(answer, second)
    assert answer["diff"] == {"changes": False, "replaces": []}
    assert object_keys(s3, s3_bucket) == []
