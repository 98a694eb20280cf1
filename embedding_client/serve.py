"""A local endpoint with SageMaker's container contract, serving a model artifact on this machine.

    python -m embedding_client serve s3://bucket/models/org/name/<sha>/model.tar.gz
    python -m embedding_client serve ./model.tar.gz --port 8080
    python -m embedding_client serve ./extracted-model-folder

The artifact is prepared as the Hugging Face DLC prepares it: `model.tar.gz` is extracted into a
model directory and `code/inference.py` is imported from it; its `model_fn` loads the model and its
`input_fn` / `predict_fn` / `output_fn` answer `POST /invocations`. `GET /ping` answers 503 while
the model loads and 200 once it has loaded. One request runs at a time, like the DLC's single
worker. The hooks run as the DLC's toolkit runs them, so every error they raise is a 400 with its
message, as on SageMaker (toolkit_handle.py; tests/dlc/ compares the two servers); an exception
that is not the project's own error is answered with facts/embedding_api.py's
INTERNAL_ERROR_MESSAGE, its cause logged, as the container's hooks do.

Two more doors to the same model: `POST /v1/embeddings` (OpenAI's route and error shape, so the
`openai` SDK works with `base_url=…/v1`), and `POST /endpoints/{name}/invocations` (SageMaker
Runtime's own API: boto3's `invoke_endpoint`, the AWS CLI and LangChain's SagemakerEndpoint
reach it with `endpoint_url=…`; any name and any SigV4 signature are accepted, not checked).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import shutil
import signal
import sys
import tarfile
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

from embedding_client import toolkit_handle
from facts.artifact_keys import model_id_from_key
from facts.embedding_api import INTERNAL_ERROR_MESSAGE
from facts.identifiers import parse_s3_url
from facts.serverless import MAX_PAYLOAD_BYTES

logger = logging.getLogger("embedding_client.serve")

DEFAULT_PORT = 8080
DEFAULT_HOST = "127.0.0.1"
INFERENCE_SCRIPT = Path("code") / "inference.py"
# OpenAI's route (clients take `base_url=http://host:port/v1`), and SageMaker Runtime's own path
# (boto3 `invoke_endpoint`, the AWS CLI and LangChain with `endpoint_url=http://host:port`).
OPENAI_PATH = "/v1/embeddings"
RUNTIME_PATH = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations$")
RUNTIME_HEADERS = {"x-Amzn-Invoked-Production-Variant": "AllTraffic"}
# Used when an extracted folder (e.g. a plain Hub snapshot) carries no script of its own.
PACKAGED_SCRIPT = Path(__file__).resolve().parent.parent / "container" / "inference.py"


class ArtifactError(Exception):
    """The artifact cannot be found, fetched or extracted; the message says which and why."""


# ---------------------------------------------------------------------------------------------
# Artifact → model directory


def _safe_extract(archive: Path, destination: Path) -> None:
    """Extract a tar.gz, refusing members that would land outside `destination` or are links."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(destination, filter="data")
                return
            root = destination.resolve()
            for member in tar.getmembers():
                target = (destination / member.name).resolve()
                if root not in (target, *target.parents) or member.issym() or member.islnk():
                    raise ArtifactError(f"{archive}: refusing unsafe member {member.name!r}")
            tar.extractall(destination)
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ArtifactError(f"cannot extract {archive}: {error}") from error


def _download_s3(url: str, destination: Path) -> None:
    """Fetch `s3://bucket/key` with boto3 (AWS_ENDPOINT_URL, profiles and regions honoured)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        bucket, key = parse_s3_url(url)
    except ValueError as error:
        raise ArtifactError(str(error)) from None
    try:
        boto3.client("s3").download_file(bucket, key, str(destination))
    except ClientError as error:
        message = error.response.get("Error", {}).get("Message") or str(error)
        raise ArtifactError(f"cannot download {url}: {message}") from error
    except BotoCoreError as error:
        raise ArtifactError(f"cannot download {url}: {error}") from error


def prepare_model_dir(source: str, work_dir: Path) -> Path:
    """A model directory for `source`: an s3:// URL or a local .tar.gz (extracted), or a folder."""
    if source.startswith("s3://"):
        archive = work_dir / "model.tar.gz"
        logger.info("downloading %s", source)
        _download_s3(source, archive)
    else:
        path = Path(source).expanduser()
        if path.is_dir():
            return path.resolve()
        if not path.is_file():
            raise ArtifactError(
                f"{source!r} is not an s3:// URL, a model.tar.gz file or a model folder"
            )
        archive = path
    model_dir = work_dir / "model"
    model_dir.mkdir()
    logger.info("extracting %s", archive)
    _safe_extract(archive, model_dir)
    if archive.parent == work_dir:
        archive.unlink()  # the extracted copy is all that is needed
    return model_dir


# ---------------------------------------------------------------------------------------------
# Inference script


def prefer_local_onnxruntime() -> None:
    """Import this machine's onnxruntime before an archive's `code/` is put on sys.path.

    An ONNX archive vendors ONNX Runtime built for its image's Python, which need not be the one
    serving locally; this machine's copy (a development requirement) runs on any. Without one,
    the archive's copy is used, which works when this Python is the image's.
    """
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        logger.info("no local onnxruntime: the archive's code/onnxruntime will be used")


def import_inference_script(model_dir: Path) -> ModuleType:
    """Import `code/inference.py` as the toolkit does (its folder first on sys.path)."""
    script = model_dir / INFERENCE_SCRIPT
    if not script.is_file():
        if not (model_dir / "config.json").is_file():
            raise ArtifactError(f"{model_dir} has neither {INFERENCE_SCRIPT} nor config.json")
        logger.warning("%s has no %s; using %s", model_dir, INFERENCE_SCRIPT, PACKAGED_SCRIPT)
        script = PACKAGED_SCRIPT
    code_dir = str(script.parent)
    if (script.parent / "onnxruntime").is_dir():
        prefer_local_onnxruntime()
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    # A unique name: several artifacts can be served from one process (tests do).
    spec = importlib.util.spec_from_file_location(f"inference_{uuid.uuid4().hex}", script)
    if spec is None or spec.loader is None:
        raise ArtifactError(f"cannot import {script}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as `import` would; dataclasses look their module up there
    spec.loader.exec_module(module)
    for hook in ("model_fn", "input_fn", "predict_fn", "output_fn"):
        if not callable(getattr(module, hook, None)):
            raise ArtifactError(f"{script} does not define {hook}()")
    return module


@dataclass(frozen=True)
class Invocation:
    """What `/invocations` answers."""

    status: int
    body: bytes
    content_type: str


def error_body(status: int, message: str) -> bytes:
    """The model server's error shape (`{"code", "type", "message"}`), as the DLC answers."""
    kind = "ClientError" if status < 500 else "InternalServerException"
    return json.dumps({"code": status, "type": kind, "message": message}).encode("utf-8")


def openai_error_body(status: int, message: str) -> bytes:
    """OpenAI's error shape, which its SDK turns into an exception carrying the message."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    document = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return json.dumps(document).encode("utf-8")


def model_error_body(endpoint: str, answer: Invocation) -> bytes:
    """SageMaker Runtime's ModelError: the container's status and body, as InvokeEndpoint says."""
    original = answer.body.decode("utf-8", errors="replace")
    return json.dumps(
        {
            "ErrorCode": "CLIENT_ERROR_FROM_MODEL" if answer.status < 500 else "SERVER_ERROR",
            "OriginalStatusCode": answer.status,
            "OriginalMessage": original,
            "Message": f"Received error ({answer.status}) from primary with message "
            f'"{original}". See the local endpoint\'s log for more information.',
            "LogStreamArn": f"local:{endpoint}",
        }
    ).encode("utf-8")


class InferenceHandler:
    """The loaded script and model; `invoke` runs one request at a time."""

    def __init__(self, script: ModuleType, model: Any) -> None:
        self._script = script
        self._model = model
        self._lock = threading.Lock()

    @classmethod
    def load(cls, model_dir: Path) -> InferenceHandler:
        script = import_inference_script(model_dir)
        return cls(script, script.model_fn(str(model_dir)))

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> Invocation:
        """The hooks run as the DLC's toolkit runs them (embedding_client/toolkit_handle.py)."""
        accept = toolkit_handle.effective_accept(accept)
        try:
            received = toolkit_handle.hook_input(body, content_type)
        except UnicodeDecodeError as error:  # the toolkit's own step, before the hooks: its text
            return Invocation(400, toolkit_handle.error_body(str(error)), "application/json")
        try:
            with self._lock:
                data = self._script.input_fn(received, content_type)
                prediction = self._script.predict_fn(data, self._model)
                output = self._script.output_fn(prediction, accept)
        except Exception as error:  # the endpoint answers; it never dies on a request
            message = str(error)
            if not isinstance(getattr(error, "status", None), int):
                # As the container's hooks do: the cause goes to the log, not to the caller.
                message = INTERNAL_ERROR_MESSAGE
                logger.exception("inference failed")
            status = toolkit_handle.ERROR_STATUS
            return Invocation(status, toolkit_handle.error_body(message), "application/json")
        payload = output.encode("utf-8") if isinstance(output, str) else bytes(output)
        return Invocation(HTTPStatus.OK, payload, accept)


# ---------------------------------------------------------------------------------------------
# HTTP


class EndpointState:
    """Shared by the request threads: the handler once loaded, or why loading failed."""

    def __init__(self) -> None:
        self.handler: InferenceHandler | None = None
        self.load_error: str | None = None
        self.loaded = threading.Event()


def _request_handler(state: EndpointState) -> type[BaseHTTPRequestHandler]:
    class ContainerContract(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "embedding-endpoint-local"

        def log_message(self, format: str, *args: Any) -> None:
            logger.info("%s %s", self.address_string(), format % args)

        def _send(
            self,
            status: int,
            body: bytes,
            content_type: str = "application/json",
            headers: dict[str, str] | None = None,
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _discard(self, length: int) -> None:
            while length > 0:
                chunk = self.rfile.read(min(length, 1 << 16))
                if not chunk:
                    break
                length -= len(chunk)

        def _not_ready(self) -> bool:
            if state.handler is not None:
                return False
            message = state.load_error or "the model is still loading"
            status = 500 if state.load_error else 503
            self._send(status, error_body(status, message))
            return True

        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/ping":
                self._send(404, error_body(404, f"no such path {self.path}; try GET /ping"))
            elif not self._not_ready():
                self._send(200, b'{"status":"Healthy"}\n')

        def _read_body(self) -> bytes | None:
            """The request body, or None after answering 400/413 (read either way)."""
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                self._send(400, error_body(400, "invalid Content-Length"))
                return None
            if length > MAX_PAYLOAD_BYTES:
                self._discard(length)  # read, so the client sees the answer, not a reset
                message = f"request body is {length} bytes; SageMaker Serverless accepts 4 MB"
                self._send(413, error_body(413, message))
                return None
            return self.rfile.read(length)

        def _invoke(self, body: bytes) -> Invocation | None:
            if self._not_ready():
                return None
            assert state.handler is not None
            return state.handler.invoke(
                body, self.headers.get("Content-Type"), self.headers.get("Accept")
            )

        def do_POST(self) -> None:
            path = self.path.split("?")[0]
            runtime = RUNTIME_PATH.match(path)
            if path not in ("/invocations", OPENAI_PATH) and runtime is None:
                message = f"no such path {self.path}; POST /invocations or {OPENAI_PATH}"
                self._send(404, error_body(404, message))
                return
            body = self._read_body()
            if body is None:
                return
            answer = self._invoke(body)
            if answer is None:
                return
            if path == OPENAI_PATH and answer.status != HTTPStatus.OK:
                message = json.loads(answer.body).get("message", "")
                self._send(answer.status, openai_error_body(answer.status, message))
            elif runtime is not None and answer.status != HTTPStatus.OK:
                self._send_model_error(runtime.group("name"), answer)
            elif runtime is not None:
                self._send(answer.status, answer.body, answer.content_type, RUNTIME_HEADERS)
            else:
                self._send(answer.status, answer.body, answer.content_type)

        def _send_model_error(self, endpoint: str, answer: Invocation) -> None:
            headers = {"x-amzn-ErrorType": "ModelError"}
            self._send(424, model_error_body(endpoint, answer), "application/json", headers)

    return ContainerContract


class LocalEndpoint:
    """The HTTP server plus a background model load; `start()` returns once it listens."""

    def __init__(
        self,
        load: Callable[[], InferenceHandler],
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
    ) -> None:
        self._load = load
        self.state = EndpointState()
        self._server = ThreadingHTTPServer((host, port), _request_handler(self.state))
        self._server.daemon_threads = True
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def _load_model(self) -> None:
        try:
            self.state.handler = self._load()
            logger.info("model loaded; serving on %s", self.url)
        except Exception as error:
            logger.exception("loading the model failed")
            self.state.load_error = f"loading the model failed: {error}"
        finally:
            self.state.loaded.set()

    def start(self) -> None:
        for target in (self._server.serve_forever, self._load_model):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)

    def wait_until_loaded(self, timeout: float | None = None) -> bool:
        """True once the model has loaded; False if loading failed or timed out."""
        self.state.loaded.wait(timeout)
        return self.state.handler is not None

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=30)


@dataclass(frozen=True)
class ServeOptions:
    source: str
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    model_id: str | None = None
    threads: int | None = None


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def serve(options: ServeOptions) -> int:
    """Prepare the artifact, load it and serve until interrupted; the process's exit code."""
    model_id = options.model_id or model_id_from_key(options.source)
    if model_id:
        os.environ["EMBEDDING_MODEL_ID"] = model_id
    if options.threads:
        os.environ["EMBEDDING_NUM_THREADS"] = str(options.threads)
    if threading.current_thread() is threading.main_thread():
        # `kill` / container stop: shut down like Ctrl-C so the extracted model is removed.
        signal.signal(signal.SIGTERM, _interrupt)
    work_dir = Path(tempfile.mkdtemp(prefix="embedding-endpoint-"))
    try:

        def load() -> InferenceHandler:
            return InferenceHandler.load(prepare_model_dir(options.source, work_dir))

        try:
            endpoint = LocalEndpoint(load, options.host, options.port)
        except OSError as error:
            logger.error("cannot listen on %s:%d: %s", options.host, options.port, error)
            return 1
        endpoint.start()
        logger.info("listening on %s (GET /ping, POST /invocations)", endpoint.url)
        try:
            if not endpoint.wait_until_loaded():
                logger.error("%s", endpoint.state.load_error)
                endpoint.stop()
                return 1
            threading.Event().wait()  # serve until Ctrl-C / SIGTERM
        except KeyboardInterrupt:
            logger.info("stopping")
        endpoint.stop()
        return 0
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
