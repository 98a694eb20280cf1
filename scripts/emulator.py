"""Background processes for the local stack: moto's AWS emulator and the local endpoint.

`make up` starts them and `make down` stops them, so each one leaves a pid file and a log file
under `.emulator/`. The emulator's address is read from `Pulumi.local.yaml` (`aws:endpoints`):
the stack config is the one place the port is written down.

    python scripts/emulator.py url                 # print the emulator URL
    python scripts/emulator.py runtime-url         # where the local endpoint serves
    python scripts/emulator.py start               # prints "started URL" or "running URL"
    python scripts/emulator.py serve --port 8080 [--ready-path /ping] -- CMD ...
    python scripts/emulator.py stop [NAME ...]      # default: serve, then moto
    python scripts/emulator.py status
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "Pulumi.local.yaml"
DEFAULT_STATE_DIR = ROOT / ".emulator"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
EMULATOR = "moto"
LOCAL_ENDPOINT = "serve"


class EmulatorError(RuntimeError):
    """Something the user must fix before the local stack can run; the message says what."""


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class BackgroundProcess:
    """A named process started in its own session, tracked by `<name>.pid` and `<name>.log`."""

    name: str
    state_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.state_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / f"{self.name}.log"

    @property
    def port_file(self) -> Path:
        return self.state_dir / f"{self.name}.port"


def _stack_config(config_path: Path) -> dict:
    from ruamel.yaml import YAML  # here: `stop` must work without the virtualenv's packages

    if not config_path.is_file():
        raise EmulatorError(f"{config_path} not found: the local stack's config is missing")
    document = YAML(typ="safe").load(config_path.read_text()) or {}
    return document.get("config") or {}


def _loopback(url: str, where: str) -> Address:
    """The address of an http://127.0.0.1:<port> URL, or EmulatorError naming `where`."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS or parts.port is None:
        raise EmulatorError(
            f"{where} is {url!r}; it must be http://127.0.0.1:<port> (loopback only)"
        )
    return Address(host="127.0.0.1", port=parts.port)


def emulator_address(config_path: Path = DEFAULT_CONFIG) -> Address:
    """The emulator's address: the one loopback URL that every `aws:endpoints` entry names."""
    entries = _stack_config(config_path).get("aws:endpoints") or []
    urls = {str(url) for entry in entries for url in dict(entry).values()}
    if not urls:
        raise EmulatorError(
            f"{config_path.name}: 'aws:endpoints' is empty; it must point every AWS service at "
            "the emulator, e.g. '- s3: http://127.0.0.1:4751'"
        )
    if len(urls) > 1:
        raise EmulatorError(
            f"{config_path.name}: 'aws:endpoints' names several URLs {sorted(urls)}; "
            "they must all be the one emulator URL"
        )
    return _loopback(urls.pop(), f"{config_path.name}: the 'aws:endpoints' URL")


RUNTIME_KEY = "embedding-endpoint:runtimeEndpointUrl"


def runtime_address(config_path: Path = DEFAULT_CONFIG) -> Address:
    """Where the local endpoint serves: the stack's `runtimeEndpointUrl` (sagemaker-runtime)."""
    url = str(_stack_config(config_path).get(RUNTIME_KEY) or "")
    return _loopback(url, f"{config_path.name}: '{RUNTIME_KEY}' (where `make up` serves)")


def port_accepts_connections(address: Address) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((address.host, address.port)) == 0


def running_pid(process: BackgroundProcess) -> int | None:
    """The pid from the pid file when that process is still alive; removes a stale pid file."""
    try:
        pid = int(process.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        process.pid_file.unlink(missing_ok=True)
        process.port_file.unlink(missing_ok=True)
        return None
    except PermissionError:
        pass  # alive, owned by someone else: still "running" for our purposes
    return pid


def _log_tail(process: BackgroundProcess, lines: int = 20) -> str:
    try:
        return "\n".join(process.log_file.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _ready(address: Address, ready_path: str | None) -> bool:
    if not port_accepts_connections(address):
        return False
    if ready_path is None:
        return True
    try:
        with urllib.request.urlopen(f"{address.url}{ready_path}", timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start(
    process: BackgroundProcess,
    argv: Sequence[str],
    address: Address,
    *,
    timeout_s: float,
    ready_path: str | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """Start `argv` in the background unless it already runs, and wait until it answers."""
    if running_pid(process) is not None:
        if _ready(address, ready_path):
            return "running"
        raise EmulatorError(
            f"{process.name} (pid file {process.pid_file}) is running but {address.url} does not "
            f"answer; run `make down` and retry. Log tail:\n{_log_tail(process)}"
        )
    if port_accepts_connections(address):
        raise EmulatorError(
            f"port {address.port} on {address.host} is already in use by another program; stop "
            f"it, or for the emulator change the port in every 'aws:endpoints' URL of "
            f"Pulumi.local.yaml"
        )
    process.state_dir.mkdir(parents=True, exist_ok=True)
    with process.log_file.open("ab") as log:
        child = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: `stop` ends it and its children
            env=env,
            cwd=ROOT,
        )
    process.pid_file.write_text(f"{child.pid}\n")
    process.port_file.write_text(f"{address.port}\n")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.poll() is not None:
            process.pid_file.unlink(missing_ok=True)
            process.port_file.unlink(missing_ok=True)
            raise EmulatorError(
                f"{process.name} exited with code {child.returncode} while starting; "
                f"log {process.log_file}:\n{_log_tail(process)}"
            )
        if _ready(address, ready_path):
            return "started"
        time.sleep(0.2)
    stop(process, timeout_s=10)
    raise EmulatorError(
        f"{process.name} did not answer on {address.url} within {timeout_s:.0f} s; "
        f"log {process.log_file}:\n{_log_tail(process)}"
    )


def stop(process: BackgroundProcess, *, timeout_s: float = 15) -> bool:
    """Stop the process group from the pid file (TERM, then KILL); False when nothing ran."""
    pid = running_pid(process)
    if pid is None:
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if not _alive(pid):
            break
    process.pid_file.unlink(missing_ok=True)
    process.port_file.unlink(missing_ok=True)
    return True


def _alive(pid: int) -> bool:
    try:
        # Reap it if it is our own child (tests); otherwise just probe.
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def moto_argv(address: Address) -> list[str]:
    return [sys.executable, "-m", "moto.server", "-H", address.host, "-p", str(address.port)]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="local stack config")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for a start")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("url", help="print the emulator URL")
    commands.add_parser("runtime-url", help="print where the local endpoint serves")
    commands.add_parser("start", help="start the emulator unless it runs")
    serve = commands.add_parser("serve", help="start the local endpoint command in the background")
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--ready-path", default=None, help="HTTP path that answers 200 when ready")
    serve.add_argument("argv", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    stop_cmd = commands.add_parser("stop", help="stop background processes")
    stop_cmd.add_argument("names", nargs="*", default=[LOCAL_ENDPOINT, EMULATOR])
    commands.add_parser("status", help="show what runs")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "url":
            print(emulator_address(args.config).url)
        elif args.command == "runtime-url":
            print(runtime_address(args.config).url)
        elif args.command == "start":
            address = emulator_address(args.config)
            process = BackgroundProcess(EMULATOR, args.state_dir)
            outcome = start(process, moto_argv(address), address, timeout_s=args.timeout)
            print(f"{outcome} {address.url}")
        elif args.command == "serve":
            command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
            if not command:
                raise EmulatorError("serve needs a command after '--'")
            address = Address("127.0.0.1", args.port)
            process = BackgroundProcess(LOCAL_ENDPOINT, args.state_dir)
            outcome = start(
                process, command, address, timeout_s=args.timeout, ready_path=args.ready_path
            )
            print(f"{outcome} {address.url}")
        elif args.command == "stop":
            for name in args.names:
                stopped = stop(BackgroundProcess(name, args.state_dir))
                print(f"{name}: {'stopped' if stopped else 'not running'}")
        elif args.command == "status":
            for name in (EMULATOR, LOCAL_ENDPOINT):
                pid = running_pid(BackgroundProcess(name, args.state_dir))
                print(f"{name}: {'running, pid ' + str(pid) if pid else 'not running'}")
    except EmulatorError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
