"""Ctrl-C in `embed file`: the first says what is in flight, the second stops at once, and a rerun
embeds every record exactly once either way.

The run is a real process (SIGINT as a terminal sends it) against an endpoint that holds every
embedding request until the test lets it go, in front of the reference model.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from embedding_client.bulk_command import EXIT_INTERRUPTED
from embedding_client.embed import EXIT_OK
from embedding_client.serve import LocalEndpoint
from tests.client.test_bulk_file import corpus_texts, embed_file, write_corpus
from tests.support.local_http import LocalHttpServer
from tests.support.models import REPO_ROOT

IN_FLIGHT = 2


class HeldEndpoint:
    """Counts embedding requests as they arrive and answers none until `gate` opens."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.arrived = 0
        self.changed = threading.Condition()
        self.url = ""

    def wait_for(self, count: int, timeout: float = 120) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.arrived >= count, timeout), self.arrived


@pytest.fixture
def held(reference_endpoint: LocalEndpoint) -> Iterator[HeldEndpoint]:
    handler = reference_endpoint.state.handler
    assert handler is not None
    held = HeldEndpoint()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # quiet
            pass

        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if json.loads(body) != {"info": True}:
                with held.changed:
                    held.arrived += 1
                    held.changed.notify_all()
                held.gate.wait(timeout=120)
            answer = handler.invoke(body, self.headers.get("Content-Type"), None)
            try:
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # a run stopped at once no longer reads its abandoned requests

    with LocalHttpServer(Handler) as server:
        held.url = server.url
        yield held
        held.gate.set()


def start_run(corpus: Path, out: Path, url: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "embedding_client", "embed", "file", str(corpus)]
    command += ["--out", str(out), "--url", url, "--concurrency", str(IN_FLIGHT)]
    command += ["--max-tokens", "60"]
    return subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def read_until(process: subprocess.Popen, text: str) -> list[str]:
    """stderr's lines up to the one holding `text` (the process is alive until then)."""
    assert process.stderr is not None
    lines: list[str] = []
    for line in process.stderr:
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"{text!r} never came; stderr: {''.join(lines)}")


def ids_written(out: Path) -> Counter:
    return Counter(json.loads(line)["id"] for line in out.read_text().splitlines())


def resume_and_check_exactly_once(corpus: Path, out: Path, url: str, records: dict) -> None:
    finished = embed_file(corpus, "--out", out, "--url", url)
    assert finished.code == EXIT_OK, finished.err
    written = ids_written(out)
    assert sorted(written) == sorted(records)
    assert set(written.values()) == {1}


def interrupted_once(tmp_path: Path, held: HeldEndpoint, seed: int):
    """A run given one Ctrl-C while the endpoint holds its requests: process, records, its line."""
    records = write_corpus(tmp_path / "corpus.jsonl", corpus_texts(60, seed=seed))
    process = start_run(tmp_path / "corpus.jsonl", tmp_path / "v.jsonl", held.url)
    held.wait_for(IN_FLIGHT)
    process.send_signal(signal.SIGINT)
    return process, records, read_until(process, "stopping: waiting for")[-1]


def test_the_first_ctrl_c_names_the_requests_in_flight_and_waits_for_them(tmp_path, held):
    out = tmp_path / "v.jsonl"
    process, records, said = interrupted_once(tmp_path, held, seed=21)
    try:
        assert f"waiting for {IN_FLIGHT} request(s) in flight" in said
        assert "Ctrl-C again stops at once" in said
        held.gate.set()  # the requests in flight are answered and written
        stdout, _ = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == EXIT_INTERRUPTED
    assert "interrupted: rerun the same command" in stdout
    assert 0 < len(ids_written(out)) < len(records)
    resume_and_check_exactly_once(tmp_path / "corpus.jsonl", out, held.url, records)


def test_a_second_ctrl_c_stops_at_once_and_the_rerun_embeds_what_was_abandoned(tmp_path, held):
    out = tmp_path / "v.jsonl"
    process, records, _ = interrupted_once(tmp_path, held, seed=22)
    try:
        process.send_signal(signal.SIGINT)  # the endpoint still holds both requests
        stdout, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == EXIT_INTERRUPTED
    assert f"abandoned {IN_FLIGHT} request(s) in flight" in stdout
    assert not out.exists() or ids_written(out) == Counter()
    held.gate.set()
    resume_and_check_exactly_once(tmp_path / "corpus.jsonl", out, held.url, records)
