"""Executors and helpers for the cancellation, events/hooks, rerun and property tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Any, ClassVar, TypeVar

from aipartnerupflow.core.events import Subscription, TaskEvent
from aipartnerupflow.core.executor import ExecutableTask
from aipartnerupflow.core.registry import ExecutorRegistry
from aipartnerupflow.core.repository import TaskRepository

T = TypeVar("T")

#: Upper bound for "did it finish at all" (guards against hangs; never a timing assertion).
GUARD = 15.0


class Probe:
    """Shared, per-test record of what the helper executors did."""

    executions: ClassVar[dict[str, int]] = {}
    cancel_calls: ClassVar[list[str]] = []
    interrupted: ClassVar[list[str]] = []
    returned: ClassVar[list[str]] = []
    fail: ClassVar[set[str]] = set()
    peeks: ClassVar[dict[str, list[dict[str, Any]]]] = {}
    repo: ClassVar[TaskRepository | None] = None
    _started: ClassVar[dict[str, asyncio.Event]] = {}
    _release: ClassVar[dict[str, asyncio.Event]] = {}
    _failed: ClassVar[dict[str, asyncio.Event]] = {}

    @classmethod
    def reset(cls) -> None:
        cls.executions, cls.cancel_calls, cls.interrupted, cls.returned = {}, [], [], []
        cls.fail, cls.peeks, cls.repo = set(), {}, None
        cls._started, cls._release, cls._failed = {}, {}, {}

    @classmethod
    def started(cls, name: str) -> asyncio.Event:
        return cls._started.setdefault(name, asyncio.Event())

    @classmethod
    def release(cls, name: str) -> asyncio.Event:
        return cls._release.setdefault(name, asyncio.Event())

    @classmethod
    def failed(cls, name: str) -> asyncio.Event:
        return cls._failed.setdefault(name, asyncio.Event())

    @classmethod
    def count(cls, name: str) -> int:
        cls.executions[name] = cls.executions.get(name, 0) + 1
        return cls.executions[name]


def _name(executor: ExecutableTask) -> str:
    ctx = executor.context
    assert ctx is not None, "execute() must run with a task context"
    return ctx.name


class Blocker(ExecutableTask):
    """Waits for ``Probe.release(name)``; its ``cancel()`` only records the call."""

    id = "h_block"

    def __init__(self) -> None:
        self.task_name: str | None = None

    async def execute(self, inputs: dict[str, Any]) -> Any:
        name = self.task_name = _name(self)
        Probe.count(name)
        Probe.started(name).set()
        try:
            await Probe.release(name).wait()
        except asyncio.CancelledError:
            Probe.interrupted.append(name)
            raise
        Probe.returned.append(name)
        return {"released": name}

    async def cancel(self) -> None:
        Probe.cancel_calls.append(self.task_name or "?")


class Cooperative(ExecutableTask):
    """Stops by itself when ``cancel()`` is called (like a killed subprocess would):
    ``execute`` then returns normally, or raises when ``inputs["raise_on_stop"]``."""

    id = "h_coop"

    def __init__(self) -> None:
        self.task_name: str | None = None
        self.stop = asyncio.Event()

    async def execute(self, inputs: dict[str, Any]) -> Any:
        name = self.task_name = _name(self)
        Probe.count(name)
        Probe.started(name).set()
        await self.stop.wait()
        Probe.returned.append(name)
        if inputs.get("raise_on_stop"):
            raise RuntimeError(f"{name} was stopped")
        return {"stopped": name}

    async def cancel(self) -> None:
        Probe.cancel_calls.append(self.task_name or "?")
        self.stop.set()
        await asyncio.sleep(0)


class Counter(ExecutableTask):
    """Counts executions per task name; fails while the name is in ``Probe.fail``.

    With ``inputs["peek"]`` it first reads its own stored row through ``Probe.repo``.
    """

    id = "h_count"

    async def execute(self, inputs: dict[str, Any]) -> Any:
        ctx = self.context
        assert ctx is not None
        run = Probe.count(ctx.name)
        if inputs.get("peek") and Probe.repo is not None:
            row = await Probe.repo.get_task_by_id(ctx.task_id)
            assert row is not None
            Probe.peeks.setdefault(ctx.name, []).append(
                {"status": row.status, "result": row.result, "attempts": row.attempts}
            )
        if ctx.name in Probe.fail:
            raise RuntimeError(f"{ctx.name} failed on run {run}")
        return {"name": ctx.name, "run": run, "deps": sorted(ctx.dependency_results)}


class FailSignal(ExecutableTask):
    """Always fails, setting ``Probe.failed(name)`` just before raising."""

    id = "h_fail"

    async def execute(self, inputs: dict[str, Any]) -> Any:
        name = _name(self)
        Probe.count(name)
        Probe.failed(name).set()
        raise RuntimeError(f"{name} always fails")


class BadCancel(Blocker):
    """A blocker whose ``cancel()`` hook raises."""

    id = "h_bad_cancel"

    async def cancel(self) -> None:
        Probe.cancel_calls.append(self.task_name or "?")
        raise RuntimeError("cancel() broke")


HELPER_EXECUTORS: tuple[type[ExecutableTask], ...] = (
    Blocker,
    Cooperative,
    Counter,
    FailSignal,
    BadCancel,
)


def register_helpers(registry: ExecutorRegistry) -> None:
    for cls in HELPER_EXECUTORS:
        registry.register(cls)


def task(
    ident: str,
    method: str | None = None,
    *,
    parent: str | None = None,
    deps: Iterable[str | tuple[str, bool]] = (),
    **extra: Any,
) -> dict[str, Any]:
    """Task JSON; ``name`` equals ``id``; a dependency is an id or ``(id, required)``."""
    spec: dict[str, Any] = {"id": ident, "name": ident}
    if parent is not None:
        spec["parent_id"] = parent
    if method is not None:
        spec["schemas"] = {"method": method}
    dependencies = [
        {"id": d, "required": True} if isinstance(d, str) else {"id": d[0], "required": d[1]}
        for d in deps
    ]
    if dependencies:
        spec["dependencies"] = dependencies
    spec.update(extra)
    return spec


async def guard(aw: Awaitable[T], limit: float = GUARD) -> T:
    """Await with a generous upper bound, so a hang fails the test instead of blocking it."""
    return await asyncio.wait_for(aw, limit)


async def collect(sub: Subscription) -> list[TaskEvent]:
    return [event async for event in sub]


def by_task(events: Iterable[TaskEvent], task_id: str, kind: str | None = None) -> list[TaskEvent]:
    return [e for e in events if e.task_id == task_id and (kind is None or e.kind == kind)]
