"""Errors raised by ``rest_executor``; every one fails the task with a readable message.

Each is a :class:`~aipartnerupflow.core.errors.RetryableError` (the engine retries it within
the task's ``retry``) or a :class:`~aipartnerupflow.core.errors.PermanentError` (never
retried). Messages name the method and the URL with credentials removed, never a secret.
"""

from __future__ import annotations

from aipartnerupflow.core.errors import (
    ExecutorError,
    OutboundPolicyError,
    PermanentError,
    RetryableError,
)

__all__ = [
    "HttpConnectionError",
    "HttpError",
    "HttpRedirectError",
    "HttpStatusError",
    "HttpTimeoutError",
    "HttpTlsError",
    "OutboundPolicyError",
    "PermanentHttpStatusError",
    "RetryableHttpStatusError",
]


class HttpError(ExecutorError):
    """An HTTP request made by ``rest_executor`` failed.

    ``method`` and ``url`` (already redacted) say which request.
    """

    def __init__(self, message: str, *, method: str = "", url: str = "") -> None:
        super().__init__(message)
        self.method = method
        self.url = url


class HttpStatusError(HttpError):
    """The server answered with a status that ``expected_status`` does not accept.

    Raised as :class:`RetryableHttpStatusError` for a status in ``retryable_status`` (with the
    server's ``Retry-After`` as ``retry_after``), else as :class:`PermanentHttpStatusError`.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        url: str = "",
        status_code: int = 0,
        body_excerpt: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.status_code = status_code
        self.body_excerpt = body_excerpt
        self.retry_after = retry_after


class RetryableHttpStatusError(HttpStatusError, RetryableError):
    """A status a later attempt may fix (by default 429, 502, 503, 504)."""


class PermanentHttpStatusError(HttpStatusError, PermanentError):
    """A status no retry can fix (404, 401, 422 … and any status not listed as retryable)."""


class HttpTimeoutError(HttpError, RetryableError):
    """Connecting, sending or receiving took longer than ``timeout``."""


class HttpConnectionError(HttpError, RetryableError):
    """The server could not be reached: DNS, refused connection, broken stream."""


class HttpTlsError(HttpError, PermanentError):
    """The server's TLS certificate is not trusted (a retry cannot change that)."""


class HttpRedirectError(HttpError, PermanentError):
    """The server redirected more often than ``max_redirects`` allows."""
