"""A local endpoint with SageMaker's container contract, serving a model artifact on this machine.

    python -m embedding_client serve s3://bucket/models/org/name/<sha>/model.tar.gz
    python -m embedding_client serve ./model.tar.gz --port 8080

The archive is extracted and its `code/inference.py` hooks run as the DLC's toolkit runs them
(toolkit_handle.py; tests/dlc/ compares the two servers), one request at a time. Also
`POST /v1/embeddings` (OpenAI's route) and `POST /endpoints/{name}/invocations` (SageMaker
Runtime's API; the name and SigV4 signature are not checked). See docs/inference.md.
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
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import ModuleType
from typing import Any

from embedding_client import toolkit_handle
from embedding_client.serve_artifact import ArtifactError, prepare_model_dir, served_model_id
from embedding_client.serve_body import BodyError, LingeringServer, read_body
from facts.embedding_api import INTERNAL_ERROR_MESSAGE, InputError, decode_json, openai_error
from facts.http_api import OPENAI_ROUTE, route_shape_problem
from facts.sagemaker_endpoints import MODEL_ID_VARIABLE, NUM_THREADS_VARIABLE
from facts.serverless import MAX_PAYLOAD_BYTES

logger = logging.getLogger("embedding_client.serve")

DEFAULT_PORT = 8080
DEFAULT_HOST = "127.0.0.1"
INFERENCE_SCRIPT = Path("code") / "inference.py"
# OpenAI's route (clients take `base_url=http://host:port/v1`), and SageMaker Runtime's own path
# (boto3 `invoke_endpoint`, the AWS CLI and LangChain with `endpoint_url=http://host:port`).
RUNTIME_PATH = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations$")
RUNTIME_HEADERS = {"x-Amzn-Invoked-Production-Variant": "AllTraffic"}
# Up to this many requests wait for the model (a burst of new connections waits in the listen
# queue, serve_body.LISTEN_BACKLOG); more get a 503 with Retry-After.
MAX_WAITING_REQUESTS = 256
# Any read from a client (the body, the next request on a kept-alive connection): SageMaker's
# own invocation timeout. On SIGTERM, requests admitted get this long to finish.
READ_TIMEOUT_SECONDS = 60.0
STOP_GRACE_SECONDS = 30.0
# Used when an extracted folder (e.g. a plain Hub snapshot) carries no script of its own.
PACKAGED_SCRIPT = Path(__file__).resolve().parent.parent / "container" / "inference.py"


# ---------------------------------------------------------------------------------------------
# Inference script


def prefer_local_onnxruntime() -> None:
    """Import this machine's onnxruntime before an archive's `code/` is put on sys.path.

    The archive's copy is built for its image's Python; this machine's runs on any.
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
    return json.dumps(openai_error(status, message)).encode("utf-8")


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
    """Shared by the request threads: the handler once loaded, why loading failed, and traffic."""

    def __init__(self, max_waiting: int = MAX_WAITING_REQUESTS) -> None:
        self.handler: InferenceHandler | None = None
        self.load_error: str | None = None
        self.loaded = threading.Event()
        self.stopping = False
        self._admitted = 0
        self._max_waiting = max_waiting
        self._traffic = threading.Condition()

    def admit(self) -> bool:
        """Count a request in, unless the endpoint stops or already has a full queue."""
        with self._traffic:
            if self.stopping or self._admitted >= self._max_waiting:
                return False
            self._admitted += 1
            return True

    def release(self) -> None:
        with self._traffic:
            self._admitted -= 1
            self._traffic.notify_all()

    def drain(self, timeout: float) -> bool:
        """Refuse new requests; True once those admitted have been answered (within timeout)."""
        with self._traffic:
            self.stopping = True
            return self._traffic.wait_for(lambda: self._admitted == 0, timeout)


class ContainerContract(BaseHTTPRequestHandler):
    """SageMaker's container contract plus OpenAI's and SageMaker Runtime's routes."""

    state: EndpointState
    timeout: float  # every read: a body that never comes is a 408, not a hang
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
        try:
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client left before its answer
            self.close_connection = True
            logger.info("%s %s: the client closed the connection", self.command, self._route())

    def _route(self) -> str:
        return (getattr(self, "path", None) or "").split("?")[0]

    def send_error(self, code: int, message: str | None = None, explain: Any = None) -> None:
        """Every error in the route's JSON shape (http.server's own would be HTML)."""
        self._error(code, message or HTTPStatus(code).phrase, {"Connection": "close"})

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        if (headers or {}).get("Connection") == "close":
            self.close_connection = True
        shape = openai_error_body if self._route() == OPENAI_ROUTE else error_body
        self._send(status, shape(status, message), "application/json", headers)

    def _not_ready(self) -> bool:
        if self.state.handler is not None:
            return False
        message = self.state.load_error or "the model is still loading"
        status = 500 if self.state.load_error else 503
        self._error(status, message)
        return True

    def _wrong_method(self, allowed: str) -> None:
        message = f"{self.command} {self._route()} is not allowed; use {allowed}"
        self._error(405, message, {"Allow": allowed, "Connection": "close"})  # body left unread

    def do_GET(self) -> None:
        path = self._route()
        if path in ("/invocations", OPENAI_ROUTE) or RUNTIME_PATH.match(path):
            self._wrong_method("POST")
        elif path != "/ping":
            self._error(404, f"no such path {self.path}; try GET /ping")
        elif not self._not_ready():
            self._send(200, b'{"status":"Healthy"}\n')

    def _invoke(self, body: bytes) -> Invocation | None:
        if self._not_ready():
            return None
        assert self.state.handler is not None
        return self.state.handler.invoke(
            body, self.headers.get("Content-Type"), self.headers.get("Accept")
        )

    def do_POST(self) -> None:
        path = self._route()
        runtime = RUNTIME_PATH.match(path)
        if path == "/ping":
            return self._wrong_method("GET")
        if path not in ("/invocations", OPENAI_ROUTE) and runtime is None:
            message = f"no such path {self.path}; POST /invocations or {OPENAI_ROUTE}"
            return self._error(404, message, {"Connection": "close"})  # body left unread
        if not self.state.admit():
            reason = "stopping" if self.state.stopping else "busy: too many requests are waiting"
            retry = {"Retry-After": "1", "Connection": "close"}
            return self._error(503, f"the local endpoint is {reason}", retry)
        try:
            self._answer(
                path, runtime, read_body(self.headers, self.rfile, MAX_PAYLOAD_BYTES, self.timeout)
            )
        except BodyError as error:
            self._error(error.status, str(error), {"Connection": "close"})
        finally:
            self.state.release()

    def _answer(self, path: str, runtime: re.Match | None, body: bytes) -> None:
        problem = _openai_shape_problem(body) if path == OPENAI_ROUTE else None
        if problem is not None:
            return self._send(400, openai_error_body(400, problem))
        answer = self._invoke(body)
        if answer is None:
            return
        if path == OPENAI_ROUTE and answer.status != HTTPStatus.OK:
            message = json.loads(answer.body).get("message", "")
            self._send(answer.status, openai_error_body(answer.status, message))
        elif runtime is not None and answer.status != HTTPStatus.OK:
            error = model_error_body(runtime.group("name"), answer)
            self._send(424, error, "application/json", {"x-amzn-ErrorType": "ModelError"})
        elif runtime is not None:
            self._send(answer.status, answer.body, answer.content_type, RUNTIME_HEADERS)
        else:
            self._send(answer.status, answer.body, answer.content_type)


def _openai_shape_problem(body: bytes) -> str | None:
    """The HTTP API's rule for its OpenAI route, here too: a native request there is refused.
    A body that is no JSON object is left to the container's hooks, which name what is wrong."""
    try:
        document = decode_json(body, "request body")
    except InputError:
        return None
    return route_shape_problem(OPENAI_ROUTE, document) if isinstance(document, dict) else None


class LocalEndpoint:
    """The HTTP server plus a background model load; `start()` returns once it listens."""

    def __init__(
        self,
        load: Callable[[], InferenceHandler],
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        timeout: float = READ_TIMEOUT_SECONDS,
        max_waiting: int = MAX_WAITING_REQUESTS,
    ) -> None:
        self._load = load
        self.state = EndpointState(max_waiting)
        # The handler class for this endpoint: its state, and the timeout of every read.
        bound = {"state": self.state, "timeout": timeout}
        self._server = LingeringServer((host, port), type("Bound", (ContainerContract,), bound))
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

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> bool:
        """Refuse new requests, answer those admitted for up to `grace` s, then close."""
        drained = self.state.drain(grace)
        if not drained:
            logger.warning("stopping with requests still running after %g s", grace)
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=grace)
        return drained


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
    os.environ[MODEL_ID_VARIABLE] = served_model_id(options.source, options.model_id)
    if options.threads:
        os.environ[NUM_THREADS_VARIABLE] = str(options.threads)
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
            logger.info("stopping: requests already admitted get %g s", STOP_GRACE_SECONDS)
        endpoint.stop()
        return 0
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
