"""One error hierarchy for the whole project.

Every message is written for the person who must fix the problem: it says what is wrong
and, where it can, how to fix it.
"""

from __future__ import annotations

__all__ = [
    "AipartnerupflowError",
    "ConfigurationError",
    "DatabaseLockedError",
    "ExecutorError",
    "ExecutorNotFoundError",
    "InputValidationError",
    "OutboundPolicyError",
    "ParameterError",
    "PermanentError",
    "PluginConflictError",
    "PluginError",
    "PluginImportError",
    "PluginVersionError",
    "RetryableError",
    "StaleLeaseError",
    "StorageError",
    "TaskAlreadyExistsError",
    "TaskCancelledError",
    "TaskConflictError",
    "TaskNotFoundError",
    "TaskTimeoutError",
    "TaskTreeValidationError",
    "ValidationError",
]


class AipartnerupflowError(Exception):
    """Base class of every error raised by aipartnerupflow."""


class ConfigurationError(AipartnerupflowError):
    """Settings, environment variables or installed extras are wrong or missing."""


class ValidationError(AipartnerupflowError, ValueError):
    """User input (task JSON, inputs, arguments) is invalid."""


class TaskTreeValidationError(ValidationError):
    """A task tree cannot be created or run; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        if len(self.problems) == 1:
            text = f"invalid task tree: {self.problems[0]}"
        else:
            text = "invalid task tree:\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(text)


class ParameterError(ValidationError):
    """The parameters of a task-service call are invalid; ``problems`` lists every reason."""

    def __init__(self, operation: str, problems: list[str]) -> None:
        self.operation = operation
        self.problems = list(problems)
        super().__init__(f"invalid parameters for {operation}: " + "; ".join(self.problems))


class InputValidationError(ValidationError):
    """Inputs do not match the executor's input schema."""


class PluginError(AipartnerupflowError):
    """A plugin (entry point) cannot be used."""


class ExecutorNotFoundError(PluginError, LookupError):
    """No executor is registered under the requested id."""

    def __init__(self, message: str, executor_id: str) -> None:
        super().__init__(message)
        self.executor_id = executor_id


class PluginConflictError(PluginError):
    """Two different targets claim the same plugin name."""


class PluginImportError(PluginError, ImportError):
    """A plugin's module failed to import."""


class PluginVersionError(PluginError):
    """A plugin was built for another range of aipartnerupflow-core versions."""


class ExecutorError(AipartnerupflowError):
    """An executor failed; the task that ran it is marked ``failed``."""


class PermanentError(ExecutorError):
    """A failure no retry can fix (bad input, auth refused, a 4xx answer): never retried.

    The task fails at once, whatever its ``retry.max_attempts`` says.
    """


class RetryableError(ExecutorError):
    """A failure a later attempt may fix (a 503, a dropped connection, a rate limit).

    The engine retries it within the task's ``retry`` settings; ``retry_after`` (seconds), when
    given, is the least delay before the next attempt (a server's ``Retry-After``).
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OutboundPolicyError(PermanentError):
    """The outbound network policy forbids a target (scheme, host or resolved address)."""


class TaskConflictError(AipartnerupflowError):
    """The request is valid but the task's state forbids it now (running, depended on...)."""


class TaskTimeoutError(ExecutorError, TimeoutError):
    """A task ran longer than its ``timeout_seconds``."""


class TaskCancelledError(AipartnerupflowError):
    """A task was cancelled."""


class StorageError(AipartnerupflowError):
    """The task store cannot be reached or refused an operation."""


class DatabaseLockedError(StorageError):
    """Another process holds the embedded DuckDB file."""


class TaskNotFoundError(StorageError, LookupError):
    """No task has the requested id."""


class TaskAlreadyExistsError(StorageError):
    """A task id given at creation is already stored."""


class StaleLeaseError(StorageError):
    """A write came from a worker whose lease on the task was lost (fencing)."""
