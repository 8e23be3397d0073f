"""Output caps: keep at most N bytes of a stream and say, in the result, what was cut."""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_MAX_OUTPUT_BYTES", "OutputCap", "cap_text", "effective_limit"]

#: What executors keep of one output stream by default (1 MiB).
DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024


def effective_limit(requested: Any, ceiling: int) -> int:
    """The limit for one task: what it asks for, never above the operator's ``ceiling``."""
    if isinstance(requested, int) and not isinstance(requested, bool) and requested >= 0:
        return min(requested, ceiling)
    return ceiling


class OutputCap:
    """Collects bytes up to ``limit``; counts (and drops) the rest.

    ``feed`` as chunks arrive; read :attr:`data`, :attr:`truncated`, :attr:`dropped`, or
    :meth:`text` and :meth:`report` for a result.
    """

    __slots__ = ("_buffer", "dropped", "limit")

    def __init__(self, limit: int = DEFAULT_MAX_OUTPUT_BYTES) -> None:
        if limit < 0:
            raise ValueError("an output limit must be zero or more bytes")
        self.limit = limit
        self.dropped = 0
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> bool:
        """Keep what fits of ``chunk``; returns False once the cap is reached."""
        room = self.limit - len(self._buffer)
        if len(chunk) <= room:
            self._buffer += chunk
        else:
            if room > 0:
                self._buffer += chunk[:room]
            self.dropped += len(chunk) - max(room, 0)
        return self.dropped == 0

    @property
    def data(self) -> bytes:
        """The bytes kept."""
        return bytes(self._buffer)

    @property
    def truncated(self) -> bool:
        """Whether anything was dropped."""
        return self.dropped > 0

    @property
    def total(self) -> int:
        """Bytes seen: kept plus dropped."""
        return len(self._buffer) + self.dropped

    def text(self, encoding: str = "utf-8") -> str:
        """The kept bytes decoded (undecodable bytes replaced; a cut character dropped)."""
        return self._buffer.decode(encoding, errors="replace")

    def report(self) -> dict[str, Any]:
        """``{"truncated", "size", "dropped_bytes", "limit"}`` for a result."""
        return {
            "truncated": self.truncated,
            "size": self.total,
            "dropped_bytes": self.dropped,
            "limit": self.limit,
        }


def cap_text(text: str, limit: int) -> tuple[str, int]:
    """``text`` cut to at most ``limit`` UTF-8 bytes, and how many bytes were dropped."""
    raw = text.encode("utf-8", errors="surrogatepass")
    if len(raw) <= limit:
        return text, 0
    return raw[:limit].decode("utf-8", errors="ignore"), len(raw) - limit
