"""Who is asking: the owner scope every :class:`TaskService` call is checked against."""

from __future__ import annotations

from dataclasses import dataclass

from aipartnerupflow.core.models import TaskModel

__all__ = ["TaskCaller"]


@dataclass(frozen=True, slots=True)
class TaskCaller:
    """A caller of the task service.

    ``user_id`` owns what the caller creates; ``is_admin`` sees and manages every owner's
    tasks. :meth:`system` is the local operator (the CLI on its own database file, scripts):
    an admin with no user id of its own.
    """

    user_id: str | None = None
    is_admin: bool = False

    @classmethod
    def system(cls) -> TaskCaller:
        """The local operator: sees every task."""
        return cls(user_id=None, is_admin=True)

    @classmethod
    def user(cls, user_id: str) -> TaskCaller:
        """An ordinary user who sees only their own tasks."""
        return cls(user_id=user_id, is_admin=False)

    def may_see(self, task: TaskModel) -> bool:
        """True when the task is the caller's (or the caller is an admin)."""
        return self.is_admin or task.user_id == self.user_id

    def owner_filter(self, requested: str | None) -> str | None:
        """The ``user_id`` filter for listing: admins choose (None = everyone); users get
        their own tasks whatever they ask for."""
        return requested if self.is_admin else self.user_id
