"""Cancelling a crew: a flag checked between steps, and the sockets of requests in flight.

crewai makes its LLM requests on worker threads, which asyncio cancellation cannot reach.
Setting a :class:`Cancellation` also shuts down the sockets its crews registered (see
``runtime``), so a request in flight fails at once instead of running on until its timeout.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any

__all__ = ["Cancellation"]


class Cancellation(threading.Event):
    """A cancel flag that also aborts the registered connections when set."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._sockets: list[Any] = []

    def register(self, sock: Any) -> None:
        """Track a socket of the running crew (shut down at once if already cancelled)."""
        with self._lock:
            self._sockets.append(sock)
        if self.is_set():
            _shutdown(sock)

    def set(self) -> None:
        super().set()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shutdown(sock)

    def clear(self) -> None:
        super().clear()
        with self._lock:
            self._sockets = []


def _shutdown(sock: Any) -> None:
    with contextlib.suppress(OSError, AttributeError):  # already closed, or not a socket
        sock.shutdown(socket.SHUT_RDWR)
