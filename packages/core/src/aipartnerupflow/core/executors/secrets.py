"""Keeping secrets out of results, errors, events and logs.

An executor registers each secret value it handles with :func:`add_secret` (or
``ctx.add_secret(value)`` on its :class:`~aipartnerupflow.core.context.TaskContext`). The engine
then replaces it with ``***`` in the task's result and error before anything is stored,
streamed or logged, and every log record created while the task runs is scrubbed too (a log
record factory, so records of any library's logger are covered).

A secret may also be read from an environment variable named in task inputs
(``token_env: "MY_TOKEN"``), but only from variables the operator allow-listed
(:func:`read_secret_env`): task JSON must not be able to read the server's environment.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from aipartnerupflow.core.errors import ConfigurationError, InputValidationError

__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "SecretScrubber",
    "active_scrubber",
    "add_secret",
    "install_log_scrubbing",
    "is_sensitive_name",
    "read_secret_env",
    "redact_url",
    "scrubbing",
    "wrap_log_records",
]

MASK = "***"

#: Secrets shorter than this are not searched for in text (they would mask innocent text).
MIN_SECRET_LENGTH = 4

_SENSITIVE_WORDS = re.compile(
    r"(auth(?!ors?(?:[^a-z]|$))|token|secret|passw|pwd|api[-_]?key|apikey|access[-_]?key"
    r"|private[-_]?key|signature|^sig$|^key$|credential|session|cookie|jwt|bearer|passphrase)",
    re.IGNORECASE,
)


def is_sensitive_name(name: str) -> bool:
    """Whether a header, parameter or field name holds a credential (Authorization, token…)."""
    return bool(_SENSITIVE_WORDS.search(name))


class SecretScrubber:
    """Replaces known secret values with ``***`` in strings and JSON-like structures."""

    __slots__ = ("params", "secrets")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: tuple[str, ...] = ()
        #: Query-parameter names whose values are masked in URLs (besides credential-like ones).
        self.params: set[str] = set()
        if secrets:  # every task's context makes one, almost always empty
            self.add(*secrets)

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def add(self, *secrets: Any) -> None:
        """Add secret values (non-strings and values shorter than 4 characters are ignored)."""
        found = set(self.secrets)
        found.update(s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH)
        # longest first, so a secret containing another is masked whole
        self.secrets = tuple(sorted(found, key=len, reverse=True))

    def text(self, value: str) -> str:
        """``value`` with every secret masked."""
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def data(self, value: Any) -> Any:
        """A copy of a JSON-like value with secrets masked in every string (keys included).

        Walks iteratively, so a deeply nested value cannot exhaust the stack.
        """
        if not self.secrets:
            return value
        if isinstance(value, str):
            return self.text(value)
        if not isinstance(value, dict | list):
            return value
        root: list[Any] = [None]
        stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]
        while stack:
            item, parent, key = stack.pop()
            if isinstance(item, str):
                parent[key] = self.text(item)
            elif isinstance(item, dict):
                copy: dict[Any, Any] = {}
                parent[key] = copy
                for k, v in item.items():
                    new_key = self.text(k) if isinstance(k, str) else k
                    copy[new_key] = None
                    stack.append((v, copy, new_key))
            elif isinstance(item, list):
                seq: list[Any] = [None] * len(item)
                parent[key] = seq
                stack.extend((v, seq, i) for i, v in enumerate(item))
            else:
                parent[key] = item
        return root[0]

    def url(self, url: str) -> str:
        """``url`` without credentials (see :func:`redact_url`), then secrets masked."""
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
        if any(is_sensitive_name(k) or k.lower() in extra for k, _ in pairs):
            query = urlencode(
                [(k, MASK if is_sensitive_name(k) or k.lower() in extra else v) for k, v in pairs],
                safe="*",
                quote_via=quote,
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


_active: ContextVar[SecretScrubber | None] = ContextVar("apflow_secret_scrubber", default=None)


def active_scrubber() -> SecretScrubber | None:
    """The scrubber of this context: an explicit :func:`scrubbing` scope, else the running
    task's (``ctx.secrets``), else None."""
    scrubber = _active.get()
    if scrubber is not None:
        return scrubber
    from aipartnerupflow.core.context import current_task_context

    ctx = current_task_context()
    return ctx.secrets if ctx is not None else None


def add_secret(*values: Any) -> None:
    """Register secret values with the running task (a no-op outside a task)."""
    scrubber = active_scrubber()
    if scrubber is not None:
        scrubber.add(*values)


@contextmanager
def scrubbing(scrubber: SecretScrubber) -> Iterator[SecretScrubber]:
    """Make ``scrubber`` the active one in this context (log records, :func:`add_secret`)."""
    token = _active.set(scrubber)
    try:
        yield scrubber
    finally:
        _active.reset(token)


def read_secret_env(
    env_name: Any, *, allowed: Iterable[str], setting: str, field: str = "secret"
) -> str:
    """The value of environment variable ``env_name``, registered as a secret.

    Only names in ``allowed`` (the operator's allow-list, from the setting named ``setting``)
    may be read; ``field`` names the input in messages. Messages never show the value.
    """
    if not isinstance(env_name, str) or not env_name:
        raise InputValidationError(f"input {field!r} must name an environment variable")
    if env_name not in set(allowed):
        raise InputValidationError(
            f"input {field!r}: environment variable {env_name!r} may not be read; the operator "
            f"must list it in {setting}"
        )
    value = os.environ.get(env_name)
    if not value:
        raise ConfigurationError(f"environment variable {env_name!r} ({field}) is not set")
    add_secret(value)
    return value


# -- log records -------------------------------------------------------------------------------

_installed = False


def wrap_log_records(hook: Callable[[logging.LogRecord], None]) -> None:
    """Run ``hook`` on every log record created from now on, before any handler sees it.

    A record factory rather than a filter: filters apply only to records of the logger they
    are attached to, the factory sees every record of every library. Each call adds a hook;
    callers install theirs once.
    """
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        hook(record)
        return record

    logging.setLogRecordFactory(factory)


def install_log_scrubbing() -> None:
    """Scrub the active secrets from every log record created from now on (once per
    process)."""
    global _installed
    if _installed:
        return

    def scrub(record: logging.LogRecord) -> None:
        scrubber = active_scrubber()
        if scrubber:
            _scrub_record(record, scrubber)

    wrap_log_records(scrub)
    _installed = True


def _scrub_record(record: logging.LogRecord, scrubber: SecretScrubber) -> None:
    try:
        message = record.getMessage()
    except Exception:
        message = str(record.msg)
    clean = scrubber.text(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and record.exc_info[1] is not None:
        text = logging.Formatter().formatException(record.exc_info)
        record.exc_text = scrubber.text(text)
        if record.exc_text != text:
            record.exc_info = None  # formatters would format the unscrubbed traceback again
    if record.stack_info:
        record.stack_info = scrubber.text(record.stack_info)
