"""The event stream of a run, StreamingCallbacks, listeners, pre/post hooks and tree hooks."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from aipartnerupflow.core.base_task import BaseTask
from aipartnerupflow.core.events import EventKind, StreamingCallbacks, TaskEvent
from aipartnerupflow.core.hooks import (
    register_post_hook,
    register_pre_hook,
    register_task_tree_hook,
)
from aipartnerupflow.core.manager import TaskManager
from aipartnerupflow.core.models import TaskModel
from aipartnerupflow.core.registry import ExecutorRegistry
from aipartnerupflow.core.results import TreeResult
from aipartnerupflow.core.status import TaskStatus
from aipartnerupflow.core.tree import TaskTreeNode

from ._engine_helpers import Probe, by_task, collect, guard, register_helpers, task
from ._executors import Recorder

COMPLETED = TaskStatus.COMPLETED.value
FAILED = TaskStatus.FAILED.value
CANCELLED = TaskStatus.CANCELLED.value
IN_PROGRESS = TaskStatus.IN_PROGRESS.value
TERMINAL = {COMPLETED, FAILED, CANCELLED}


@pytest.fixture
def tm(manager: TaskManager, registry: ExecutorRegistry) -> TaskManager:
    Probe.reset()
    register_helpers(registry)
    return manager


def small_dag(*, fail_b: bool = False) -> list[dict[str, Any]]:
    """root -> (progress, b after progress, c after b, d optional after b)."""
    return [
        task("root", "test_noop"),
        task("prog", "test_progress", parent="root"),
        task("b", "test_track", parent="root", deps=["prog"], inputs={"fail": fail_b}),
        task("c", "test_track", parent="root", deps=["b"]),
        task("d", "test_track", parent="root", deps=[("b", False)]),
    ]


async def run_and_collect(
    tm: TaskManager, tasks: list[dict[str, Any]]
) -> tuple[TreeResult, list[TaskEvent]]:
    root = tasks[0]["id"]
    sub = tm.subscribe(root)
    events = asyncio.create_task(collect(sub))
    result = await guard(tm.run_tasks(tasks))
    return result, await guard(events)


def check_stream(events: list[TaskEvent], result: TreeResult) -> None:
    """Rules every run's stream obeys, whatever its outcome."""
    kinds = [e.kind for e in events]
    assert kinds[0] == EventKind.TREE_STARTED
    assert kinds[-1] == EventKind.TREE_FINISHED
    assert kinds.count(EventKind.TREE_STARTED) == 1
    assert kinds.count(EventKind.TREE_FINISHED) == 1
    seqs = [e.seq for e in events]
    assert all(a < b for a, b in itertools.pairwise(seqs)), "seq strictly increasing"
    assert {e.root_id for e in events} == {result.root_id}
    assert events[-1].status == result.status
    assert events[-1].final
    assert not any(e.final for e in events[:-1])
    for outcome in result.tasks:
        statuses = [
            e
            for e in by_task(events, outcome.id)
            if e.kind != EventKind.TREE_STARTED and e.kind != EventKind.TREE_FINISHED
        ]
        transitions = [e.status for e in statuses if e.kind == EventKind.TASK_STATUS]
        # exactly one terminal transition, the last, and it matches the result
        assert transitions, outcome.name
        assert transitions[-1] == outcome.status, outcome.name
        assert [s for s in transitions if s in TERMINAL] == [outcome.status], outcome.name
        # a task that ran reports in_progress (once per attempt) before it ends
        assert transitions[:-1] == [IN_PROGRESS] * outcome.attempts, outcome.name
        # progress only while in progress
        if outcome.attempts:
            first = statuses.index(next(e for e in statuses if e.status == IN_PROGRESS))
            last = len(statuses) - 1
            for i, e in enumerate(statuses):
                if e.kind == EventKind.TASK_PROGRESS:
                    assert first < i < last, outcome.name


# -- the stream ----------------------------------------------------------------------------


async def test_stream_of_a_successful_run(tm: TaskManager) -> None:
    result, events = await run_and_collect(tm, small_dag())

    assert result.status == COMPLETED
    check_stream(events, result)
    progress = by_task(events, "prog", EventKind.TASK_PROGRESS)
    assert [(e.progress, e.message) for e in progress] == [
        (0.25, "step 0.25"),
        (0.5, "step 0.5"),
        (1.0, "step 1.0"),
    ]
    ended = {
        e.task_id: e.seq for e in events if e.kind == EventKind.TASK_STATUS and e.status in TERMINAL
    }
    started = {
        e.task_id: e.seq
        for e in events
        if e.kind == EventKind.TASK_STATUS and e.status == IN_PROGRESS
    }
    assert ended["prog"] < started["b"]
    assert ended["b"] < started["c"]
    assert ended["b"] < started["d"]
    completed_b = by_task(events, "b", EventKind.TASK_STATUS)[-1]
    assert completed_b.result == {"name": "b", "value": None}
    assert events[-1].error is None
    assert events[-1].progress == pytest.approx(1.0)


async def test_stream_of_a_failed_run(tm: TaskManager) -> None:
    result, events = await run_and_collect(tm, small_dag(fail_b=True))

    assert result.status == FAILED
    check_stream(events, result)
    assert [e.status for e in by_task(events, "b", EventKind.TASK_STATUS)] == [IN_PROGRESS, FAILED]
    # c never ran: one event, failed, naming its dependency
    c_events = by_task(events, "c")
    assert [(e.kind, e.status) for e in c_events] == [(EventKind.TASK_STATUS, FAILED)]
    assert "'b'" in (c_events[0].error or "")
    assert result.task("d").status == COMPLETED  # optional dependency
    assert events[-1].status == FAILED
    assert "b was told to fail" in (events[-1].error or "")


async def test_stream_of_a_cancelled_run(tm: TaskManager) -> None:
    sub = tm.subscribe("root")
    events_job = asyncio.create_task(collect(sub))
    tree = await tm.create_task_tree_from_array(
        [
            task("root", "test_noop"),
            task("block", "h_block", parent="root"),
            task("after", "test_track", parent="root", deps=["block"]),
        ]
    )
    run = asyncio.create_task(tm.distribute_task_tree(tree))
    await guard(Probe.started("block").wait())
    await tm.cancel_tree("root")
    result = await guard(run)
    events = await guard(events_job)

    assert result.status == CANCELLED
    check_stream(events, result)
    assert [e.status for e in by_task(events, "block", EventKind.TASK_STATUS)] == [
        IN_PROGRESS,
        CANCELLED,
    ]
    assert events[-1].status == CANCELLED


async def test_retries_show_one_in_progress_per_attempt(tm: TaskManager) -> None:
    result, events = await run_and_collect(
        tm,
        [
            task(
                "root",
                "test_flaky",
                inputs={"succeed_on": 3},
                retry={"max_attempts": 3, "backoff_seconds": 0.01},
            ),
        ],
    )
    assert result.status == COMPLETED
    assert result.task("root").attempts == 3
    check_stream(events, result)
    messages = [
        e.message for e in by_task(events, "root", EventKind.TASK_STATUS) if e.status == IN_PROGRESS
    ]
    assert len(messages) == 3


async def test_subscription_to_one_root_ignores_other_trees(tm: TaskManager) -> None:
    mine = tm.subscribe("mine")
    everything = tm.subscribe()
    mine_job = asyncio.create_task(collect(mine))
    await guard(
        asyncio.gather(
            tm.run_tasks([task("mine", "test_noop"), task("m1", "test_noop", parent="mine")]),
            tm.run_tasks([task("other", "test_noop"), task("o1", "test_noop", parent="other")]),
        )
    )
    mine_events = await guard(mine_job)
    everything.close()
    all_events = [e async for e in everything]

    assert {e.root_id for e in mine_events} == {"mine"}
    assert {e.root_id for e in all_events} == {"mine", "other"}
    assert [e.kind for e in all_events].count(EventKind.TREE_FINISHED) == 2
    seqs = [e.seq for e in all_events]
    assert seqs == sorted(seqs)


async def test_event_to_dict_is_json_ready(tm: TaskManager) -> None:
    import json

    _, events = await run_and_collect(tm, small_dag())
    for event in events:
        data = event.to_dict()
        assert data["kind"] == event.kind
        json.dumps(data)


# -- listeners and StreamingCallbacks ------------------------------------------------------


async def test_streaming_callbacks_route_each_kind(tm: TaskManager) -> None:
    statuses: list[TaskEvent] = []
    progress: list[TaskEvent] = []
    final: list[TaskEvent] = []
    tm.add_listener(
        StreamingCallbacks(
            on_task_status=statuses.append, on_progress=progress.append, on_final=final.append
        )
    )

    result = await guard(tm.run_tasks(small_dag()))

    assert {e.kind for e in statuses} == {EventKind.TASK_STATUS}
    assert {e.kind for e in progress} == {EventKind.TASK_PROGRESS}
    assert [e.kind for e in final] == [EventKind.TREE_FINISHED]
    assert final[0].status == result.status == COMPLETED
    assert [e.progress for e in progress] == [0.25, 0.5, 1.0]
    assert len([e for e in statuses if e.status in TERMINAL]) == len(result.tasks)


async def test_streaming_callbacks_with_only_some_handlers(tm: TaskManager) -> None:
    final: list[TaskEvent] = []
    tm.add_listener(StreamingCallbacks(on_final=final.append))
    await guard(tm.run_tasks(small_dag()))
    assert len(final) == 1


async def test_sync_and_async_listeners_see_every_event_in_order(tm: TaskManager) -> None:
    sync_seen: list[TaskEvent] = []
    async_seen: list[TaskEvent] = []
    async_done = asyncio.Event()

    async def async_listener(event: TaskEvent) -> None:
        async_seen.append(event)
        await asyncio.sleep(0)
        if event.final:
            async_done.set()

    tm.add_listener(sync_seen.append)
    tm.add_listener(async_listener)
    sub = tm.subscribe("root")
    events_job = asyncio.create_task(collect(sub))
    await guard(tm.run_tasks(small_dag()))
    await guard(async_done.wait())
    events = await guard(events_job)

    assert [e.seq for e in sync_seen] == [e.seq for e in events]
    assert [e.seq for e in async_seen] == [e.seq for e in events]


async def test_failing_listeners_do_not_break_the_run(tm: TaskManager) -> None:
    calls: list[str] = []
    async_failed = asyncio.Event()

    def bad_sync(event: TaskEvent) -> None:
        calls.append("sync")
        raise RuntimeError("sync listener broke")

    async def bad_async(event: TaskEvent) -> None:
        calls.append("async")
        if event.final:
            async_failed.set()
        raise RuntimeError("async listener broke")

    tm.add_listener(bad_sync)
    tm.add_listener(bad_async)
    result = await guard(tm.run_tasks(small_dag()))
    await guard(async_failed.wait())
    await asyncio.sleep(0)

    assert result.status == COMPLETED
    assert "sync" in calls
    assert "async" in calls


# -- pre/post hooks ------------------------------------------------------------------------


async def test_pre_hook_can_change_the_inputs_execute_sees(tm: TaskManager) -> None:
    def add_value(t: TaskModel) -> None:
        t.inputs = {**t.inputs, "value": f"set by hook for {t.name}"}

    register_pre_hook(add_value)
    result = await guard(
        tm.run_tasks(
            [
                task("root", "test_track", inputs={"value": "orig"}),
                task("kid", "test_track", parent="root", deps=["root"]),
            ]
        )
    )

    assert result.status == COMPLETED
    assert Recorder.inputs["root"]["value"] == "set by hook for root"
    assert Recorder.inputs["kid"]["value"] == "set by hook for kid"
    assert Recorder.inputs["kid"]["root"] == {"name": "root", "value": "set by hook for root"}
    assert result.task("root").result == {"name": "root", "value": "set by hook for root"}


async def test_async_pre_hook_mutating_inputs_in_place(tm: TaskManager) -> None:
    async def mutate(t: TaskModel) -> None:
        await asyncio.sleep(0)
        t.inputs["value"] = 7

    register_pre_hook(mutate)
    result = await guard(tm.run_tasks([task("root", "test_track")]))
    assert result.status == COMPLETED
    assert Recorder.inputs["root"]["value"] == 7


async def test_pre_hook_changes_to_inputs_are_persisted(tm: TaskManager) -> None:
    # As in the original project: a pre-hook's change to task.inputs is saved.
    register_pre_hook(lambda t: t.inputs.update({"value": "hooked"}))
    await guard(tm.run_tasks([task("root", "test_track")]))
    row = await tm.task_repository.get_task_by_id("root")
    assert row is not None
    assert row.inputs.get("value") == "hooked"


async def test_pre_hook_sees_the_task_and_runs_once_per_attempt(tm: TaskManager) -> None:
    seen: list[tuple[str, str, int]] = []
    register_pre_hook(lambda t: seen.append((t.name, t.status, t.attempts)))
    await guard(
        tm.run_tasks(
            [
                task(
                    "root",
                    "test_flaky",
                    inputs={"succeed_on": 2},
                    retry={"max_attempts": 2, "backoff_seconds": 0.01},
                )
            ]
        )
    )
    assert seen == [("root", IN_PROGRESS, 1), ("root", IN_PROGRESS, 2)]


async def test_post_hook_runs_on_success_and_on_failure(tm: TaskManager) -> None:
    seen: list[tuple[str, Any, Any]] = []

    async def post(t: TaskModel, inputs: dict[str, Any], result: Any) -> None:
        await asyncio.sleep(0)
        seen.append((t.name, inputs.get("fail"), result))

    register_post_hook(post)
    result = await guard(tm.run_tasks(small_dag(fail_b=True)))

    assert result.status == FAILED
    by_name: dict[str, tuple[Any, Any]] = {name: (fail, res) for name, fail, res in seen}
    assert len(seen) == len(by_name), "one post-hook call per executed task"
    assert set(by_name) == {"root", "prog", "b", "d"}  # c never ran
    assert by_name["prog"] == (None, "done")
    assert by_name["b"] == (True, None)  # failure: no result
    assert by_name["d"][1] == {"name": "d", "value": None}


async def test_post_hook_sees_task_state_at_the_end(tm: TaskManager) -> None:
    seen: dict[str, tuple[str, str | None]] = {}
    register_post_hook(lambda t, inputs, result: seen.__setitem__(t.name, (t.status, t.error)))
    await guard(tm.run_tasks([task("root", "test_noop"), task("bad", "h_fail", parent="root")]))
    # A post-hook must be able to tell a failure from a success that returned None.
    assert seen["root"] == (COMPLETED, None)
    status, error = seen["bad"]
    assert status == FAILED
    assert error is not None
    assert "always fails" in error


async def test_post_hook_receives_the_inputs_execute_received(tm: TaskManager) -> None:
    # The original project passes the resolved inputs (dependency results merged in).
    seen: dict[str, dict[str, Any]] = {}
    register_post_hook(lambda t, inputs, result: seen.__setitem__(t.name, dict(inputs)))
    await guard(
        tm.run_tasks(
            [
                task("root", "test_track", inputs={"value": 1}),
                task("kid", "test_track", parent="root", deps=["root"]),
            ]
        )
    )
    assert seen["kid"] == Recorder.inputs["kid"]
    assert "root" in seen["kid"]


async def test_failing_hooks_do_not_break_the_run(tm: TaskManager) -> None:
    def bad_pre(t: TaskModel) -> None:
        raise RuntimeError("pre broke")

    async def bad_post(t: TaskModel, inputs: dict[str, Any], result: Any) -> None:
        raise RuntimeError("post broke")

    def bad_tree(root: TaskModel, *args: Any) -> None:
        raise RuntimeError("tree hook broke")

    register_pre_hook(bad_pre)
    register_post_hook(bad_post)
    for event in ("created", "started", "completed", "failed"):
        register_task_tree_hook(event, bad_tree)

    result, events = await run_and_collect(tm, small_dag())
    assert result.status == COMPLETED
    check_stream(events, result)
    assert sorted(Recorder.calls) == ["b", "c", "d"]


async def test_hook_registered_twice_runs_once(tm: TaskManager) -> None:
    calls: list[str] = []

    def pre(t: TaskModel) -> None:
        calls.append(t.name)

    register_pre_hook(pre)
    register_pre_hook(pre)
    await guard(tm.run_tasks([task("root", "test_noop")]))
    assert calls == ["root"]


# -- tree hooks ----------------------------------------------------------------------------


def record_tree_hooks() -> list[tuple[str, str, tuple[Any, ...]]]:
    calls: list[tuple[str, str, tuple[Any, ...]]] = []

    def hook_for(event: str, is_async: bool) -> Any:
        if is_async:

            async def hook(root: TaskModel, *args: Any) -> None:
                await asyncio.sleep(0)
                calls.append((event, root.id, args))
        else:

            def hook(root: TaskModel, *args: Any) -> None:  # type: ignore[misc]
                calls.append((event, root.id, args))

        return hook

    for i, event in enumerate(
        ("on_tree_created", "on_tree_started", "on_tree_completed", "on_tree_failed")
    ):
        register_task_tree_hook(event, hook_for(event, is_async=bool(i % 2)))
    return calls


async def test_tree_hooks_on_success(tm: TaskManager) -> None:
    calls = record_tree_hooks()
    result = await guard(tm.run_tasks(small_dag()))
    assert result.status == COMPLETED
    assert [(e, r) for e, r, _ in calls] == [
        ("on_tree_created", "root"),
        ("on_tree_started", "root"),
        ("on_tree_completed", "root"),
    ]
    assert calls[-1][2] == (COMPLETED,)


async def test_tree_hooks_on_failure(tm: TaskManager) -> None:
    calls = record_tree_hooks()
    result = await guard(tm.run_tasks(small_dag(fail_b=True)))
    assert result.status == FAILED
    assert [e for e, _, _ in calls] == ["on_tree_created", "on_tree_started", "on_tree_failed"]
    assert calls[-1][2] == (FAILED,)


async def test_tree_hooks_on_cancellation(tm: TaskManager) -> None:
    calls = record_tree_hooks()
    tree = await tm.create_task_tree_from_array([task("root", "h_block")])
    run = asyncio.create_task(tm.distribute_task_tree(tree))
    await guard(Probe.started("root").wait())
    await tm.cancel_tree("root")
    result = await guard(run)
    assert result.status == CANCELLED
    assert [e for e, _, _ in calls] == ["on_tree_created", "on_tree_started", "on_tree_failed"]
    assert calls[-1][2] == (CANCELLED,)


async def test_tree_hooks_when_running_an_existing_tree_again(tm: TaskManager) -> None:
    await guard(tm.run_tasks(small_dag()))
    calls = record_tree_hooks()
    result = await guard(tm.execute_tree("root", rerun="all"))
    assert result.status == COMPLETED
    assert [e for e, _, _ in calls] == ["on_tree_started", "on_tree_completed"]


async def test_tree_hook_event_names_with_and_without_prefix(tm: TaskManager) -> None:
    calls: list[str] = []
    register_task_tree_hook("completed", lambda root, status: calls.append("short"))
    register_task_tree_hook("on_tree_completed", lambda root, status: calls.append("long"))
    await guard(tm.run_tasks([task("root", "test_noop")]))
    assert sorted(calls) == ["long", "short"]
    with pytest.raises(ValueError, match="unknown tree hook event"):
        register_task_tree_hook("exploded", lambda root: None)


async def test_tree_hooks_used_as_decorators(tm: TaskManager) -> None:
    calls: list[str] = []

    @register_task_tree_hook("on_tree_started")  # type: ignore[untyped-decorator]
    async def started(root: TaskModel) -> None:
        calls.append(root.id)

    @register_pre_hook
    def pre(t: TaskModel) -> None:
        calls.append("pre:" + t.id)

    await guard(tm.run_tasks([task("root", "test_noop")]))
    assert calls == ["root", "pre:root"]


class LateReporter(BaseTask):
    """Returns at once but leaves work behind that reports progress later."""

    id = "h_late_progress"

    async def execute(self, inputs: dict[str, Any]) -> Any:
        async def later() -> None:
            await asyncio.sleep(0.05)
            self.report_progress(0.3, "too late")
            LateReporter.reported.set()

        LateReporter.job = asyncio.ensure_future(later())
        return "done"

    reported: asyncio.Event
    job: asyncio.Future[None]


async def test_progress_reported_after_the_end_is_ignored(
    tm: TaskManager, registry: ExecutorRegistry
) -> None:
    LateReporter.reported = asyncio.Event()
    registry.register(LateReporter)
    everything = tm.subscribe()
    result = await guard(tm.run_tasks([task("root", "h_late_progress")]))
    assert result.status == COMPLETED
    await guard(LateReporter.reported.wait())
    await tm.storage.flush()
    everything.close()
    events = [e async for e in everything]

    kinds = [e.kind for e in events]
    assert kinds[-1] == EventKind.TREE_FINISHED  # nothing after the final event
    row = await tm.task_repository.get_task_by_id("root")
    assert row is not None
    assert row.progress == 1.0  # a completed task stays at 100 %


async def test_tree_created_hook_gets_the_tree_as_in_the_original(tm: TaskManager) -> None:
    # upstream: on_tree_created(root, tree); a hook written for it must keep working
    seen: list[Any] = []
    register_task_tree_hook("on_tree_created", lambda root, tree: seen.append((root.id, tree)))
    await guard(tm.run_tasks([task("root", "test_noop"), task("kid", "test_noop", parent="root")]))
    assert len(seen) == 1
    root_id, tree = seen[0]
    assert root_id == "root"
    assert isinstance(tree, TaskTreeNode)
    assert [n.task.id for n in tree.walk()] == ["root", "kid"]
