"""``get_hook_repository()`` / ``get_hook_session()`` of aipartnerupflow 0.9, for hooks.

0.9 set them for the duration of ``distribute_task_tree``. Hooks here are plain callables
that get the task; these return the repository (store) of the live ``TaskManager`` of the
process. With several live managers there is no single answer: the error says to use the
manager's own ``task_repository``.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from aipartnerupflow.core.errors import AipartnerupflowError

if TYPE_CHECKING:
    from aipartnerupflow.core.manager import TaskManager
    from aipartnerupflow.core.repository import TaskRepository
    from aipartnerupflow.core.storage.base import TaskStorage

__all__ = ["get_hook_repository", "get_hook_session", "track_manager", "untrack_manager"]

_live: weakref.WeakSet[TaskManager] = weakref.WeakSet()


def track_manager(manager: TaskManager) -> None:
    """Called by ``TaskManager()``."""
    _live.add(manager)


def untrack_manager(manager: TaskManager) -> None:
    """Called by ``TaskManager.close()``."""
    _live.discard(manager)


def _manager() -> TaskManager:
    managers = list(_live)
    if len(managers) == 1:
        return managers[0]
    if not managers:
        raise AipartnerupflowError(
            "get_hook_repository(): no TaskManager is live in this process; create one "
            "(TaskManager(create_session())) and use its task_repository"
        )
    raise AipartnerupflowError(
        f"get_hook_repository(): {len(managers)} TaskManagers are live in this process; use "
        "the task_repository of the manager that runs the tree (task_manager.task_repository)"
    )


def get_hook_repository() -> TaskRepository:
    """The repository of the process's live ``TaskManager``."""
    return _manager().task_repository


def get_hook_session() -> TaskStorage:
    """The store of the process's live ``TaskManager`` (0.9 called it the session)."""
    return _manager().storage
