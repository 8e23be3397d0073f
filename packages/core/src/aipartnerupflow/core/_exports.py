"""Where each public name lives; used for lazy re-exports (PEP 562)."""

from __future__ import annotations

import importlib
from typing import Any

EXPORTS: dict[str, str] = {
    # engine
    "TaskManager": "aipartnerupflow.core.manager",
    "TreeResult": "aipartnerupflow.core.results",
    "TaskOutcome": "aipartnerupflow.core.results",
    "TaskTreeNode": "aipartnerupflow.core.tree",
    "TaskStatus": "aipartnerupflow.core.status",
    "TaskModel": "aipartnerupflow.core.models",
    "TaskSpec": "aipartnerupflow.core.spec",
    "TaskCreator": "aipartnerupflow.core.compat.creator",
    # managing stored tasks
    "TaskService": "aipartnerupflow.core.service",
    "TaskCaller": "aipartnerupflow.core.service",
    "TaskLimits": "aipartnerupflow.core.limits",
    # executors
    "ExecutableTask": "aipartnerupflow.core.executor",
    "BaseTask": "aipartnerupflow.core.base_task",
    "TaskContext": "aipartnerupflow.core.context",
    "current_task_context": "aipartnerupflow.core.context",
    "executor_register": "aipartnerupflow.core.registry",
    "get_executor_registry": "aipartnerupflow.core.registry",
    "ExecutorRegistry": "aipartnerupflow.core.registry",
    "PluginGroup": "aipartnerupflow.core.registry",
    # storage
    "TaskStorage": "aipartnerupflow.core.storage",
    "TaskRepository": "aipartnerupflow.core.repository",
    "create_session": "aipartnerupflow.core.storage",
    "get_default_session": "aipartnerupflow.core.storage",
    "reset_default_session": "aipartnerupflow.core.storage",
    # events and hooks
    "TaskEvent": "aipartnerupflow.core.events",
    "EventKind": "aipartnerupflow.core.events",
    "StreamingCallbacks": "aipartnerupflow.core.events",
    "register_pre_hook": "aipartnerupflow.core.hooks",
    "register_post_hook": "aipartnerupflow.core.hooks",
    "register_task_tree_hook": "aipartnerupflow.core.hooks",
    "clear_hooks": "aipartnerupflow.core.hooks",
    "get_hook_repository": "aipartnerupflow.core.compat.hooks",
    "get_hook_session": "aipartnerupflow.core.compat.hooks",
    # errors
    "AipartnerupflowError": "aipartnerupflow.core.errors",
    "ConfigurationError": "aipartnerupflow.core.errors",
    "ValidationError": "aipartnerupflow.core.errors",
    "TaskTreeValidationError": "aipartnerupflow.core.errors",
    "InputValidationError": "aipartnerupflow.core.errors",
    "PluginError": "aipartnerupflow.core.errors",
    "ExecutorNotFoundError": "aipartnerupflow.core.errors",
    "PluginConflictError": "aipartnerupflow.core.errors",
    "PluginImportError": "aipartnerupflow.core.errors",
    "PluginVersionError": "aipartnerupflow.core.errors",
    "ExecutorError": "aipartnerupflow.core.errors",
    "TaskTimeoutError": "aipartnerupflow.core.errors",
    "TaskCancelledError": "aipartnerupflow.core.errors",
    "TaskConflictError": "aipartnerupflow.core.errors",
    "ParameterError": "aipartnerupflow.core.errors",
    "StorageError": "aipartnerupflow.core.errors",
    "DatabaseLockedError": "aipartnerupflow.core.errors",
    "TaskNotFoundError": "aipartnerupflow.core.errors",
    "TaskAlreadyExistsError": "aipartnerupflow.core.errors",
    "StaleLeaseError": "aipartnerupflow.core.errors",
}


def load(module_name: str, name: str) -> Any:
    """Import and return a public name, raising AttributeError like a module would."""
    target = EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
    return getattr(importlib.import_module(target), name)
