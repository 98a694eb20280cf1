"""An HTTP server on 127.0.0.1 for the test doubles (Hub, AWS APIs, scripted endpoints).

One recipe for all of them: a free port, a `ThreadingHTTPServer` served from a daemon thread,
and a shutdown that closes the socket and waits for the thread.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LocalHttpServer:
    """Serves `handler` on 127.0.0.1; `url` is known before `start` (the port is bound here)."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        host, port = self._httpd.server_address[:2]
        self.url = f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> LocalHttpServer:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
