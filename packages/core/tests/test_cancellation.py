"""Cancellation: of a running task, of a tree, of queued tasks, during backoff, of stored trees."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from aipartnerupflow.core.errors import TaskNotFoundError
from aipartnerupflow.core.events import EventKind, TaskEvent
from aipartnerupflow.core.hooks import register_post_hook, register_task_tree_hook
from aipartnerupflow.core.manager import TaskManager
from aipartnerupflow.core.models import TaskModel
from aipartnerupflow.core.registry import ExecutorRegistry
from aipartnerupflow.core.results import TreeResult
from aipartnerupflow.core.status import TaskStatus
from aipartnerupflow.core.storage.base import TaskStorage

from ._engine_helpers import Probe, by_task, collect, guard, register_helpers, task
from ._executors import Recorder

CANCELLED = TaskStatus.CANCELLED.value
COMPLETED = TaskStatus.COMPLETED.value
FAILED = TaskStatus.FAILED.value
TERMINAL = {COMPLETED, FAILED, CANCELLED}


@pytest.fixture
def tm(manager: TaskManager, registry: ExecutorRegistry) -> TaskManager:
    Probe.reset()
    register_helpers(registry)
    Probe.repo = manager.task_repository
    return manager


@pytest.fixture
async def make_manager(
    tm: TaskManager, store: TaskStorage, registry: ExecutorRegistry
) -> AsyncIterator[Callable[[int], TaskManager]]:
    made: list[TaskManager] = []

    def make(max_concurrency: int) -> TaskManager:
        other = TaskManager(store, registry=registry, max_concurrency=max_concurrency)
        made.append(other)
        return other

    yield make
    for other in made:
        await other.close(close_storage=False)


async def start(tm: TaskManager, tasks: list[dict[str, Any]]) -> asyncio.Task[TreeResult]:
    tree = await tm.create_task_tree_from_array(tasks)
    return asyncio.create_task(tm.distribute_task_tree(tree))


async def assert_nothing_left_running(tm: TaskManager, root_id: str) -> None:
    rows = await tm.task_repository.get_all_tasks_in_tree(root_id)
    assert rows
    for row in rows:
        assert row.status in TERMINAL, (row.name, row.status)
        assert row.lease_owner is None, row.name


# -- a running task ------------------------------------------------------------------------


async def test_cancel_running_task_calls_cancel_and_interrupts_execute(tm: TaskManager) -> None:
    run = await start(tm, [task("root", "test_noop"), task("block", "h_block", parent="root")])
    await guard(Probe.started("block").wait())

    cancelled = await tm.cancel_task("block")
    result = await guard(run)

    assert cancelled == ["block"]
    assert Probe.cancel_calls == ["block"]
    assert Probe.interrupted == ["block"]  # the asyncio execute() was interrupted ...
    assert Probe.returned == []  # ... and never ran to its end
    assert result.task("block").status == CANCELLED
    assert result.task("block").error == "cancelled"
    assert result.task("root").status == COMPLETED
    assert result.status == CANCELLED
    await assert_nothing_left_running(tm, "root")


async def test_cancel_tree_cancels_every_running_task(tm: TaskManager) -> None:
    run = await start(
        tm,
        [
            task("root", "h_block"),
            task("a", "h_block", parent="root"),
            task("b", "h_block", parent="a"),
            task("later", "test_track", parent="root", deps=["b"]),
        ],
    )
    for name in ("root", "a", "b"):
        await guard(Probe.started(name).wait())

    cancelled = await tm.cancel_tree("root")
    result = await guard(run)

    assert sorted(cancelled) == ["a", "b", "later", "root"]
    assert sorted(Probe.cancel_calls) == ["a", "b", "root"]
    assert sorted(Probe.interrupted) == ["a", "b", "root"]
    assert {o.status for o in result.tasks} == {CANCELLED}
    assert result.status == CANCELLED
    assert "later" not in Recorder.calls
    await assert_nothing_left_running(tm, "root")


async def test_cancel_cascades_to_descendants_and_required_dependents(tm: TaskManager) -> None:
    run = await start(
        tm,
        [
            task("root", "test_noop"),
            task("a", "h_block", parent="root"),
            task("a_child", "h_block", parent="a"),
            task("a_grandchild", "test_track", parent="a_child", deps=["a_child"]),
            task("needs_a", "test_track", parent="root", deps=["a"]),
            task("needs_needs_a", "test_track", parent="root", deps=["needs_a"]),
            task("likes_a", "test_track", parent="root", deps=[("a", False)]),
            task("unrelated", "test_track", parent="root", inputs={"sleep": 0.01}),
        ],
    )
    await guard(Probe.started("a").wait())
    await guard(Probe.started("a_child").wait())

    cancelled = await tm.cancel_task("a")
    result = await guard(run)

    assert {"a", "a_child", "a_grandchild"} <= set(cancelled)
    statuses = {o.name: o.status for o in result.tasks}
    assert statuses == {
        "root": COMPLETED,
        "a": CANCELLED,
        "a_child": CANCELLED,
        "a_grandchild": CANCELLED,
        "needs_a": CANCELLED,
        "needs_needs_a": CANCELLED,
        "likes_a": COMPLETED,  # an optional dependent still runs
        "unrelated": COMPLETED,
    }
    error = result.task("needs_a").error
    assert error is not None
    assert "'a'" in error
    assert "cancelled" in error
    assert "needs_a" in (result.task("needs_needs_a").error or "")
    assert sorted(Recorder.calls) == ["likes_a", "unrelated"]
    assert sorted(Probe.interrupted) == ["a", "a_child"]
    assert result.status == CANCELLED
    await assert_nothing_left_running(tm, "root")


async def test_cooperative_executor_that_returns_after_cancel_is_still_cancelled(
    tm: TaskManager,
) -> None:
    # An executor whose cancel() makes execute() stop by itself (a killed subprocess, a
    # closed socket) must not turn a cancelled task into a completed one.
    run = await start(
        tm,
        [
            task("root", "test_noop"),
            task("coop", "h_coop", parent="root"),
            task("after", "test_track", parent="root", deps=["coop"]),
        ],
    )
    await guard(Probe.started("coop").wait())

    await tm.cancel_task("coop")
    result = await guard(run)

    assert Probe.cancel_calls == ["coop"]
    assert result.task("coop").status == CANCELLED
    assert result.task("after").status == CANCELLED
    assert "after" not in Recorder.calls
    assert result.status == CANCELLED


async def test_cooperative_executor_that_raises_after_cancel_is_cancelled_not_failed(
    tm: TaskManager,
) -> None:
    run = await start(
        tm,
        [
            task("root", "test_noop"),
            task(
                "coop",
                "h_coop",
                parent="root",
                inputs={"raise_on_stop": True},
                retry={"max_attempts": 3, "backoff_seconds": 0.01},
            ),
        ],
    )
    await guard(Probe.started("coop").wait())

    await tm.cancel_task("coop")
    result = await guard(run)

    assert result.task("coop").status == CANCELLED
    assert result.task("coop").attempts == 1
    assert result.status == CANCELLED


async def test_cancel_with_async_post_hook_does_not_hang(tm: TaskManager) -> None:
    seen: list[tuple[str, object]] = []

    async def post(task_model: TaskModel, inputs: dict[str, Any], result: Any) -> None:
        await asyncio.sleep(0.01)
        seen.append((task_model.name, result))

    register_post_hook(post)
    run = await start(tm, [task("root", "test_noop"), task("coop", "h_coop", parent="root")])
    await guard(Probe.started("coop").wait())

    await tm.cancel_task("coop")
    result = await guard(run)  # a hang here: the post-hook was cancelled, finish() never ran

    assert result.task("coop").status == CANCELLED
    assert [name for name, _ in seen] == ["root", "coop"]
    await assert_nothing_left_running(tm, "root")


# -- tasks that are not running yet --------------------------------------------------------


async def test_cancel_queued_task_before_it_starts(
    tm: TaskManager, make_manager: Callable[[int], TaskManager]
) -> None:
    one = make_manager(1)
    run = await start(
        one,
        [
            task("root", "h_block", priority=0),
            task("queued", "test_track", parent="root", priority=3),
            task("after_queued", "test_track", parent="root", deps=["queued"]),
        ],
    )
    await guard(Probe.started("root").wait())

    assert await one.cancel_task("queued") == ["queued"]
    Probe.release("root").set()
    result = await guard(run)

    assert result.task("root").status == COMPLETED
    assert result.task("queued").status == CANCELLED
    assert result.task("after_queued").status == CANCELLED
    assert Recorder.calls == {}  # neither ever started
    assert result.task("queued").attempts == 0
    assert result.status == CANCELLED
    await assert_nothing_left_running(one, "root")


async def test_cancel_tree_with_running_queued_and_waiting_tasks(
    tm: TaskManager, make_manager: Callable[[int], TaskManager]
) -> None:
    one = make_manager(1)
    run = await start(
        one,
        [
            task("root", "h_block"),
            task("waits", "test_track", parent="root", deps=["root"]),
            task("free", "test_track", parent="root", priority=3),
        ],
    )
    await guard(Probe.started("root").wait())

    assert await one.cancel_task("root") == ["free", "root", "waits"]
    result = await guard(run)

    assert {o.status for o in result.tasks} == {CANCELLED}
    assert Recorder.calls == {}
    await assert_nothing_left_running(one, "root")


async def test_cancel_during_retry_backoff(tm: TaskManager) -> None:
    run = await start(
        tm,
        [
            task("root", "test_noop"),
            task(
                "flaky",
                "h_fail",
                parent="root",
                retry={"max_attempts": 5, "backoff_seconds": 20, "jitter": False},
            ),
        ],
    )
    await guard(Probe.failed("flaky").wait())
    await asyncio.sleep(0.05)  # now sleeping 20 s before attempt 2

    assert await tm.cancel_task("flaky") == ["flaky"]
    result = await guard(run)

    outcome = result.task("flaky")
    assert outcome.status == CANCELLED
    assert outcome.attempts == 1
    assert Probe.executions == {"flaky": 1}
    assert result.status == CANCELLED
    await assert_nothing_left_running(tm, "root")


async def test_cancel_from_an_on_tree_started_hook(tm: TaskManager) -> None:
    # An async tree-started hook may cancel (reject) a tree before any task started, and a
    # concurrent cancel_tree() can land while such a hook awaits.
    async def reject(root: TaskModel) -> None:
        await asyncio.sleep(0)
        await tm.cancel_tree(root.id)

    register_task_tree_hook("on_tree_started", reject)
    sub = tm.subscribe("root")
    events = asyncio.create_task(collect(sub))
    tree = await tm.create_task_tree_from_array(
        [
            task("root", "test_track"),
            task("a", "test_track", parent="root"),
            task("b", "test_track", parent="root", deps=["a"]),
        ]
    )
    result = await guard(tm.distribute_task_tree(tree))
    seen = await guard(events)

    assert {o.status for o in result.tasks} == {CANCELLED}
    assert Recorder.calls == {}
    assert seen[0].kind == EventKind.TREE_STARTED
    assert [e.kind for e in seen].count(EventKind.TREE_FINISHED) == 1
    assert seen[-1].kind == EventKind.TREE_FINISHED
    assert seen[-1].status == CANCELLED
    for name in ("root", "a", "b"):
        assert len(by_task(seen, name, EventKind.TASK_STATUS)) == 1


async def test_cancel_one_waiting_task_while_tree_started_hook_awaits(tm: TaskManager) -> None:
    async def cancel_b(root: TaskModel) -> None:
        await asyncio.sleep(0)
        await tm.cancel_task("b")

    register_task_tree_hook("on_tree_started", cancel_b)
    sub = tm.subscribe("root")
    events = asyncio.create_task(collect(sub))
    result = await guard(
        tm.run_tasks(
            [
                task("root", "test_noop"),
                task("a", "test_track", parent="root", inputs={"sleep": 0.02}),
                task("b", "test_track", parent="root", deps=["a"]),
                task("c", "test_track", parent="root", inputs={"sleep": 0.2}),
            ]
        )
    )
    seen = await guard(events)

    statuses = {o.name: o.status for o in result.tasks}
    assert statuses == {"root": COMPLETED, "a": COMPLETED, "b": CANCELLED, "c": COMPLETED}
    assert "b" not in Recorder.calls
    assert len(by_task(seen, "b", EventKind.TASK_STATUS)) == 1  # cancelled once, not twice
    await assert_nothing_left_running(tm, "root")


# -- idempotence and finished tasks --------------------------------------------------------


async def test_cancel_twice_and_after_the_end_changes_nothing(tm: TaskManager) -> None:
    run = await start(tm, [task("root", "test_noop"), task("block", "h_block", parent="root")])
    await guard(Probe.started("block").wait())

    first = await tm.cancel_task("block")
    second = await tm.cancel_task("block")
    result = await guard(run)

    assert first == ["block"]
    assert second in ([], ["block"])
    assert result.task("block").status == CANCELLED
    assert await tm.cancel_task("block") == []
    assert await tm.cancel_tree("root") == []
    row = await tm.task_repository.get_task_by_id("block")
    assert row is not None
    assert row.status == CANCELLED
    root = await tm.task_repository.get_task_by_id("root")
    assert root is not None
    assert root.status == COMPLETED
    assert Probe.interrupted == ["block"]


async def test_concurrent_double_cancel(tm: TaskManager) -> None:
    run = await start(tm, [task("root", "h_block"), task("child", "h_block", parent="root")])
    await guard(Probe.started("child").wait())

    await guard(asyncio.gather(tm.cancel_tree("root"), tm.cancel_tree("root")))
    result = await guard(run)

    assert {o.status for o in result.tasks} == {CANCELLED}
    assert sorted(Probe.interrupted) == ["child", "root"]


async def test_cancel_finished_tree_returns_empty_and_changes_nothing(tm: TaskManager) -> None:
    result = await guard(
        tm.run_tasks([task("root", "test_noop"), task("bad", "h_fail", parent="root")])
    )
    assert result.status == FAILED
    before = {
        r.id: (r.status, r.error, r.result)
        for r in await tm.task_repository.get_all_tasks_in_tree("root")
    }

    assert await tm.cancel_tree("root") == []
    assert await tm.cancel_task("bad") == []

    after = {
        r.id: (r.status, r.error, r.result)
        for r in await tm.task_repository.get_all_tasks_in_tree("root")
    }
    assert after == before


async def test_cancel_unknown_task_raises(tm: TaskManager) -> None:
    with pytest.raises(TaskNotFoundError):
        await tm.cancel_task("no-such-task")


# -- stored trees that are not running -----------------------------------------------------


async def test_cancel_stored_tree_that_is_not_running(tm: TaskManager) -> None:
    await tm.create_task_tree_from_array(
        [
            task("root", "test_noop"),
            task("a", "test_noop", parent="root"),
            task("b", "test_noop", parent="a"),
            task("c", "test_noop", parent="root", deps=["a"]),
        ]
    )
    await tm.task_repository.update_task("c", status=COMPLETED, result={"kept": True})

    cancelled = await tm.cancel_tree("root")

    assert cancelled == ["a", "b", "root"]
    rows = {r.id: r for r in await tm.task_repository.get_all_tasks_in_tree("root")}
    assert {i: r.status for i, r in rows.items()} == {
        "root": CANCELLED,
        "a": CANCELLED,
        "b": CANCELLED,
        "c": COMPLETED,
    }
    assert rows["c"].result == {"kept": True}
    assert rows["a"].error == "cancelled"
    assert await tm.cancel_tree("root") == []

    # Running it now does nothing: every task is finished.
    result = await guard(tm.execute_tree("root"))
    assert result.status == CANCELLED
    assert Recorder.calls == {}


async def test_cancel_stored_subtree_only(tm: TaskManager) -> None:
    await tm.create_task_tree_from_array(
        [
            task("root", "test_noop"),
            task("a", "test_noop", parent="root"),
            task("a1", "test_noop", parent="a"),
            task("b", "test_noop", parent="root"),
        ]
    )
    assert await tm.cancel_task("a") == ["a", "a1"]
    rows = {r.id: r.status for r in await tm.task_repository.get_all_tasks_in_tree("root")}
    assert rows == {"root": "pending", "a": CANCELLED, "a1": CANCELLED, "b": "pending"}


# -- what is left afterwards ---------------------------------------------------------------


async def test_nothing_left_in_progress_after_cancelling_a_busy_tree(
    tm: TaskManager, make_manager: Callable[[int], TaskManager]
) -> None:
    two = make_manager(2)
    tasks = [task("root")]  # a grouping task: ends at once, takes no slot
    for i in range(6):
        tasks.append(task(f"block{i}", "h_block", parent="root", priority=i % 4))
        tasks.append(task(f"dep{i}", "test_track", parent=f"block{i}", deps=[f"block{i}"]))
        tasks.append(task(f"opt{i}", "test_track", parent="root", deps=[(f"block{i}", False)]))
    run = await start(two, tasks)
    await guard(Probe.started("block0").wait())  # priority 0: these two hold both slots
    await guard(Probe.started("block4").wait())

    await two.cancel_tree("root")
    result = await guard(run)

    assert result.status == CANCELLED
    assert result.task("root").status == COMPLETED
    assert {o.status for o in result.tasks if o.name != "root"} == {CANCELLED}
    assert Recorder.calls == {}
    await assert_nothing_left_running(two, "root")
    stored = {r.id: r.status for r in await two.task_repository.get_all_tasks_in_tree("root")}
    assert stored == {o.id: o.status for o in result.tasks}


async def test_tree_finished_event_arrives_on_cancellation(tm: TaskManager) -> None:
    sub = tm.subscribe("root")
    events = asyncio.create_task(collect(sub))
    run = await start(
        tm, [task("root", "h_block"), task("child", "test_track", parent="root", deps=["root"])]
    )
    await guard(Probe.started("root").wait())

    await tm.cancel_tree("root")
    await guard(run)
    seen = await guard(events)

    assert seen[0].kind == EventKind.TREE_STARTED
    assert seen[-1].kind == EventKind.TREE_FINISHED
    assert seen[-1].status == CANCELLED
    assert [e.kind for e in seen].count(EventKind.TREE_FINISHED) == 1
    assert [e.status for e in by_task(seen, "root", EventKind.TASK_STATUS)] == [
        "in_progress",
        CANCELLED,
    ]
    assert [e.status for e in by_task(seen, "child", EventKind.TASK_STATUS)] == [CANCELLED]


async def test_cancelling_the_caller_of_a_run_does_not_leave_tasks_running(tm: TaskManager) -> None:
    # asyncio.wait_for(run_tasks(...), t), a closed HTTP request, Ctrl-C: when whoever awaits
    # a run is cancelled, the run must end too (every task ends, the final event arrives),
    # not go on unobserved with its tasks in progress.
    sub = tm.subscribe("root")
    events = asyncio.create_task(collect(sub))
    run = await start(tm, [task("root", "test_noop"), task("block", "h_block", parent="root")])
    await guard(Probe.started("block").wait())

    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    seen = await guard(events)

    assert seen[-1].kind == EventKind.TREE_FINISHED
    assert Probe.cancel_calls == ["block"]
    await tm.storage.flush()
    await assert_nothing_left_running(tm, "root")


# -- more corners --------------------------------------------------------------------------


async def test_cancel_task_with_a_timeout(tm: TaskManager) -> None:
    run = await start(
        tm,
        [
            task(
                "root",
                "h_block",
                timeout_seconds=60,
                retry={"max_attempts": 3, "backoff_seconds": 0.01},
            )
        ],
    )
    await guard(Probe.started("root").wait())
    await tm.cancel_task("root")
    result = await guard(run)
    assert result.task("root").status == CANCELLED
    assert result.task("root").attempts == 1
    assert Probe.interrupted == ["root"]


async def test_cancel_hook_that_raises_still_cancels(tm: TaskManager) -> None:
    run = await start(tm, [task("root", "h_bad_cancel")])
    await guard(Probe.started("root").wait())
    assert await tm.cancel_task("root") == ["root"]
    result = await guard(run)
    assert Probe.cancel_calls == ["root"]
    assert result.task("root").status == CANCELLED
    assert Probe.interrupted == ["root"]


async def test_cancelling_one_tree_leaves_another_alone(tm: TaskManager) -> None:
    first = await start(tm, [task("one", "h_block")])
    second = await start(tm, [task("two", "h_block")])
    await guard(Probe.started("one").wait())
    await guard(Probe.started("two").wait())

    await tm.cancel_tree("one")
    assert (await guard(first)).status == CANCELLED
    assert not second.done()
    Probe.release("two").set()
    assert (await guard(second)).status == COMPLETED
    assert Probe.interrupted == ["one"]


async def test_close_while_running_cancels_and_records(
    tm: TaskManager, make_manager: Callable[[int], TaskManager]
) -> None:
    other = make_manager(4)
    run = await start(
        other, [task("root", "h_block"), task("kid", "test_track", parent="root", deps=["root"])]
    )
    await guard(Probe.started("root").wait())

    await guard(other.close(close_storage=False))
    result = await guard(run)

    assert result.status == CANCELLED
    assert Probe.interrupted == ["root"]
    await assert_nothing_left_running(tm, "root")


async def test_cancel_landing_between_scheduling_and_start_of_a_task(tm: TaskManager) -> None:
    # White-box, deterministic version of a race: a cancel_task() whose continuation runs in
    # the same event-loop iteration in which the scheduler created the asyncio task of "y",
    # before that task ran its first step (so no executor exists yet). The cancelled task must
    # not run its executor (h_block would then wait forever).
    loop = asyncio.get_running_loop()

    def cancel_y_now() -> None:
        coro = tm._runs["root"].cancel({"y"})
        try:
            coro.send(None)
        except StopIteration:
            return
        coro.close()
        raise AssertionError("TreeRun.cancel suspended; the scenario no longer applies")

    def on_event(event: TaskEvent) -> None:
        if event.task_id == "x" and event.status == COMPLETED:
            loop.call_soon(cancel_y_now)  # runs before y's first step: queued earlier

    tm.add_listener(on_event)
    result = await guard(
        tm.run_tasks(
            [
                task("root"),
                task("x", "test_noop", parent="root"),
                task("y", "h_block", parent="root", deps=["x"]),
            ]
        )
    )

    assert result.task("y").status == CANCELLED
    assert Probe.executions == {}  # the executor of y never ran


async def test_caller_cancelled_while_tree_started_hook_awaits_still_ends_the_tree(
    tm: TaskManager,
) -> None:
    # The final event is always present: also when the caller gives up while an async
    # on_tree_started hook is still running (before any task started).
    hook_entered = asyncio.Event()

    async def slow_hook(root: TaskModel) -> None:
        hook_entered.set()
        await asyncio.sleep(30)

    register_task_tree_hook("on_tree_started", slow_hook)
    sub = tm.subscribe("root")
    events = asyncio.create_task(collect(sub))
    run = await start(tm, [task("root", "test_track"), task("kid", "test_track", parent="root")])
    await guard(hook_entered.wait())

    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    seen = await guard(events)  # a hang here: no tree_finished was published

    assert seen[-1].kind == EventKind.TREE_FINISHED
    assert Recorder.calls == {}
    await tm.storage.flush()
    await assert_nothing_left_running(tm, "root")


async def test_cancel_while_post_hooks_run_keeps_its_word(tm: TaskManager) -> None:
    # cancel_task() returns the ids it cancelled: each of them must end cancelled, also when
    # the cancel lands while the task's (async) post-hooks are still running.
    in_hook = asyncio.Event()
    go_on = asyncio.Event()

    async def post(t: TaskModel, inputs: dict[str, Any], result: Any) -> None:
        if t.name == "x":
            in_hook.set()
            await go_on.wait()

    register_post_hook(post)
    run = await start(
        tm,
        [
            task("root", "test_noop"),
            task("x", "test_noop", parent="root"),
            task("after_x", "test_track", parent="root", deps=["x"]),
        ],
    )
    await guard(in_hook.wait())
    returned = await tm.cancel_task("x")
    go_on.set()
    result = await guard(run)

    for task_id in returned:
        assert result.task(task_id).status == CANCELLED, task_id
    if "x" not in returned:
        assert result.task("x").status == COMPLETED
        assert result.task("after_x").status == COMPLETED
