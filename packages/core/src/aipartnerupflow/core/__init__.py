"""aipartnerupflow core: the engine, the executor interface, storage and the plugin registry.

Names are imported on first access, so ``import aipartnerupflow.core`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aipartnerupflow.core._exports import load

if TYPE_CHECKING:
    from aipartnerupflow.core.base_task import (
        BaseTask as BaseTask,
    )
    from aipartnerupflow.core.compat.creator import (
        TaskCreator as TaskCreator,
    )
    from aipartnerupflow.core.compat.hooks import (
        get_hook_repository as get_hook_repository,
    )
    from aipartnerupflow.core.compat.hooks import (
        get_hook_session as get_hook_session,
    )
    from aipartnerupflow.core.context import (
        TaskContext as TaskContext,
    )
    from aipartnerupflow.core.context import (
        current_task_context as current_task_context,
    )
    from aipartnerupflow.core.errors import (
        AipartnerupflowError as AipartnerupflowError,
    )
    from aipartnerupflow.core.errors import (
        ConfigurationError as ConfigurationError,
    )
    from aipartnerupflow.core.errors import (
        DatabaseLockedError as DatabaseLockedError,
    )
    from aipartnerupflow.core.errors import (
        ExecutorError as ExecutorError,
    )
    from aipartnerupflow.core.errors import (
        ExecutorNotFoundError as ExecutorNotFoundError,
    )
    from aipartnerupflow.core.errors import (
        InputValidationError as InputValidationError,
    )
    from aipartnerupflow.core.errors import (
        ParameterError as ParameterError,
    )
    from aipartnerupflow.core.errors import (
        PluginConflictError as PluginConflictError,
    )
    from aipartnerupflow.core.errors import (
        PluginError as PluginError,
    )
    from aipartnerupflow.core.errors import (
        PluginImportError as PluginImportError,
    )
    from aipartnerupflow.core.errors import (
        PluginVersionError as PluginVersionError,
    )
    from aipartnerupflow.core.errors import (
        StaleLeaseError as StaleLeaseError,
    )
    from aipartnerupflow.core.errors import (
        StorageError as StorageError,
    )
    from aipartnerupflow.core.errors import (
        TaskAlreadyExistsError as TaskAlreadyExistsError,
    )
    from aipartnerupflow.core.errors import (
        TaskCancelledError as TaskCancelledError,
    )
    from aipartnerupflow.core.errors import (
        TaskConflictError as TaskConflictError,
    )
    from aipartnerupflow.core.errors import (
        TaskNotFoundError as TaskNotFoundError,
    )
    from aipartnerupflow.core.errors import (
        TaskTimeoutError as TaskTimeoutError,
    )
    from aipartnerupflow.core.errors import (
        TaskTreeValidationError as TaskTreeValidationError,
    )
    from aipartnerupflow.core.errors import (
        ValidationError as ValidationError,
    )
    from aipartnerupflow.core.events import (
        EventKind as EventKind,
    )
    from aipartnerupflow.core.events import (
        StreamingCallbacks as StreamingCallbacks,
    )
    from aipartnerupflow.core.events import (
        TaskEvent as TaskEvent,
    )
    from aipartnerupflow.core.executor import (
        ExecutableTask as ExecutableTask,
    )
    from aipartnerupflow.core.hooks import (
        clear_hooks as clear_hooks,
    )
    from aipartnerupflow.core.hooks import (
        register_post_hook as register_post_hook,
    )
    from aipartnerupflow.core.hooks import (
        register_pre_hook as register_pre_hook,
    )
    from aipartnerupflow.core.hooks import (
        register_task_tree_hook as register_task_tree_hook,
    )
    from aipartnerupflow.core.limits import (
        TaskLimits as TaskLimits,
    )
    from aipartnerupflow.core.manager import (
        TaskManager as TaskManager,
    )
    from aipartnerupflow.core.models import (
        TaskModel as TaskModel,
    )
    from aipartnerupflow.core.registry import (
        ExecutorRegistry as ExecutorRegistry,
    )
    from aipartnerupflow.core.registry import (
        PluginGroup as PluginGroup,
    )
    from aipartnerupflow.core.registry import (
        executor_register as executor_register,
    )
    from aipartnerupflow.core.registry import (
        get_executor_registry as get_executor_registry,
    )
    from aipartnerupflow.core.repository import (
        TaskRepository as TaskRepository,
    )
    from aipartnerupflow.core.results import (
        TaskOutcome as TaskOutcome,
    )
    from aipartnerupflow.core.results import (
        TreeResult as TreeResult,
    )
    from aipartnerupflow.core.service import (
        TaskCaller as TaskCaller,
    )
    from aipartnerupflow.core.service import (
        TaskService as TaskService,
    )
    from aipartnerupflow.core.spec import (
        TaskSpec as TaskSpec,
    )
    from aipartnerupflow.core.status import (
        TaskStatus as TaskStatus,
    )
    from aipartnerupflow.core.storage import (
        TaskStorage as TaskStorage,
    )
    from aipartnerupflow.core.storage import (
        create_session as create_session,
    )
    from aipartnerupflow.core.storage import (
        get_default_session as get_default_session,
    )
    from aipartnerupflow.core.storage import (
        reset_default_session as reset_default_session,
    )
    from aipartnerupflow.core.tree import (
        TaskTreeNode as TaskTreeNode,
    )

__all__ = [
    "AipartnerupflowError",
    "BaseTask",
    "ConfigurationError",
    "DatabaseLockedError",
    "EventKind",
    "ExecutableTask",
    "ExecutorError",
    "ExecutorNotFoundError",
    "ExecutorRegistry",
    "InputValidationError",
    "ParameterError",
    "PluginConflictError",
    "PluginError",
    "PluginGroup",
    "PluginImportError",
    "PluginVersionError",
    "StaleLeaseError",
    "StorageError",
    "StreamingCallbacks",
    "TaskAlreadyExistsError",
    "TaskCaller",
    "TaskCancelledError",
    "TaskConflictError",
    "TaskContext",
    "TaskCreator",
    "TaskEvent",
    "TaskLimits",
    "TaskManager",
    "TaskModel",
    "TaskNotFoundError",
    "TaskOutcome",
    "TaskRepository",
    "TaskService",
    "TaskSpec",
    "TaskStatus",
    "TaskStorage",
    "TaskTimeoutError",
    "TaskTreeNode",
    "TaskTreeValidationError",
    "TreeResult",
    "ValidationError",
    "clear_hooks",
    "create_session",
    "current_task_context",
    "executor_register",
    "get_default_session",
    "get_executor_registry",
    "get_hook_repository",
    "get_hook_session",
    "register_post_hook",
    "register_pre_hook",
    "register_task_tree_hook",
    "reset_default_session",
]


def __getattr__(name: str) -> Any:
    value = load(__name__, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
