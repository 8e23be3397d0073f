"""The engine's side of the kit: permanent vs retryable errors, the opt-in gate, params schemas."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

import pytest

from aipartnerupflow.core.errors import (
    InputValidationError,
    OutboundPolicyError,
    PermanentError,
    RetryableError,
    TaskTreeValidationError,
)
from aipartnerupflow.core.executor import ExecutableTask
from aipartnerupflow.core.executors import ENABLE_SETTING, executor_info
from aipartnerupflow.core.manager import TaskManager
from aipartnerupflow.core.registry import ExecutorRegistry
from aipartnerupflow.core.settings import reload_settings
from aipartnerupflow.core.storage import create_session


class Attempts:
    starts: ClassVar[list[float]] = []
    ends: ClassVar[list[float]] = []

    @classmethod
    def reset(cls) -> None:
        cls.starts, cls.ends = [], []


class Fails(ExecutableTask):
    """Raises the error its inputs name."""

    id = "kit_fails"

    async def execute(self, inputs: dict[str, Any]) -> Any:
        Attempts.starts.append(time.monotonic())
        ctx = self.context
        assert ctx is not None
        try:
            kind = inputs["kind"]
            if kind == "permanent":
                raise PermanentError("the API refused the credentials (401)")
            if kind == "policy":
                raise OutboundPolicyError("host denied")
            if kind == "input":
                raise InputValidationError("input 'auth' must be an object")
            if kind == "retryable" and ctx.attempt < int(inputs.get("succeed_on", 99)):
                raise RetryableError("503 from upstream", retry_after=inputs.get("after"))
            if kind == "plain" and ctx.attempt < int(inputs.get("succeed_on", 99)):
                raise ConnectionError("dropped")
            return {"attempt": ctx.attempt}
        finally:
            Attempts.ends.append(time.monotonic())


class Dangerous(ExecutableTask):
    id = "kit_dangerous"
    dangerous = True

    async def execute(self, inputs: dict[str, Any]) -> Any:
        return {"ran": True}


class Configured(ExecutableTask):
    id = "kit_configured"
    params_schema: ClassVar[dict[str, Any] | None] = {
        "type": "object",
        "properties": {"size": {"type": "integer", "minimum": 1}},
        "required": ["size"],
        "additionalProperties": False,
    }
    input_schema: ClassVar[dict[str, Any] | None] = {
        "type": "object",
        "properties": {"text": {"type": "string"}},
    }
    max_concurrency = 2
    default_timeout = 30.0
    tags: ClassVar[list[str]] = ["kit"]

    def __init__(self, size: int) -> None:
        self.size = size

    async def execute(self, inputs: dict[str, Any]) -> Any:
        return {"size": self.size}


@pytest.fixture
def clean_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.delenv(ENABLE_SETTING, raising=False)
    reload_settings()
    yield monkeypatch
    reload_settings()


@pytest.fixture
async def manager(clean_settings: pytest.MonkeyPatch) -> AsyncIterator[TaskManager]:
    Attempts.reset()
    registry = ExecutorRegistry()
    for cls in (Fails, Dangerous, Configured):
        registry.register(cls)
    tm = TaskManager(create_session("duckdb:///:memory:"), registry=registry)
    yield tm
    await tm.close()


def _task(method: str, inputs: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": "t", "name": "t", "schemas": {"method": method}, "inputs": inputs or {}, **extra}


RETRY3 = {"max_attempts": 3, "backoff_seconds": 0.01, "jitter": False}


@pytest.mark.parametrize("kind", ["permanent", "policy", "input"])
async def test_permanent_errors_run_once_despite_retries(manager: TaskManager, kind: str) -> None:
    result = await manager.run_tasks([_task("kit_fails", {"kind": kind}, retry=RETRY3)])
    outcome = result.task("t")
    assert outcome.status == "failed"
    assert len(Attempts.starts) == 1
    assert outcome.attempts == 1


async def test_retryable_error_is_retried_and_waits_retry_after(manager: TaskManager) -> None:
    inputs = {"kind": "retryable", "succeed_on": 3, "after": 0.3}
    result = await manager.run_tasks([_task("kit_fails", inputs, retry=RETRY3)])
    outcome = result.task("t")
    assert outcome.status == "completed", outcome.error
    assert outcome.result == {"attempt": 3}
    assert len(Attempts.starts) == 3
    for end, start in zip(Attempts.ends, Attempts.starts[1:], strict=False):
        assert start - end >= 0.3  # never earlier than the server asked


async def test_retryable_error_fails_after_the_last_attempt(manager: TaskManager) -> None:
    result = await manager.run_tasks([_task("kit_fails", {"kind": "retryable"}, retry=RETRY3)])
    assert result.task("t").status == "failed"
    assert "503 from upstream" in (result.task("t").error or "")
    assert len(Attempts.starts) == 3


async def test_retry_after_beyond_max_backoff_is_not_retried(manager: TaskManager) -> None:
    retry = {**RETRY3, "max_backoff_seconds": 1}
    inputs = {"kind": "retryable", "after": 3600}
    result = await manager.run_tasks([_task("kit_fails", inputs, retry=retry)])
    assert result.task("t").status == "failed"
    assert "max_backoff_seconds" in (result.task("t").error or "")
    assert len(Attempts.starts) == 1


async def test_plain_exceptions_keep_being_retried(manager: TaskManager) -> None:
    inputs = {"kind": "plain", "succeed_on": 2}
    result = await manager.run_tasks([_task("kit_fails", inputs, retry=RETRY3)])
    assert result.task("t").status == "completed"
    assert len(Attempts.starts) == 2


# -- the opt-in gate ------------------------------------------------------------------------


async def test_dangerous_executor_is_refused_at_creation(manager: TaskManager) -> None:
    with pytest.raises(TaskTreeValidationError) as refused:
        await manager.run_tasks([_task("kit_dangerous")])
    message = str(refused.value)
    assert ENABLE_SETTING in message
    assert "kit_dangerous" in message
    assert await manager.storage.get_task("t") is None  # nothing written


async def test_dangerous_executor_in_a_bigger_tree_writes_nothing(manager: TaskManager) -> None:
    tree = [
        {"id": "root", "name": "root", "schemas": {"method": "kit_fails"}, "inputs": {}},
        {**_task("kit_dangerous"), "parent_id": "root"},
    ]
    with pytest.raises(TaskTreeValidationError, match=ENABLE_SETTING):
        await manager.run_tasks(tree)
    assert await manager.storage.get_task("root") is None


@pytest.mark.parametrize("value", ["kit_dangerous", "other, kit_dangerous", " kit_dangerous "])
async def test_dangerous_executor_runs_once_enabled(
    manager: TaskManager, clean_settings: pytest.MonkeyPatch, value: str
) -> None:
    clean_settings.setenv(ENABLE_SETTING, value)
    reload_settings()
    result = await manager.run_tasks([_task("kit_dangerous")])
    assert result.task("t").status == "completed"
    assert result.task("t").result == {"ran": True}


async def test_enabling_another_executor_does_not_enable_this_one(
    manager: TaskManager, clean_settings: pytest.MonkeyPatch
) -> None:
    clean_settings.setenv(ENABLE_SETTING, "kit_dangerous_not")
    reload_settings()
    with pytest.raises(TaskTreeValidationError, match=ENABLE_SETTING):
        await manager.run_tasks([_task("kit_dangerous")])


# -- params schema --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({}, ["params do not match", "kit_configured", "size"]),
        ({"size": 0}, ["param 'size'", "at least 1"]),
        ({"size": "3"}, ["size"]),
        ({"size": 3, "colour": "red"}, ["colour"]),
    ],
)
async def test_params_violations_are_clear_validation_errors(
    manager: TaskManager, params: dict[str, Any], words: list[str]
) -> None:
    with pytest.raises(TaskTreeValidationError) as refused:
        await manager.run_tasks([_task("kit_configured", params=params)])
    message = str(refused.value)
    assert "TypeError" not in message
    for word in words:
        assert word in message
    assert await manager.storage.get_task("t") is None


async def test_valid_params_reach_the_constructor(manager: TaskManager) -> None:
    result = await manager.run_tasks([_task("kit_configured", params={"size": 4})])
    assert result.task("t").result == {"size": 4}


def test_metadata_is_read_from_the_class_without_an_instance() -> None:
    info = executor_info(Configured)
    assert info.params_schema == Configured.params_schema
    assert info.input_schema == Configured.input_schema
    assert (info.max_concurrency, info.default_timeout, info.tags) == (2, 30.0, ["kit"])
    assert info.schema_note is None
    assert executor_info(Dangerous).dangerous is True
    assert executor_info(Fails).dangerous is False
