"""Property test: random task trees with random dependencies, priorities, failures and retries.

Every example runs a fresh tree (fresh ids) in one in-memory store, with a fresh TaskManager
and a random ``max_concurrency``. One logical clock orders executor starts/ends and the
engine's terminal ``task_status`` events (a sync listener sees them at the moment they
happen), so the checks are about order, never about time.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aipartnerupflow.core.events import EventKind, TaskEvent
from aipartnerupflow.core.executor import ExecutableTask
from aipartnerupflow.core.hooks import clear_hooks
from aipartnerupflow.core.manager import TaskManager
from aipartnerupflow.core.registry import ExecutorRegistry
from aipartnerupflow.core.results import TreeResult
from aipartnerupflow.core.status import TaskStatus
from aipartnerupflow.core.storage import create_session
from aipartnerupflow.core.storage.base import TaskStorage

COMPLETED = TaskStatus.COMPLETED.value
FAILED = TaskStatus.FAILED.value
CANCELLED = TaskStatus.CANCELLED.value
TERMINAL = {COMPLETED, FAILED, TaskStatus.CANCELLED.value}


@dataclass
class Trace:
    clock: int = 0
    starts: list[tuple[str, int, int]] = field(default_factory=list)  # (id, attempt, tick)
    ends: list[tuple[str, int, int]] = field(default_factory=list)
    terminal: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # id -> [(st, tick)]
    inputs: dict[str, set[str]] = field(default_factory=dict)
    running: int = 0
    peak: int = 0
    # a cancellation planned for the test with one: cancel_target when the n-th start happens
    manager: TaskManager | None = None
    cancel_at: int = 0
    cancel_target: str = ""
    cancel_job: asyncio.Task[list[str]] | None = None

    def tick(self) -> int:
        self.clock += 1
        return self.clock

    def on_event(self, event: TaskEvent) -> None:
        if event.kind == EventKind.TASK_STATUS and event.status in TERMINAL:
            self.terminal.setdefault(event.task_id, []).append((event.status, self.tick()))


TRACE = Trace()


class Recording(ExecutableTask):
    """Records its start and end on the shared clock; fails as ``inputs["mode"]`` says."""

    id = "prop_recording"

    async def execute(self, inputs: dict[str, Any]) -> Any:
        ctx = self.context
        assert ctx is not None
        trace = TRACE
        trace.starts.append((ctx.task_id, ctx.attempt, trace.tick()))
        if trace.manager is not None and len(trace.starts) == trace.cancel_at:
            trace.cancel_job = asyncio.ensure_future(trace.manager.cancel_task(trace.cancel_target))
        trace.inputs[ctx.task_id] = set(inputs)
        trace.running += 1
        trace.peak = max(trace.peak, trace.running)
        try:
            await asyncio.sleep(inputs["sleep"])
        finally:
            trace.running -= 1
        trace.ends.append((ctx.task_id, ctx.attempt, trace.tick()))
        mode = inputs["mode"]
        if mode == "always" or (mode == "first" and ctx.attempt == 1):
            raise RuntimeError(f"{ctx.name} fails on attempt {ctx.attempt}")
        return {"id": ctx.task_id}


@dataclass(frozen=True)
class Spec:
    parent: int | None
    deps: tuple[tuple[int, bool], ...]
    priority: int
    mode: str  # "ok" | "always" | "first" (fails attempt 1 only)
    attempts: int
    sleep_ms: int
    grouping: bool  # no executor (only tasks with children): completes when its deps allow


@st.composite
def dags(draw: st.DrawFn) -> list[Spec]:
    n = draw(st.integers(5, 40))
    specs = []
    for i in range(n):
        parent = None if i == 0 else draw(st.integers(0, i - 1))
        deps: tuple[tuple[int, bool], ...] = ()
        if i:
            deps = tuple(
                draw(
                    st.lists(
                        st.tuples(st.integers(0, i - 1), st.booleans()),
                        max_size=min(i, 4),
                        unique_by=lambda d: d[0],
                    )
                )
            )
        specs.append(
            Spec(
                parent=parent,
                deps=deps,
                priority=draw(st.integers(0, 3)),
                mode=draw(st.sampled_from(["ok"] * 6 + ["always", "first"])),
                attempts=draw(st.integers(1, 2)),
                sleep_ms=draw(st.integers(0, 5)),
                grouping=draw(st.integers(0, 9)) == 0,
            )
        )
    parents = {s.parent for s in specs}
    return [replace(s, grouping=s.grouping and i in parents) for i, s in enumerate(specs)]


def to_json(specs: list[Spec], ids: list[str]) -> list[dict[str, Any]]:
    tasks = []
    for i, spec in enumerate(specs):
        item: dict[str, Any] = {
            "id": ids[i],
            "name": f"t{i}",
            "priority": spec.priority,
            "dependencies": [{"id": ids[d], "required": req} for d, req in spec.deps],
        }
        if spec.parent is not None:
            item["parent_id"] = ids[spec.parent]
        if not spec.grouping:
            item["schemas"] = {"method": Recording.id}
            item["inputs"] = {"mode": spec.mode, "sleep": spec.sleep_ms / 1000}
            item["retry"] = {"max_attempts": spec.attempts, "backoff_seconds": 0.001}
        tasks.append(item)
    return tasks


async def run_example(
    store: TaskStorage,
    registry: ExecutorRegistry,
    specs: list[Spec],
    ids: list[str],
    max_concurrency: int,
    *,
    cancel: bool = False,
) -> tuple[TreeResult, dict[str, str]]:
    tm = TaskManager(store, registry=registry, max_concurrency=max_concurrency)
    tm.add_listener(TRACE.on_event)
    if cancel:
        TRACE.manager = tm
    try:
        result = await asyncio.wait_for(tm.run_tasks(to_json(specs, ids)), 60)
        rows = await tm.task_repository.get_all_tasks_in_tree(ids[0])
        assert all(r.lease_owner is None for r in rows)
    finally:
        await tm.close(close_storage=False)
    return result, {r.id: r.status for r in rows}


@pytest.fixture(scope="module")
def shared_store() -> Iterator[TaskStorage]:
    store = create_session("duckdb:///:memory:")
    yield store
    store.close_sync()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def prop_registry() -> ExecutorRegistry:
    registry = ExecutorRegistry()
    registry.register(Recording)
    return registry


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(specs=dags(), max_concurrency=st.integers(1, 8))
def test_random_dags(
    shared_store: TaskStorage,
    prop_registry: ExecutorRegistry,
    specs: list[Spec],
    max_concurrency: int,
) -> None:
    global TRACE
    TRACE = Trace()
    clear_hooks()
    prefix = uuid.uuid4().hex[:8]
    ids = [f"{prefix}-{i}" for i in range(len(specs))]
    index = {task_id: i for i, task_id in enumerate(ids)}

    result, stored = asyncio.run(
        run_example(shared_store, prop_registry, specs, ids, max_concurrency)
    )
    trace = TRACE
    outcome = {o.id: o for o in result.tasks}
    assert set(outcome) == set(ids)

    # every task ends, once, and storage agrees with the result
    for task_id in ids:
        assert outcome[task_id].status in TERMINAL, (task_id, outcome[task_id].status)
        ends = trace.terminal.get(task_id, [])
        assert len(ends) == 1, (task_id, ends)
        assert ends[0][0] == outcome[task_id].status
    assert stored == {i: o.status for i, o in outcome.items()}

    # each task runs at most once per attempt, attempts 1..n in order, counted in the result
    attempts_seen: dict[str, list[int]] = {}
    for task_id, attempt, _ in trace.starts:
        attempts_seen.setdefault(task_id, []).append(attempt)
    for task_id in ids:
        seen = attempts_seen.get(task_id, [])
        assert seen == list(range(1, len(seen) + 1)), (task_id, seen)
        assert outcome[task_id].attempts == len(seen), task_id
        assert len(seen) <= specs[index[task_id]].attempts
    assert sorted((i, a) for i, a, _ in trace.ends) == sorted((i, a) for i, a, _ in trace.starts)

    ended_at = {task_id: ends[0][1] for task_id, ends in trace.terminal.items()}
    first_start = {}
    for task_id, attempt, tick in trace.starts:
        if attempt == 1:
            first_start[task_id] = tick

    for task_id in ids:
        spec = specs[index[task_id]]
        status = outcome[task_id].status
        failed_required = [
            ids[d] for d, req in spec.deps if req and outcome[ids[d]].status != COMPLETED
        ]
        if task_id in first_start:
            start = first_start[task_id]
            # no task starts before its dependencies ended; required ones completed
            for d, req in spec.deps:
                dep_id = ids[d]
                assert ended_at[dep_id] < start, (task_id, dep_id)
                if req:
                    assert outcome[dep_id].status == COMPLETED, (task_id, dep_id)
            # results of completed dependencies are merged into the inputs
            completed = {ids[d] for d, _ in spec.deps if outcome[ids[d]].status == COMPLETED}
            assert completed <= trace.inputs[task_id], task_id
        if failed_required:
            # a task whose required dependency failed is failed, never ran, names it
            assert status == FAILED, task_id
            assert task_id not in first_start, task_id
            error = outcome[task_id].error or ""
            assert any(dep_id in error for dep_id in failed_required), (task_id, error)
        elif spec.grouping:
            assert status == COMPLETED, task_id
            assert task_id not in first_start, task_id
        else:
            assert task_id in first_start, task_id
            should_pass = spec.mode == "ok" or (spec.mode == "first" and spec.attempts >= 2)
            assert status == (COMPLETED if should_pass else FAILED), (task_id, status)
            if status == FAILED:
                assert "fails on attempt" in (outcome[task_id].error or ""), task_id

    # final status: completed iff every task completed (no cancellation here: else failed)
    every = all(o.status == COMPLETED for o in result.tasks)
    assert result.status == (COMPLETED if every else FAILED)

    # concurrency bound
    assert trace.peak <= max_concurrency
    if max_concurrency == 1:
        # with one slot, each start picks the best ready task: lowest priority, then position
        for task_id, start in first_start.items():
            mine = (specs[index[task_id]].priority, index[task_id])
            for other, other_start in first_start.items():
                if other_start <= start:
                    continue
                deps = specs[index[other]].deps
                ready = all(ended_at[ids[d]] < start for d, _ in deps)
                if ready:
                    theirs = (specs[index[other]].priority, index[other])
                    assert mine < theirs, (task_id, other)


def subtree(specs: list[Spec], top: int) -> set[int]:
    found = {top}
    for i, spec in enumerate(specs):  # parents always come before their children
        if spec.parent is not None and spec.parent in found:
            found.add(i)
    return found


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    specs=dags(),
    max_concurrency=st.integers(1, 8),
    data=st.data(),
)
def test_random_dags_with_a_cancellation(
    shared_store: TaskStorage,
    prop_registry: ExecutorRegistry,
    specs: list[Spec],
    max_concurrency: int,
    data: st.DataObject,
) -> None:
    global TRACE
    TRACE = Trace()
    clear_hooks()
    prefix = uuid.uuid4().hex[:8]
    ids = [f"{prefix}-{i}" for i in range(len(specs))]
    index = {task_id: i for i, task_id in enumerate(ids)}
    target = data.draw(st.integers(0, len(specs) - 1), label="target")
    TRACE.cancel_target = ids[target]
    TRACE.cancel_at = data.draw(st.integers(1, len(specs)), label="cancel_at")

    async def scenario() -> tuple[TreeResult, dict[str, str], list[str] | None]:
        result, stored = await run_example(
            shared_store, prop_registry, specs, ids, max_concurrency, cancel=True
        )
        job = TRACE.cancel_job
        cancelled = await asyncio.wait_for(job, 60) if job is not None else None
        return result, stored, cancelled

    result, stored, cancelled = asyncio.run(scenario())
    trace = TRACE
    outcome = {o.id: o for o in result.tasks}

    # every task ends, once; storage agrees; nothing is left in progress
    for task_id in ids:
        assert outcome[task_id].status in TERMINAL, (task_id, outcome[task_id].status)
        assert len(trace.terminal.get(task_id, [])) == 1, (task_id, trace.terminal.get(task_id))
    assert stored == {i: o.status for i, o in outcome.items()}

    # at most one run per attempt, and attempts counted
    seen: dict[str, list[int]] = {}
    for task_id, attempt, _ in trace.starts:
        seen.setdefault(task_id, []).append(attempt)
    for task_id in ids:
        assert seen.get(task_id, []) == list(range(1, len(seen.get(task_id, [])) + 1))
        assert outcome[task_id].attempts == len(seen.get(task_id, [])), task_id

    # what cancel_task() reports as cancelled did end cancelled, and only its subtree
    if cancelled is not None:
        assert set(cancelled) <= {ids[i] for i in subtree(specs, target)}
        for task_id in cancelled:
            assert outcome[task_id].status == CANCELLED, task_id

    # a cancelled task was cancelled directly or had a required dependency that did not complete;
    # a task never started after one of its required dependencies ended badly
    ended_at = {task_id: ends[0][1] for task_id, ends in trace.terminal.items()}
    first_start = {i: t for i, a, t in trace.starts if a == 1}
    direct = set(cancelled or [])
    for task_id in ids:
        spec = specs[index[task_id]]
        bad_required = [
            ids[d] for d, req in spec.deps if req and outcome[ids[d]].status != COMPLETED
        ]
        if outcome[task_id].status == CANCELLED and task_id not in direct:
            assert bad_required, task_id
        if task_id in first_start:
            for d, req in spec.deps:
                assert ended_at[ids[d]] < first_start[task_id], (task_id, ids[d])
                if req:
                    assert outcome[ids[d]].status == COMPLETED, (task_id, ids[d])
        if bad_required:
            assert task_id not in first_start, task_id
            assert outcome[task_id].status in (FAILED, CANCELLED), task_id

    statuses = {o.status for o in result.tasks}
    if statuses == {COMPLETED}:
        assert result.status == COMPLETED
    elif FAILED in statuses:
        assert result.status == FAILED
    else:
        assert result.status == CANCELLED
    assert trace.peak <= max_concurrency
