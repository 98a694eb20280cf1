"""Ctrl-C as a count the commands look at, so a press never lands mid-write: `embed file` stops
sending and waits for the requests in flight, `embed batch` stops its job.
"""

from __future__ import annotations

import signal
import threading


class CtrlC:
    """Counts Ctrl-C presses instead of raising KeyboardInterrupt mid-write (main thread only)."""

    def __init__(self) -> None:
        self.count = 0
        self._previous: object = None

    def _pressed(self, signum: int, frame: object) -> None:
        self.count += 1

    def __enter__(self) -> CtrlC:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._pressed)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)  # type: ignore[arg-type]
