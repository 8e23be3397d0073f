"""Fail tests that reach the internet: name lookups of anything but loopback are refused and
recorded (LiteLLM's cost map, tokenizer and tiktoken downloads, telemetry …).

    @pytest.fixture(autouse=True, scope="session")
    def _offline() -> Iterator[OfflineGuard]:
        with OfflineGuard() as guard:
            yield guard

Check ``guard.reached`` (names looked up) after each test.
"""

from __future__ import annotations

import socket
from types import TracebackType
from typing import Any

__all__ = ["LOOPBACK_NAMES", "OfflineGuard"]

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", ""})


class OfflineGuard:
    """Patches :func:`socket.getaddrinfo` while active; ``reached`` lists refused names."""

    def __init__(self) -> None:
        self.reached: list[str] = []
        self._real = socket.getaddrinfo

    def _lookup(self, host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and name not in LOOPBACK_NAMES:
            self.reached.append(str(name))
            raise OSError(f"a test tried to reach the internet ({name})")
        return self._real(host, *args, **kwargs)

    def __enter__(self) -> OfflineGuard:
        socket.getaddrinfo = self._lookup
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        socket.getaddrinfo = self._real
