"""aipartnerupflow core: the engine, the executor interface, storage and the plugin registry.

Names are imported on first access, so ``import aipartnerupflow.core`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aipartnerupflow.core._exports import EXPORTS, load

if TYPE_CHECKING:
    from aipartnerupflow.core.base_task import BaseTask
    from aipartnerupflow.core.context import TaskContext, current_task_context
    from aipartnerupflow.core.errors import (
        AipartnerupflowError,
        ConfigurationError,
        DatabaseLockedError,
        ExecutorError,
        ExecutorNotFoundError,
        InputValidationError,
        PluginConflictError,
        PluginError,
        PluginImportError,
        PluginVersionError,
        StaleLeaseError,
        StorageError,
        TaskAlreadyExistsError,
        TaskCancelledError,
        TaskNotFoundError,
        TaskTimeoutError,
        TaskTreeValidationError,
        ValidationError,
    )
    from aipartnerupflow.core.events import EventKind, StreamingCallbacks, TaskEvent
    from aipartnerupflow.core.executor import ExecutableTask
    from aipartnerupflow.core.hooks import (
        clear_hooks,
        register_post_hook,
        register_pre_hook,
        register_task_tree_hook,
    )
    from aipartnerupflow.core.manager import TaskManager
    from aipartnerupflow.core.models import TaskModel
    from aipartnerupflow.core.registry import (
        ExecutorRegistry,
        PluginGroup,
        executor_register,
        get_executor_registry,
    )
    from aipartnerupflow.core.repository import TaskRepository
    from aipartnerupflow.core.results import TaskOutcome, TreeResult
    from aipartnerupflow.core.spec import TaskSpec
    from aipartnerupflow.core.status import TaskStatus
    from aipartnerupflow.core.storage import (
        TaskStorage,
        create_session,
        get_default_session,
        reset_default_session,
    )
    from aipartnerupflow.core.tree import TaskTreeNode

__all__ = sorted(EXPORTS)


def __getattr__(name: str) -> Any:
    value = load(__name__, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
