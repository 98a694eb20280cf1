"""scripts/emulator.py and up.sh: what `make up` / `make down` do that runs without a CLI."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]
EMULATOR = ROOT / "scripts" / "emulator.py"
TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _write_config(path: Path, *urls: str) -> Path:
    entries = "".join(
        f"      {service}: {url}\n" for service, url in zip(("s3", "iam"), urls, strict=True)
    )
    path.write_text(f"config:\n  aws:endpoints:\n    - {entries.lstrip()}")
    return path


class Emulator:
    """Runs scripts/emulator.py against a private config and state directory."""

    def __init__(self, config: Path, state_dir: Path) -> None:
        self.config = config
        self.state_dir = state_dir

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(EMULATOR), "--config", str(self.config)]
            + ["--state-dir", str(self.state_dir), "--timeout", "30", *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[tuple[Emulator, int]]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    tool = Emulator(_write_config(tmp_path / "Pulumi.local.yaml", url, url), tmp_path / "state")
    try:
        yield tool, port
    finally:
        tool.run("stop")


def test_start_runs_an_aws_api_on_the_configured_port(emulator) -> None:
    tool, port = emulator
    result = tool.run("start")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"started http://127.0.0.1:{port}"
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket="emulator-check")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["emulator-check"]


def test_start_leaves_pid_and_log_files(emulator) -> None:
    tool, _ = emulator
    tool.run("start")
    pid = int((tool.state_dir / "moto.pid").read_text())
    os.kill(pid, 0)  # raises if the recorded process is not alive
    assert (tool.state_dir / "moto.log").is_file()


def test_second_start_reuses_the_running_emulator(emulator) -> None:
    tool, port = emulator
    tool.run("start")
    first_pid = (tool.state_dir / "moto.pid").read_text()
    result = tool.run("start")
    assert result.returncode == 0
    assert result.stdout.strip() == f"running http://127.0.0.1:{port}"
    assert (tool.state_dir / "moto.pid").read_text() == first_pid


def test_stop_ends_the_emulator_and_frees_the_port(emulator) -> None:
    tool, port = emulator
    tool.run("start")
    result = tool.run("stop", "moto")
    assert result.stdout.strip() == "moto: stopped"
    assert not _port_open(port)
    assert not (tool.state_dir / "moto.pid").exists()


def test_stop_when_nothing_runs_succeeds(emulator) -> None:
    tool, _ = emulator
    result = tool.run("stop")
    assert result.returncode == 0
    assert result.stdout.splitlines() == ["serve: not running", "moto: not running"]


def test_start_refuses_a_port_taken_by_another_program(emulator) -> None:
    tool, port = emulator
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = tool.run("start")
    assert result.returncode == 1
    assert f"port {port}" in result.stderr and "aws:endpoints" in result.stderr
    assert not (tool.state_dir / "moto.pid").exists()


def test_stale_pid_file_is_ignored(emulator) -> None:
    tool, port = emulator
    tool.state_dir.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tool.state_dir / "moto.pid").write_text(f"{dead.pid}\n")
    result = tool.run("start")
    assert result.stdout.strip() == f"started http://127.0.0.1:{port}"


def test_endpoints_naming_two_urls_are_refused(tmp_path: Path) -> None:
    config = _write_config(tmp_path / "c.yaml", "http://127.0.0.1:1", "http://127.0.0.1:2")
    result = Emulator(config, tmp_path / "state").run("url")
    assert result.returncode == 1
    assert "several URLs" in result.stderr


def test_endpoints_off_loopback_are_refused(tmp_path: Path) -> None:
    url = "http://10.0.0.5:4751"
    result = Emulator(_write_config(tmp_path / "c.yaml", url, url), tmp_path / "s").run("url")
    assert result.returncode == 1
    assert "127.0.0.1" in result.stderr


def test_serve_runs_a_command_until_its_ready_path_answers(emulator, tmp_path: Path) -> None:
    tool, _ = emulator
    port = _free_port()
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "ping").write_text("ok")
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    command += ["--directory", str(tmp_path / "www")]
    result = tool.run("serve", "--port", str(port), "--ready-path", "/ping", "--", *command)
    assert result.returncode == 0, result.stderr
    assert _port_open(port)
    tool.run("stop", "serve")
    assert not _port_open(port)


def test_serve_reports_a_command_that_exits_with_its_log(emulator) -> None:
    tool, _ = emulator
    command = [sys.executable, "-c", "import sys; print('model not found'); sys.exit(3)"]
    result = tool.run("serve", "--port", str(_free_port()), "--", *command)
    assert result.returncode == 1
    assert "exited with code 3" in result.stderr and "model not found" in result.stderr


def _path_without_pulumi(tmp_path: Path) -> str:
    """PATH with bash and coreutils but certainly no `pulumi`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("bash", "dirname", "env", "mkdir", "cat", "grep"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def test_up_without_pulumi_cli_says_so_and_prints_install_command(tmp_path: Path) -> None:
    pid_file = ROOT / ".emulator" / "moto.pid"
    had_pid_file = pid_file.exists()
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "up.sh")],
        env={"PATH": _path_without_pulumi(tmp_path), "STACK": "local", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert result.returncode == 127
    assert "Pulumi CLI" in result.stderr
    assert "curl -fsSL https://get.pulumi.com | sh" in result.stderr
    assert pid_file.exists() == had_pid_file  # nothing was started


@pytest.mark.parametrize("target", ["up", "promote"])
def test_make_without_pulumi_cli_stops_before_it_builds_the_virtualenv(
    tmp_path: Path, target: str
) -> None:
    venv = tmp_path / "venv"
    result = subprocess.run(
        [shutil.which("make") or "make", "-C", str(ROOT), target, f"VENV={venv}"],
        env={"PATH": _path_without_pulumi(tmp_path), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert result.returncode != 0
    assert f"'make {target}' needs it" in result.stderr
    assert "curl -fsSL https://get.pulumi.com | sh" in result.stderr
    assert not venv.exists()


def test_up_for_a_cloud_stack_without_pulumi_cli_fails_the_same_way(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "up.sh")],
        env={"PATH": _path_without_pulumi(tmp_path), "STACK": "dev", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert result.returncode == 127
    assert "curl -fsSL https://get.pulumi.com | sh" in result.stderr
