"""Task statuses."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["TaskStatus"]


class TaskStatus(StrEnum):
    """Status of one task; the values are the strings stored in the database."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @staticmethod
    def is_terminal(status: str) -> bool:
        """True for completed, failed and cancelled."""
        return status in _TERMINAL

    @staticmethod
    def is_active(status: str) -> bool:
        """True for pending and in_progress."""
        return status in _ACTIVE


_TERMINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})
_ACTIVE = frozenset({TaskStatus.PENDING, TaskStatus.IN_PROGRESS})
