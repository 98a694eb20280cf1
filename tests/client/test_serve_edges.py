"""The local endpoint at the edges of HTTP: bursts, odd bodies, wrong methods, stopping.

Every request goes over a real socket on 127.0.0.1 to the reference model; the raw ones are
written by hand because no well-behaved client sends them.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from embedding_client.serve import InferenceHandler, LocalEndpoint
from facts.http_api import OPENAI_ROUTE, route_shape_problem

BODY = b'{"inputs": "A man is eating food."}'
CONNECTIONS = 100
REQUESTS_PER_CONNECTION = 2


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def exchange(url: str, raw: bytes, method: str = "POST", timeout: float = 60):
    """(status, headers, body) of one hand-written request on a new connection."""
    with socket.create_connection(_address(url), timeout=timeout) as sock:
        sock.sendall(raw)
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        return response.status, response.headers, response.read()


def post_head(path: str, *headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: local", "Content-Type: application/json", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class GatedScript:
    """The reference model's real script, with `predict_fn` held until the test opens the gate."""

    def __init__(self, script: Any) -> None:
        self._script = script
        self.entered = threading.Event()
        self.gate = threading.Event()

    def input_fn(self, body: bytes, content_type: str | None) -> Any:
        return self._script.input_fn(body, content_type)

    def predict_fn(self, data: Any, model: Any) -> Any:
        self.entered.set()
        self.gate.wait(timeout=60)
        return self._script.predict_fn(data, model)

    def output_fn(self, prediction: Any, accept: str) -> Any:
        return self._script.output_fn(prediction, accept)


@pytest.fixture
def gated(reference_endpoint: LocalEndpoint) -> Iterator[tuple[LocalEndpoint, GatedScript]]:
    """A second endpoint on the loaded reference model, one waiting request at most."""
    loaded = reference_endpoint.state.handler
    assert loaded is not None
    script = GatedScript(loaded._script)
    endpoint = LocalEndpoint(
        lambda: InferenceHandler(script, loaded._model), port=0, timeout=1, max_waiting=1
    )
    endpoint.start()
    assert endpoint.wait_until_loaded(timeout=30)
    yield endpoint, script
    script.gate.set()
    endpoint.stop(grace=5)


def _post_in_background(url: str) -> tuple[threading.Thread, list]:
    outcome: list = []

    def post() -> None:
        connection = http.client.HTTPConnection(*_address(url), timeout=60)
        connection.request("POST", "/invocations", BODY, {"Content-Type": "application/json"})
        response = connection.getresponse()
        outcome.append((response.status, response.read()))

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    return thread, outcome


# ---------------------------------------------------------------------------------------------
# A burst of new connections


def test_a_burst_of_new_connections_is_answered_and_never_reset(reference_endpoint):
    start = threading.Barrier(CONNECTIONS)
    answers: list[tuple[int, str | None]] = []
    failures: list[BaseException] = []

    def client() -> None:
        try:
            start.wait(timeout=60)
            connection = http.client.HTTPConnection(*_address(reference_endpoint.url), timeout=120)
            for _ in range(REQUESTS_PER_CONNECTION):
                connection.request(
                    "POST", "/invocations", BODY, {"Content-Type": "application/json"}
                )
                response = connection.getresponse()
                response.read()
                answers.append((response.status, response.getheader("Retry-After")))
                if response.getheader("Connection") == "close":
                    connection.close()
            connection.close()
        except BaseException as error:  # noqa: BLE001 - every failure is what the test counts
            failures.append(error)

    threads = [threading.Thread(target=client) for _ in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert failures == []
    assert len(answers) == CONNECTIONS * REQUESTS_PER_CONNECTION
    assert all(status == 200 or (status == 503 and retry) for status, retry in answers), answers


def refused_for_now(endpoint: LocalEndpoint) -> str:
    """The message of the 503 a request gets now; it must carry Retry-After."""
    status, headers, body = exchange(
        endpoint.url, post_head("/invocations", "Content-Length: 2") + b"{}"
    )
    assert status == 503 and headers["Retry-After"] == "1"
    return json.loads(body)["message"]


def test_requests_beyond_the_waiting_bound_get_503_with_retry_after(gated):
    endpoint, script = gated
    thread, first = _post_in_background(endpoint.url)
    assert script.entered.wait(timeout=30)
    assert "too many requests are waiting" in refused_for_now(endpoint)
    script.gate.set()
    thread.join(timeout=60)
    assert first[0][0] == 200


# ---------------------------------------------------------------------------------------------
# Bodies


def test_a_body_shorter_than_its_content_length_is_a_408_after_the_read_timeout(gated):
    endpoint, _ = gated  # read timeout 1 s
    raw = post_head("/invocations", "Content-Length: 100") + b'{"inputs":'
    status, headers, body = exchange(endpoint.url, raw, timeout=30)
    assert status == 408 and headers["Connection"] == "close"
    assert "did not arrive within 1 s" in json.loads(body)["message"]


@pytest.mark.parametrize(
    ("headers", "named"),
    [
        (("Content-Length: -1",), "Content-Length must be a whole number"),
        (("Content-Length: 2", "Content-Length: 2"), "Content-Length is given 2 times"),
        (("Content-Length: 2", "Transfer-Encoding: chunked"), "not both"),
    ],
)
def test_a_length_that_is_negative_duplicated_or_beside_chunked_is_a_400(
    reference_endpoint, headers, named
):
    raw = post_head("/invocations", *headers) + b"{}"
    status, _, body = exchange(reference_endpoint.url, raw, timeout=30)
    assert status == 400 and named in json.loads(body)["message"]


def test_a_chunked_body_is_read_and_the_connection_serves_the_next_request(reference_endpoint):
    connection = http.client.HTTPConnection(*_address(reference_endpoint.url), timeout=60)
    pieces = iter([BODY[:9], BODY[9:20], BODY[20:]])
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    connection.request("POST", "/invocations", pieces, headers, encode_chunked=True)
    first = connection.getresponse()
    assert first.status == 200, first.read()
    assert len(json.loads(first.read())["embeddings"]) == 1
    connection.request("POST", "/invocations", BODY, {"Content-Type": "application/json"})
    second = connection.getresponse()
    assert second.status == 200 and len(json.loads(second.read())["embeddings"]) == 1
    connection.close()


def test_a_transfer_encoding_other_than_chunked_is_a_501_naming_chunked(reference_endpoint):
    raw = post_head("/invocations", "Transfer-Encoding: gzip, chunked") + b"0\r\n\r\n"
    status, _, body = exchange(reference_endpoint.url, raw, timeout=30)
    assert status == 501 and "allowed: chunked" in json.loads(body)["message"]


def test_a_chunked_body_over_4_mb_is_a_413(reference_endpoint):
    raw = (
        post_head("/invocations", "Transfer-Encoding: chunked") + b"3D0901\r\n"
    )  # 4,000,001 bytes announced
    status, _, body = exchange(reference_endpoint.url, raw, timeout=30)
    assert status == 413 and "4 MB" in json.loads(body)["message"]


# ---------------------------------------------------------------------------------------------
# One error shape


def test_get_on_the_openai_route_is_a_405_in_openais_shape_with_allow(reference_endpoint):
    raw = b"GET /v1/embeddings HTTP/1.1\r\nHost: local\r\n\r\n"
    status, headers, body = exchange(reference_endpoint.url, raw, method="GET")
    assert status == 405 and headers["Allow"] == "POST"
    assert headers["Content-Type"] == "application/json"
    assert "use POST" in json.loads(body)["error"]["message"]


@pytest.mark.parametrize(
    ("raw", "status", "allow"),
    [
        (b"GET /invocations HTTP/1.1\r\nHost: l\r\n\r\n", 405, "POST"),
        (b"POST /ping HTTP/1.1\r\nHost: l\r\nContent-Length: 0\r\n\r\n", 405, "GET"),
        (b"PUT /invocations HTTP/1.1\r\nHost: l\r\nContent-Length: 0\r\n\r\n", 501, None),
        (b"DELETE /ping HTTP/1.1\r\nHost: l\r\n\r\n", 501, None),
        (b"GET /nowhere HTTP/1.1\r\nHost: l\r\n\r\n", 404, None),
        (b"GET /ping HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", 431, None),
    ],
    ids=["get-invocations", "post-ping", "put", "delete", "unknown-path", "long-header"],
)
def test_every_error_is_the_container_error_shape_not_html(reference_endpoint, raw, status, allow):
    got, headers, body = exchange(reference_endpoint.url, raw, method="GET")
    assert got == status and headers["Content-Type"] == "application/json"
    document = json.loads(body)
    assert document["code"] == status and document["message"]
    assert headers["Allow"] == allow


def test_head_is_a_501_with_no_body(reference_endpoint):
    raw = b"HEAD /ping HTTP/1.1\r\nHost: l\r\n\r\n"
    status, headers, body = exchange(reference_endpoint.url, raw, method="HEAD")
    assert status == 501 and headers["Content-Type"] == "application/json" and body == b""


# ---------------------------------------------------------------------------------------------
# Stopping


def test_stop_answers_the_request_in_flight_and_refuses_new_ones(gated):
    endpoint, script = gated
    thread, first = _post_in_background(endpoint.url)
    assert script.entered.wait(timeout=30)
    stopped: list[bool] = []
    stopper = threading.Thread(target=lambda: stopped.append(endpoint.stop(grace=30)))
    stopper.start()
    while not endpoint.state.stopping:
        threading.Event().wait(0.01)
    assert "stopping" in refused_for_now(endpoint)
    script.gate.set()
    thread.join(timeout=60)
    stopper.join(timeout=60)
    assert first == [(200, first[0][1])] and stopped == [True]


def test_stop_gives_up_on_a_request_that_outlasts_the_grace(gated):
    endpoint, script = gated
    _post_in_background(endpoint.url)
    assert script.entered.wait(timeout=30)
    assert endpoint.stop(grace=0.2) is False  # returns; the request is left to the exit


@pytest.mark.parametrize("path", ["/nowhere", "/ping"])
def test_a_refused_post_closes_the_connection_so_its_body_is_never_read_as_a_request(
    reference_endpoint, path
):
    smuggled = b"GET /ping HTTP/1.1\r\nHost: l\r\n\r\n"
    raw = post_head(path, f"Content-Length: {len(smuggled)}") + smuggled
    received = b""
    with socket.create_connection(_address(reference_endpoint.url), timeout=30) as sock:
        sock.sendall(raw)
        while chunk := sock.recv(65536):  # until the server closes (a timeout fails the test)
            received += chunk
    assert received.count(b"HTTP/1.1 ") == 1, received  # the body was not taken as a request
    assert received.split(b" ")[1] in (b"404", b"405")


@pytest.mark.parametrize("document", [{"inputs": "a cat"}, {"info": True}])
def test_a_native_request_on_the_openai_route_is_refused_as_the_http_api_refuses_it(
    reference_endpoint, document
):
    connection = http.client.HTTPConnection(*_address(reference_endpoint.url), timeout=60)
    connection.request(
        "POST", "/v1/embeddings", json.dumps(document), {"Content-Type": "application/json"}
    )
    answer = connection.getresponse()
    body = json.loads(answer.read())
    connection.close()
    assert answer.status == 400
    assert body["error"]["message"] == route_shape_problem(OPENAI_ROUTE, document)
