"""Errors of ``ssh_executor``, in the core's hierarchy; every one fails the task.

Messages name the user, host and port and say what to fix; they never contain a password,
private key or passphrase.
"""

from __future__ import annotations

from typing import Any

from aipartnerupflow.core.errors import PermanentError, RetryableError

__all__ = [
    "SshAuthError",
    "SshConnectionError",
    "SshExitError",
    "SshHostKeyError",
    "SshTimeoutError",
]


class SshAuthError(PermanentError):
    """The server refused the credentials, or a key could not be read."""


class SshHostKeyError(PermanentError):
    """The server's host key is unknown, or differs from the trusted one (never retried)."""


class SshConnectionError(RetryableError):
    """The server could not be reached, or the connection broke."""


class SshTimeoutError(RetryableError):
    """Connecting, logging in or running the command took longer than allowed."""


class SshExitError(PermanentError):
    """The command exited with a status ``allowed_exit_codes`` does not accept.

    ``result`` holds what the command printed (capped), as the task result would have.
    """

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        super().__init__(message)
        self.result = result
