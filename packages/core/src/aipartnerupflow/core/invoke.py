"""One attempt of one task: the executor call with every rule around it.

Shared by the in-process engine and the PostgreSQL workers, so both behave the same.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
from collections.abc import Callable
from typing import Any

from aipartnerupflow.core.context import TaskContext, _set_current
from aipartnerupflow.core.errors import (
    ConfigurationError,
    ExecutorError,
    PermanentError,
    PluginError,
    RetryableError,
    ValidationError,
)
from aipartnerupflow.core.executor import ExecutableTask
from aipartnerupflow.core.executors.metadata import gate_problem, params_problem
from aipartnerupflow.core.executors.resources import loop_resource
from aipartnerupflow.core.executors.secrets import SecretScrubber, install_log_scrubbing
from aipartnerupflow.core.hooks import get_pre_hooks, run_hook
from aipartnerupflow.core.inputs import (
    constructor_params,
    input_problem,
    merge_dependency_results,
)
from aipartnerupflow.core.models import TaskModel
from aipartnerupflow.core.registry import ExecutorRegistry
from aipartnerupflow.core.storable import encode_result

__all__ = [
    "CANCEL_GRACE_SECONDS",
    "FinalFailure",
    "RetryableFailure",
    "attempt_limit",
    "backoff_delay",
    "explicit_failure",
    "invoke",
]

log = logging.getLogger("aipartnerupflow.engine")
CANCEL_GRACE_SECONDS = 5.0
_PLAIN = frozenset({str, int, float, bool})


class RetryableFailure(Exception):
    """An attempt failed in a way a retry may fix (exception, timeout, reported failure).

    ``retry_after``: the least delay before the next attempt, when the executor said one.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FinalFailure(Exception):
    """An attempt failed in a way no retry can fix (unknown executor, bad params or inputs)."""


def explicit_failure(result: Any) -> str | None:
    """The reason when an executor returned a failure instead of raising."""
    if not isinstance(result, dict):
        return None
    if result.get("status") == "failed" or result.get("success") is False:
        reason = result.get("error") or result.get("message") or "the executor reported failure"
        return str(reason)
    return None


def attempt_limit(retry: Any) -> int:
    """``retry.max_attempts`` (1 when absent); FinalFailure for a value that is no count."""
    if retry is None:
        return 1
    if not isinstance(retry, dict):
        raise FinalFailure(
            f'retry must be an object such as {{"max_attempts": 3}}, not {type(retry).__name__}'
        )
    value = retry.get("max_attempts", 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FinalFailure(
            f"retry.max_attempts must be a whole number of at least 1, not {value!r}; "
            "fix the task's retry setting and run it again"
        )
    return value


def _seconds(retry: dict[str, Any], key: str, default: float) -> float:
    value = retry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise FinalFailure(f"retry.{key} must be a number of at least 0, not {value!r}")
    return min(float(value), 86_400.0)


def backoff_delay(retry: dict[str, Any], attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter before attempt ``attempt + 1``, at least
    ``retry_after`` (which :func:`invoke` keeps within ``max_backoff_seconds``)."""
    base = _seconds(retry, "backoff_seconds", 0.5)
    factor = _seconds(retry, "backoff_multiplier", 2.0)
    cap = _seconds(retry, "max_backoff_seconds", 60.0)
    try:
        delay: float = min(cap, base * factor ** min(attempt - 1, 64))
    except OverflowError:
        delay = cap
    if retry.get("jitter", True):
        delay *= random.uniform(0.5, 1.0)
    return max(delay, retry_after or 0.0)


def _max_backoff(task: TaskModel) -> float:
    retry = task.retry if isinstance(task.retry, dict) else {}
    try:
        return float(retry.get("max_backoff_seconds", 60.0))
    except (TypeError, ValueError):
        return 60.0


def _text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _failure(exc: BaseException, task: TaskModel, secrets: SecretScrubber) -> Exception:
    """The engine's failure for an executor's exception: permanent or retryable, scrubbed."""
    if isinstance(exc, PermanentError | ValidationError | ConfigurationError):
        return FinalFailure(secrets.text(str(exc) or type(exc).__name__))
    if isinstance(exc, RetryableError):
        text = secrets.text(str(exc) or type(exc).__name__)
        after = exc.retry_after
        if after is not None and after > _max_backoff(task):
            return FinalFailure(
                f"{text} (not retried: asked to wait {after:g}s, more than the task's "
                f"retry.max_backoff_seconds={_max_backoff(task):g})"
            )
        return RetryableFailure(text, after)
    if isinstance(exc, ExecutorError):
        return RetryableFailure(secrets.text(str(exc) or type(exc).__name__))
    return RetryableFailure(secrets.text(_text(exc)))


async def _limit(cls: type[ExecutableTask]) -> asyncio.Semaphore | None:
    """The running loop's semaphore for an executor class with a ``max_concurrency``."""
    limit = getattr(cls, "max_concurrency", None)
    if not isinstance(limit, int) or limit < 1:
        return None
    return await loop_resource(
        ("max_concurrency", cls), lambda: asyncio.Semaphore(limit), lambda _: None
    )


async def cancel_quietly(executor: ExecutableTask) -> None:
    """Call ``executor.cancel()``, bounded in time; failures are logged."""
    try:
        await asyncio.wait_for(executor.cancel(), CANCEL_GRACE_SECONDS)
    except Exception:
        log.warning("cancel() of executor %s failed", type(executor).__name__, exc_info=True)


async def invoke(
    registry: ExecutorRegistry,
    task: TaskModel,
    method: str,
    root_id: str,
    dep_results: dict[str, Any],
    *,
    on_executor: Callable[[ExecutableTask], None],
    on_progress: Callable[[float, str | None], None],
    cancel_requested: Callable[[], bool],
    save_inputs: Callable[[dict[str, Any]], None] | None = None,
    on_inputs: Callable[[dict[str, Any]], None] | None = None,
    interrupted_attempt: int | None = None,
) -> Any:
    """Run one attempt; returns the JSON-serialisable result or raises a failure.

    Pre-hooks run once dependency results are merged into the inputs, so they see them; the
    edits they make to ``task.inputs`` are kept in the task's stored inputs (through
    ``save_inputs``), the merged dependency results are not.
    """
    try:
        cls = registry.get(method)
    except PluginError as exc:
        raise FinalFailure(str(exc)) from None
    refused = gate_problem(cls, method) or params_problem(cls, method, task.params)
    if refused:
        raise FinalFailure(refused)
    try:
        executor = cls(**constructor_params(task.params))
    except TypeError as exc:
        raise FinalFailure(f"executor {method!r} does not accept these params: {exc}") from None
    except (PermanentError, ValidationError, ConfigurationError) as exc:
        raise FinalFailure(f"executor {method!r} refused its params: {exc}") from None
    on_executor(executor)
    inputs = merge_dependency_results(task.inputs, task.schemas, dep_results)
    hooks = get_pre_hooks()
    if hooks:
        inputs = await _run_pre_hooks(hooks, task, inputs, save_inputs)
    if on_inputs is not None:
        on_inputs(inputs)
    try:
        problem = input_problem(executor.get_input_schema(), inputs)
    except Exception as exc:
        raise FinalFailure(f"executor {method!r} has an invalid input schema: {exc}") from None
    if problem:
        raise FinalFailure(f"inputs do not match the input schema of {method!r}: {problem}")
    install_log_scrubbing()
    ctx = TaskContext(
        task_id=task.id,
        root_id=root_id,
        name=task.name,
        user_id=task.user_id,
        attempt=task.attempts,
        interrupted_attempt=interrupted_attempt,
        params=task.params,
        dependency_results=dep_results,
        _progress=on_progress,
    )
    secrets = ctx.secrets
    _set_current(ctx)
    timeout = task.timeout_seconds or getattr(cls, "default_timeout", None)
    semaphore = await _limit(cls)
    try:
        if semaphore is not None:
            await semaphore.acquire()
        try:
            if timeout:
                try:
                    result = await asyncio.wait_for(executor.execute(inputs), timeout)
                except TimeoutError:
                    if cancel_requested():
                        raise asyncio.CancelledError from None
                    await cancel_quietly(executor)
                    raise RetryableFailure(f"timed out after {timeout:g}s") from None
            else:
                result = await executor.execute(inputs)
        finally:
            if semaphore is not None:
                semaphore.release()
    except (RetryableFailure, FinalFailure, asyncio.CancelledError):
        raise
    except Exception as exc:
        raise _failure(exc, task, secrets) from None
    if secrets:
        result = secrets.data(result)
    reason = explicit_failure(result)
    if reason is not None:
        raise RetryableFailure(reason)
    if result is None or (type(result) in _PLAIN and type(result) is not str):
        if type(result) is float and not math.isfinite(result):
            raise FinalFailure(
                f"executor {method!r} returned a result that is not JSON-serialisable (float): "
                f"{result!r}, which JSON cannot hold"
            )
        return result
    _, problem = encode_result(result)
    if problem is not None:
        what = "is too large to store" if "bytes of JSON" in problem else "is not JSON-serialisable"
        raise FinalFailure(
            f"executor {method!r} returned a result that {what} ({type(result).__name__}): "
            f"{problem}"
        )
    return result


async def _run_pre_hooks(
    hooks: list[Callable[..., Any]],
    task: TaskModel,
    merged: dict[str, Any],
    save_inputs: Callable[[dict[str, Any]], None] | None,
) -> dict[str, Any]:
    """Run pre-hooks on the merged inputs; returns them as the hooks left them."""
    stored = task.inputs

    def text(value: Any) -> str:
        return json.dumps(value, sort_keys=True, default=str)

    seen = {k: text(v) for k, v in merged.items()}
    task.inputs = dict(merged)
    try:
        for hook in hooks:
            await run_hook(hook, task)
        edited = task.inputs if isinstance(task.inputs, dict) else dict(merged)
    finally:
        task.inputs = stored
    changed = {k: v for k, v in edited.items() if k not in seen or seen[k] != text(v)}
    removed = [k for k in seen if k not in edited]
    if changed or removed:
        before = json.dumps(stored, sort_keys=True, default=str)
        kept = {k: v for k, v in stored.items() if k not in removed}
        kept.update(changed)
        task.inputs = kept
        if save_inputs is not None and json.dumps(kept, sort_keys=True, default=str) != before:
            save_inputs(kept)
    return edited
