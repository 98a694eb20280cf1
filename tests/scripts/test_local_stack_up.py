"""`make up` / `make down` end to end, with a stand-in for the Pulumi CLI (it cannot exist here).

The scripts run in a copy of the project layout whose Pulumi.local.yaml names a free port. The
stand-in `pulumi` records each call with the environment it got, and its `up` "deploys" the way
the real one does for the local stack: the artifact lands in the emulator that up.sh started.
Everything after that is real: the emulator, `python -m embedding_client serve s3://…` serving
the archive from it, the smoke test, and `make down` stopping what `make up` started.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.models import build_artifact, copy_model

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "local-artifacts"
KEY = "models/sentence-transformers/all-MiniLM-L6-v2/" + "c" * 40 + "/model.tar.gz"
UP_TIMEOUT_S = 600

FAKE_PULUMI = """#!{python}
import json, os, sys
args = sys.argv[1:]
keep = ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION")
with open(os.environ["FAKE_PULUMI_LOG"], "a") as log:
    log.write(json.dumps({{"args": args, "env": {{k: os.environ.get(k) for k in keep}}}}) + "\\n")
if args[:2] == ["stack", "export"]:
    resources = [{{"urn": f"urn:{{i}}"}} for i in range(int(os.environ["FAKE_STALE_RESOURCES"]))]
    print(json.dumps({{"version": 3, "deployment": {{"resources": resources}}}}))
elif args[:1] == ["up"] and os.environ.get("FAKE_UP_FAILS"):
    sys.exit("error: update failed")
elif args[:1] == ["up"] and "local" in args:
    import boto3
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    s3.create_bucket(Bucket="{bucket}")
    s3.upload_file(os.environ["FAKE_ARTIFACT"], "{bucket}", "{key}")
elif args[:2] == ["stack", "output"] and args[-1] == "smokeTestCommand":
    print("{python} -m embedding_client.smoke --endpoint embedding-endpoint-local "
          "--region us-east-1 --endpoint-url " + os.environ["FAKE_RUNTIME_URL"]
          + os.environ.get("FAKE_SMOKE_EXTRA", ""))
elif args[:2] == ["stack", "output"]:
    print("s3://{bucket}/{key}")
elif args[:1] == ["destroy"] and os.environ.get("FAKE_DESTROY_FAILS"):
    sys.exit("error: destroy failed")
elif args[:2] == ["stack", "ls"]:
    print(json.dumps([{{"name": "local", "current": True}}]))
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """model.tar.gz in the artifact layout: the model's files at the root, `code/` beside them."""
    folder = copy_model(tmp_path_factory.mktemp("model") / "model", with_script=True)
    return build_artifact(folder, tmp_path_factory.mktemp("artifact") / "model.tar.gz")


class Project:
    """A copy of the project layout to run up.sh / down.sh in, with a stand-in `pulumi`."""

    def __init__(self, root: Path, artifact: Path) -> None:
        self.root = root
        self.emulator_port = _free_port()
        self.serve_port = _free_port()
        (root / "scripts").mkdir(parents=True)
        for name in ("up.sh", "need_pulumi.sh", "down.sh", "local_env.sh", "emulator.py"):
            shutil.copy(ROOT / "scripts" / name, root / "scripts" / name)
        for package in ("embedding_client", "deploy_account", "facts", "loader"):
            (root / package).symlink_to(ROOT / package)
        url = f"http://127.0.0.1:{self.emulator_port}"
        runtime_url = f"http://127.0.0.1:{self.serve_port}"
        config = (ROOT / "Pulumi.local.yaml").read_text().replace("http://127.0.0.1:4751", url)
        config = config.replace("http://127.0.0.1:8080", runtime_url)
        (root / "Pulumi.local.yaml").write_text(config)
        bin_dir = root / "fake-bin"
        bin_dir.mkdir()
        fake = bin_dir / "pulumi"
        fake.write_text(FAKE_PULUMI.format(python=sys.executable, bucket=BUCKET, key=KEY))
        fake.chmod(0o755)
        self.log = root / "pulumi-calls.jsonl"
        self.env = {
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "HOME": str(root),
            "PY": sys.executable,
            "FAKE_RUNTIME_URL": runtime_url,
            "AWS_PROFILE": "my-real-profile",  # up.sh must not let the local stack use it
            "FAKE_PULUMI_LOG": str(self.log),
            "FAKE_ARTIFACT": str(artifact),
            "FAKE_STALE_RESOURCES": "2",
        }

    def run(self, script: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(self.root / "scripts" / script)],
            env=self.env | env,
            capture_output=True,
            text=True,
            timeout=UP_TIMEOUT_S,
        )

    def calls(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def stop_all(self) -> None:
        subprocess.run(
            [sys.executable, str(self.root / "scripts" / "emulator.py"), "stop"],
            cwd=self.root,
            capture_output=True,
            timeout=120,
        )


@pytest.fixture(scope="module")
def made_up(tmp_path_factory: pytest.TempPathFactory, artifact: Path) -> Iterator[tuple]:
    """One `make up` of the local stack; everything it started is stopped afterwards."""
    project = Project(tmp_path_factory.mktemp("project"), artifact)
    try:
        result = project.run("up.sh", STACK="local")
        yield project, result
    finally:
        project.stop_all()


def test_up_deploys_serves_and_smoke_tests_the_local_stack(made_up) -> None:
    project, result = made_up
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    smoke_line = next(line for line in result.stdout.splitlines() if '"smoke_test"' in line)
    assert json.loads(smoke_line)["smoke_test"] == "passed"
    assert _port_open(project.serve_port)


def test_up_runs_pulumi_for_the_local_stack_in_order(made_up) -> None:
    project, _ = made_up
    assert [call["args"] for call in project.calls()] == [
        ["stack", "select", "--create", "local"],
        ["stack", "export", "-s", "local"],
        ["state", "delete", "--all", "--force", "--yes", "-s", "local"],
        ["up", "-s", "local", "--yes"],
        ["stack", "output", "-s", "local", "modelDataUrl"],
        ["stack", "output", "-s", "local", "smokeTestCommand"],
    ]


def test_up_keeps_state_in_the_repo_and_aws_on_the_emulator(made_up) -> None:
    project, _ = made_up
    (up_call,) = [call for call in project.calls() if call["args"][0] == "up"]
    env = up_call["env"]
    assert env["PULUMI_BACKEND_URL"] == f"file://{project.root}/.pulumi-state"
    assert env["PULUMI_CONFIG_PASSPHRASE"]
    assert env["AWS_ACCESS_KEY_ID"] == env["AWS_SECRET_ACCESS_KEY"] == "testing"
    assert env["AWS_PROFILE"] is None
    assert env["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{project.emulator_port}"


def test_up_leaves_pid_and_log_files_for_emulator_and_endpoint(made_up) -> None:
    project, _ = made_up
    for name in ("moto", "serve"):
        assert (project.root / ".emulator" / f"{name}.pid").is_file(), name
        assert (project.root / ".emulator" / f"{name}.log").is_file(), name


def test_down_destroys_the_local_stack_and_stops_everything(made_up) -> None:
    project, _ = made_up
    before = len(project.calls())
    result = project.run("down.sh")
    assert result.returncode == 0, result.stderr
    assert [call["args"] for call in project.calls()[before:]] == [
        ["stack", "ls", "--json"],
        ["destroy", "-s", "local", "--yes"],
    ]
    assert not _port_open(project.serve_port)
    assert not _port_open(project.emulator_port)
    assert not (project.root / ".emulator" / "moto.pid").exists()


def test_up_for_a_cloud_stack_is_a_plain_pulumi_up(tmp_path: Path, artifact: Path) -> None:
    project = Project(tmp_path, artifact)
    try:
        result = project.run("up.sh", STACK="dev")
        assert result.returncode == 0, result.stderr
        (call,) = project.calls()
        assert call["args"] == ["up", "-s", "dev"]
        assert call["env"]["PULUMI_BACKEND_URL"] is None
        assert call["env"]["PULUMI_CONFIG_PASSPHRASE"] is None
        assert call["env"]["AWS_PROFILE"] == "my-real-profile"
        assert not (tmp_path / ".emulator").exists()
    finally:
        project.stop_all()


def test_the_smoke_command_output_is_never_run_by_a_shell(tmp_path: Path, artifact: Path) -> None:
    project = Project(tmp_path, artifact)
    marker = tmp_path / "injected"
    try:
        result = project.run("up.sh", STACK="local", FAKE_SMOKE_EXTRA=f"; touch {marker}")
        assert result.returncode != 0  # the smoke check refuses the extra words
        assert not marker.exists()
    finally:
        project.stop_all()


def test_failed_pulumi_up_stops_make_up_with_a_hint(tmp_path: Path, artifact: Path) -> None:
    project = Project(tmp_path, artifact)
    try:
        result = project.run("up.sh", STACK="local", FAKE_UP_FAILS="1")
        assert result.returncode != 0
        assert "make down" in result.stderr
        assert [call["args"][0] for call in project.calls()][-1] == "up"
        assert not (tmp_path / ".emulator" / "serve.pid").exists()
    finally:
        project.stop_all()


def test_down_stops_the_emulator_even_when_destroy_fails(tmp_path: Path, artifact: Path) -> None:
    project = Project(tmp_path, artifact)
    try:
        assert project.run("up.sh", STACK="local").returncode == 0
        result = project.run("down.sh", FAKE_DESTROY_FAILS="1")
        assert result.returncode == 0
        assert "stopping the emulator anyway" in result.stderr
        assert not _port_open(project.emulator_port)
        assert not _port_open(project.serve_port)
    finally:
        project.stop_all()
