"""embedding_client.smoke against endpoints that answer badly (a tiny server on 127.0.0.1).

The server speaks the inference protocol (`POST /invocations` with `{"inputs", "parameters"}` →
`{"embeddings", "model", "dimensions"}`), so the real `HttpBackend` runs unchanged; each test
decides what it answers. The passing path against the real model is in test_rehearsal.py.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from embedding_client import smoke
from tests.support.local_http import LocalHttpServer

Answer = Callable[[list[str]], tuple[int, object]]
# Hand-placed unit vectors: the paraphrases 0.8 apart in cosine, the unrelated sentence orthogonal.
PLAUSIBLE = {
    smoke.PARAPHRASES[0]: [1.0, 0.0, 0.0],
    smoke.PARAPHRASES[1]: [0.8, 0.6, 0.0],
    smoke.UNRELATED: [0.0, 0.0, 1.0],
}


def plausible(texts: list[str]) -> tuple[int, object]:
    vectors = [PLAUSIBLE[text] for text in texts]
    return 200, {"embeddings": vectors, "model": "fixture/plausible", "dimensions": 3}


class ScriptedEndpoint:
    """An inference server whose answer to each request is decided by `answer`."""

    def __init__(self) -> None:
        self.answer: Answer = plausible
        self.requests: list[dict] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's method name
                self._send(200 if self.path == "/ping" else 404, {})

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                endpoint.requests.append(body)
                inputs = body["inputs"]
                status, payload = endpoint.answer([inputs] if isinstance(inputs, str) else inputs)
                self._send(status, payload)

            def _send(self, status: int, payload: object) -> None:
                data = json.dumps(payload).encode()  # allow_nan: NaN reaches the client as-is
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = LocalHttpServer(Handler)
        self.server.start()
        self.url = self.server.url

    def close(self) -> None:
        self.server.stop()


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedEndpoint]:
    endpoint = ScriptedEndpoint()
    try:
        yield endpoint
    finally:
        endpoint.close()


@pytest.fixture
def endpoint(server: ScriptedEndpoint) -> Iterator[ScriptedEndpoint]:
    server.answer = plausible
    server.requests.clear()
    yield server
    server.answer = plausible


def _smoke(endpoint: ScriptedEndpoint, capsys, *extra: str) -> tuple[int, str, str]:
    code = smoke.main(["--url", endpoint.url, "--attempts", "2", "--retry-delay", "0", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_plausible_endpoint_passes_with_a_report(endpoint, capsys) -> None:
    code, out, err = _smoke(endpoint, capsys)
    assert code == 0, err
    report = json.loads(out)
    assert report["smoke_test"] == "passed"
    assert report["dimensions"] == 3
    assert report["paraphrase_similarity"] == pytest.approx(0.8)
    assert report["unrelated_similarity"] == pytest.approx(0.0)


def test_smoke_asks_for_normalized_embeddings_of_two_then_one_sentence(endpoint, capsys) -> None:
    _smoke(endpoint, capsys)
    sent = [request["inputs"] for request in endpoint.requests]
    assert sent in (
        [list(smoke.PARAPHRASES), [smoke.UNRELATED]],
        [list(smoke.PARAPHRASES), smoke.UNRELATED],
    )
    assert all(request["parameters"]["normalize"] is True for request in endpoint.requests)


def test_fewer_vectors_than_sentences_fail(endpoint, capsys) -> None:
    endpoint.answer = lambda texts: (
        200,
        {"embeddings": [[1.0, 0.0]], "model": "m", "dimensions": 2},
    )
    code, _, err = _smoke(endpoint, capsys)
    assert code == 1
    assert "smoke test failed" in err and "1 vectors for 2 texts" in err
    assert len(endpoint.requests) == 1  # a wrong answer is not retried


def test_vectors_shorter_than_declared_dimensions_fail(endpoint, capsys) -> None:
    def short(texts):
        status, payload = plausible(texts)
        return status, {**payload, "dimensions": 384}

    endpoint.answer = short
    code, _, err = _smoke(endpoint, capsys)
    assert code == 1
    assert "384" in err


def test_other_dimension_than_expected_fails(endpoint, capsys) -> None:
    code, _, err = _smoke(endpoint, capsys, "--expected-dimensions", "384")
    assert code == 1
    assert "3 dimensions, expected 384" in err


def test_unnormalized_vectors_fail(endpoint, capsys) -> None:
    def doubled(texts):
        status, payload = plausible(texts)
        return status, {
            **payload,
            "embeddings": [[2 * v for v in vec] for vec in payload["embeddings"]],
        }

    endpoint.answer = doubled
    code, _, err = _smoke(endpoint, capsys)
    assert code == 1
    norm = re.search(r"has norm ([0-9.]+);", err)
    assert norm is not None, err
    assert float(norm.group(1)) == pytest.approx(2.0, abs=1e-4)


def test_nan_values_fail(endpoint, capsys) -> None:
    endpoint.answer = lambda texts: (
        200,
        {"embeddings": [[math.nan, 0.0, 0.0] for _ in texts], "model": "m", "dimensions": 3},
    )
    code, _, err = _smoke(endpoint, capsys)
    assert code == 1
    assert "NaN" in err


def test_same_vector_for_every_sentence_is_implausible(endpoint, capsys) -> None:
    endpoint.answer = lambda texts: (
        200,
        {"embeddings": [[0.6, 0.8, 0.0] for _ in texts], "model": "m", "dimensions": 3},
    )
    code, _, err = _smoke(endpoint, capsys)
    assert code == 1
    assert "implausible similarity" in err


def test_unrelated_closer_than_paraphrase_is_implausible(endpoint, capsys) -> None:
    swapped = {**PLAUSIBLE, smoke.PARAPHRASES[1]: [0.0, 0.0, 1.0], smoke.UNRELATED: [0.8, 0.6, 0.0]}
    endpoint.answer = lambda texts: (
        200,
        {"embeddings": [swapped[t] for t in texts], "model": "m", "dimensions": 3},
    )
    code, _, err = _smoke(endpoint, capsys)
    assert code == 1
    assert "implausible similarity" in err


def test_margin_below_minimum_fails(endpoint, capsys) -> None:
    code, _, err = _smoke(endpoint, capsys, "--min-margin", "0.9")
    assert code == 1
    assert "at least 0.9" in err


def test_endpoint_errors_fail_after_the_configured_attempts(endpoint, capsys) -> None:
    endpoint.answer = lambda texts: (500, {"message": "model failed to load"})
    code, _, err = _smoke(endpoint, capsys)
    assert code == 1
    assert "after 2 attempt(s)" in err
    assert len(endpoint.requests) == 2


def test_a_transient_error_is_retried(endpoint, capsys) -> None:
    calls = []

    def cold_start_then_ok(texts):
        calls.append(texts)
        return (500, {"message": "cold start"}) if len(calls) == 1 else plausible(texts)

    endpoint.answer = cold_start_then_ok
    code, _, err = _smoke(endpoint, capsys)
    assert code == 0, err
    assert "attempt 1 failed" in err


def test_unreachable_endpoint_fails(capsys) -> None:
    code = smoke.main(["--url", "http://127.0.0.1:9", "--attempts", "1"])
    assert code == 1
    assert "smoke test failed" in capsys.readouterr().err


def test_endpoint_without_region_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        smoke.main(["--endpoint", "embed-dev"])
    assert exit_info.value.code == 2
    assert "--region" in capsys.readouterr().err


def test_module_runs_as_a_command_and_exits_nonzero_on_failure(endpoint) -> None:
    endpoint.answer = lambda texts: (
        200,
        {"embeddings": [[0.6, 0.8, 0.0] for _ in texts], "model": "m", "dimensions": 3},
    )
    result = subprocess.run(
        [sys.executable, "-m", "embedding_client.smoke", "--url", endpoint.url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "implausible similarity" in result.stderr
