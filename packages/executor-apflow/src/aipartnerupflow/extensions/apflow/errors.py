"""Errors of ``apflow_api_executor``."""

from __future__ import annotations

from typing import Any

from aipartnerupflow.core.errors import ExecutorError

__all__ = ["RemoteRunError"]


class RemoteRunError(ExecutorError):
    """The remote run ended failed, rejected or cancelled; the message carries its error.

    ``details`` holds the remote ids and per-task statuses (secrets are scrubbed by the engine).
    Retrying (the task's retry policy) submits a new remote run for the new attempt.
    """

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = details or {}
