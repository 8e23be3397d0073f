"""Keeping secrets out of results, errors and logs."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

__all__ = [
    "HTTP_LOGGERS",
    "MASK",
    "SecretScrubber",
    "active_scrubber",
    "install_log_filter",
    "is_sensitive_header",
    "is_sensitive_param",
    "redact_url",
]

MASK = "***"

#: Secrets shorter than this are not searched for in text (they would mask innocent text).
MIN_SECRET_LENGTH = 4

_SENSITIVE_WORDS = re.compile(
    r"(auth(?!ors?(?:[^a-z]|$))|token|secret|passw|pwd|api[-_]?key|apikey|access[-_]?key|private[-_]?key|signature"
    r"|^sig$|^key$|credential|session|cookie|jwt|bearer)",
    re.IGNORECASE,
)


def is_sensitive_header(name: str) -> bool:
    """Whether a header's value is a credential (Authorization, Cookie, X-Api-Key, ...)."""
    return bool(_SENSITIVE_WORDS.search(name))


def is_sensitive_param(name: str) -> bool:
    """Whether a query parameter's value looks like a credential (token, api_key, sig, ...)."""
    return bool(_SENSITIVE_WORDS.search(name))


class SecretScrubber:
    """Replaces known secret values with ``***`` in strings and JSON-like structures."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        found = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH}
        # longest first, so a secret containing another is masked whole
        self.secrets: tuple[str, ...] = tuple(sorted(found, key=len, reverse=True))
        self.params: set[str] = set()

    def add(self, *secrets: str) -> None:
        """Add more secret values."""
        self.secrets = SecretScrubber([*self.secrets, *secrets]).secrets

    def text(self, value: str) -> str:
        """``value`` with every secret masked."""
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def data(self, value: Any) -> Any:
        """A copy of a JSON-like value with secrets masked in every string (keys included)."""
        if not self.secrets:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {
                self.text(k) if isinstance(k, str) else k: self.data(v) for k, v in value.items()
            }
        if isinstance(value, list):
            return [self.data(v) for v in value]
        return value

    def url(self, url: str) -> str:
        """``url`` without credentials: see :func:`redact_url`, then secrets masked."""
        return self.text(redact_url(url, extra_params=self.params))


def redact_url(url: str, *, extra_params: Iterable[str] = ()) -> str:
    """``url`` with the user-info removed and credential-like query values masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query:
        extra = {p.lower() for p in extra_params}
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_sensitive_param(k) or k.lower() in extra for k, _ in pairs):
            query = urlencode(
                [(k, MASK if is_sensitive_param(k) or k.lower() in extra else v) for k, v in pairs],
                safe="*",
                quote_via=quote,
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


_active: ContextVar[SecretScrubber | None] = ContextVar("apflow_http_scrubber", default=None)


def active_scrubber() -> SecretScrubber | None:
    """The scrubber of the request running in this context, if any."""
    return _active.get()


@contextmanager
def scrubbing(scrubber: SecretScrubber) -> Iterator[None]:
    """Make ``scrubber`` active for log records emitted in this context."""
    token = _active.set(scrubber)
    try:
        yield
    finally:
        _active.reset(token)


_URL_IN_TEXT = re.compile(r"https?://[^\s\"'<>]+")


class _RedactingFilter(logging.Filter):
    """Masks credentials in httpx/httpcore records: URLs, and the running request's secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        scrubber = _active.get()
        redacted = _URL_IN_TEXT.sub(
            lambda m: redact_url(m.group(0), extra_params=scrubber.params if scrubber else ()),
            message,
        )
        if scrubber is not None:
            redacted = scrubber.text(redacted)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


_filter_installed = False


#: Loggers of httpx and httpcore; httpx logs request URLs, httpcore response headers (DEBUG).
HTTP_LOGGERS = (
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)


def install_log_filter() -> None:
    """Attach the redacting filter to the httpx and httpcore loggers (once per process).

    A filter applies to records created on its own logger only, hence one per logger.
    """
    global _filter_installed
    if not _filter_installed:
        redacting = _RedactingFilter()
        for name in HTTP_LOGGERS:
            logging.getLogger(name).addFilter(redacting)
        _filter_installed = True
