"""An unpacked archive served by the DLC's own model server, as SageMaker starts the container.

The toolkit's `serving.main()` in the venv of scripts/dlc_env.py, in a process group of its own
(docs/model-server.md).

    python -m scripts.dlc_server ./model.tar.gz --port 8080   # what `make serve DLC=1` runs
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from scripts.dlc_env import STACKS, DlcEnvError, Stack, env_dir, env_python

# The DLC's start command, except for one path: the toolkit writes the model server's config to
# /etc/sagemaker-mms.properties (root only, one per machine); here it goes into the scratch folder.
ENTRY = """
import os, sys
import sagemaker_inference.model_server as base
from sagemaker_huggingface_inference_toolkit import mms_model_server, serving
base.MMS_CONFIG_FILE = mms_model_server.MMS_CONFIG_FILE = sys.argv[1]
serving.main()
"""
# The model server refuses some high ports ("Invalid port number"); these worked here.
PORTS = range(20000, 32000)
READY_TIMEOUT = 300.0
# What the toolkit looks for in a process's command line to find the model server it started.
MMS_MAIN_CLASS = b"com.amazonaws.ml.mms.ModelServer"


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status, media type (parameters dropped) and body."""

    status: int
    content_type: str
    body: bytes


@dataclass
class DlcServer:
    """A running model server: its process (group leader), port, log and start time."""

    process: subprocess.Popen
    port: int
    log: Path
    started: float  # time.monotonic() just before the process was started

    def request(
        self, method: str, path: str, body: bytes = b"", headers=None, timeout: float = 120
    ) -> Answer:
        return http_request(self.port, method, path, body, headers or {}, timeout)

    def log_tail(self, characters: int = 4000) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-characters:]

    def worker_pids(self, marker: bytes = b"model_service_worker") -> list[int]:
        """The processes of this group whose command line holds `marker` (default: the workers)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                command = (entry / "cmdline").read_bytes()
                same_group = os.getpgid(int(entry.name)) == self.process.pid
            except (OSError, ProcessLookupError):
                continue
            if same_group and marker in command:
                pids.append(int(entry.name))
        return pids

    def worker_peak_rss_bytes(self, marker: bytes = b"model_service_worker") -> int:
        """The largest worker's peak resident set (VmHWM), as the kernel recorded it."""
        peaks = [_vm_hwm(pid) for pid in self.worker_pids(marker)]
        return max([peak for peak in peaks if peak is not None], default=0)

    def stop(self) -> None:
        """SIGTERM to the whole group, SIGKILL after 20 s."""
        for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            if _group_gone(self.process.pid, wait):  # the workers too, not only the leader
                break


def _vm_hwm(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


def _group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def http_request(
    port: int, method: str, path: str, body: bytes, headers: dict, timeout: float = 120
) -> Answer:
    """One request on a new connection to 127.0.0.1:`port`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        media = (response.getheader("Content-Type") or "").split(";", 1)[0].strip().lower()
        return Answer(response.status, media, response.read())
    finally:
        connection.close()


def free_port() -> int:
    """A port in PORTS that nothing on this machine listens on now."""
    for port in random.sample(PORTS, 50):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


def start(
    model_dir: Path, scratch: Path, *, stack: Stack, port: int | None = None, env=None
) -> DlcServer:
    """The model server serving `model_dir` (an unpacked archive with `code/`), not yet ready."""
    python = env_python(stack)
    if python is None:
        raise DlcEnvError(f"the DLC's {stack.name} stack is not built: run `make dlc-env`")
    running = running_model_servers()
    if running:
        raise DlcEnvError(
            f"a model server is already running on this machine (pid {running[0]}): the "
            "toolkit finds its Java process by command line, so a second one would fail or "
            "watch (and stop with) the first; stop that one first"
        )
    base = scratch / "sagemaker"
    (base / "tmp").mkdir(parents=True, exist_ok=True)
    (base / "model").symlink_to(model_dir.resolve())
    port = port or free_port()
    environment = {
        key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    environment.update(
        SAGEMAKER_BASE_DIR=str(base),
        SAGEMAKER_BIND_TO_PORT=str(port),
        SAGEMAKER_MODEL_SERVER_WORKERS="1",
        PATH=f"{env_dir(stack) / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        # The front end's worker socket (/tmp/.mms.sock.9000 by default) goes here instead of
        # the machine's /tmp, with the rest of the server's scratch.
        JAVA_TOOL_OPTIONS=f"-Djava.io.tmpdir={base / 'tmp'}",
        TMPDIR=str(base / "tmp"),
        **(env or {}),
    )
    log = scratch / "model-server.log"
    started = time.monotonic()
    process = subprocess.Popen(
        [str(python), "-c", ENTRY, str(base / "mms.properties")],
        cwd=base,  # the toolkit writes its .sagemaker/mms/ files under the working directory
        env=environment,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return DlcServer(process, port, log, started)


def running_model_servers(proc: Path = Path("/proc")) -> list[int]:
    """Pids of multi-model-server Java processes on this machine (the toolkit looks for them by
    this command line: sagemaker_inference/model_server.py `_retrieve_mms_server_process`)."""
    found = []
    for entry in proc.glob("[0-9]*"):
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # gone, or not ours to read
        if MMS_MAIN_CLASS in command.split(b"\0"):  # one argument, as the toolkit matches it
            found.append(int(entry.name))
    return sorted(found)


def wait_ready(server: DlcServer, timeout: float = READY_TIMEOUT) -> float:
    """Seconds from process start to the first `/ping` 200; RuntimeError with the log if never."""
    deadline = server.started + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the model server exited: {server.log_tail()}")
        try:
            if server.request("GET", "/ping").status == 200:
                return time.monotonic() - server.started
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"no /ping 200 within {timeout:.0f} s: {server.log_tail()}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    from embedding_client.serve_artifact import ArtifactError, prepare_model_dir, served_model_id
    from facts.sagemaker_endpoints import MODEL_ID_VARIABLE
    from loader.version import container_code

    parser = argparse.ArgumentParser(prog="python -m scripts.dlc_server", description=__doc__)
    parser.add_argument("artifact", help="s3://…/model.tar.gz, a local .tar.gz or a folder")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--stack", choices=sorted(STACKS), default="py310")
    parser.add_argument(
        "--model-id", help="the name answers carry (default: the loader key's, else the archive's)"
    )
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="embedding-endpoint-dlc-") as scratch:
        try:
            model_dir = prepare_model_dir(arguments.artifact, Path(scratch) / "work")
        except ArtifactError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        if not (model_dir / "code" / "inference.py").is_file():
            # A plain folder (served in place, so copied first): the project's code beside it.
            model_dir = Path(shutil.copytree(model_dir, Path(scratch) / "with-code"))
            for name, data in container_code(None).items():
                (model_dir / name).parent.mkdir(parents=True, exist_ok=True)
                (model_dir / name).write_bytes(data)
        try:
            server = start(
                model_dir,
                Path(scratch),
                stack=STACKS[arguments.stack],
                port=arguments.port,
                env={MODEL_ID_VARIABLE: served_model_id(arguments.artifact, arguments.model_id)},
            )
        except DlcEnvError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        signal.signal(signal.SIGTERM, _interrupt)  # `kill`: stop the model server too
        try:
            seconds = wait_ready(server)
            print(f"model server ready on 127.0.0.1:{server.port} after {seconds:.1f} s (Ctrl-C)")
            server.process.wait()
        except KeyboardInterrupt:
            pass
        except RuntimeError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
