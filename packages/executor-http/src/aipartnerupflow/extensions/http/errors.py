"""Errors raised by ``rest_executor``; every one fails the task with a readable message.

Messages name the method and the URL with credentials removed, never a token, password or key.
"""

from __future__ import annotations

from aipartnerupflow.core.errors import ExecutorError

__all__ = [
    "HttpConnectionError",
    "HttpError",
    "HttpStatusError",
    "HttpTimeoutError",
    "OutboundPolicyError",
]


class HttpError(ExecutorError):
    """An HTTP request made by ``rest_executor`` failed.

    ``method`` and ``url`` (already redacted) say which request; ``attempts`` how many were made.
    """

    def __init__(self, message: str, *, method: str = "", url: str = "", attempts: int = 1) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        self.attempts = attempts


class HttpStatusError(HttpError):
    """The server answered with a status that ``expected_status`` does not accept."""

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        url: str = "",
        attempts: int = 1,
        status_code: int = 0,
        body_excerpt: str = "",
    ) -> None:
        super().__init__(message, method=method, url=url, attempts=attempts)
        self.status_code = status_code
        self.body_excerpt = body_excerpt


class HttpTimeoutError(HttpError):
    """Connecting, sending or receiving took longer than ``timeout``."""


class HttpConnectionError(HttpError):
    """The server could not be reached: DNS, refused connection, TLS failure, broken stream."""


class OutboundPolicyError(HttpError):
    """The outbound policy forbids the target (scheme, host or resolved address)."""
