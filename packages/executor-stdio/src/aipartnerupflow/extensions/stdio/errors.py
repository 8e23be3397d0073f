"""Errors of the stdio executors (in the project's one hierarchy)."""

from __future__ import annotations

from aipartnerupflow.core.errors import PermanentError

__all__ = ["CommandRefusedError"]


class CommandRefusedError(PermanentError):
    """The operator's settings forbid this command (program, directory or variable).

    Raised before anything runs; never retried. The message names the setting to change.
    """
