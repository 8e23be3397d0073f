"""Re-execution: rerun all, rerun failed (and what depends on it), results kept until replaced,
re-distributing a finished tree, concurrent runs of one root, attempts reset."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aipartnerupflow.core.errors import AipartnerupflowError, TaskNotFoundError
from aipartnerupflow.core.manager import TaskManager
from aipartnerupflow.core.registry import ExecutorRegistry
from aipartnerupflow.core.status import TaskStatus
from aipartnerupflow.core.tree import TaskTreeNode

from ._engine_helpers import Probe, guard, register_helpers, task

COMPLETED = TaskStatus.COMPLETED.value
FAILED = TaskStatus.FAILED.value
CANCELLED = TaskStatus.CANCELLED.value
PENDING = TaskStatus.PENDING.value
ALL = ["root", "a", "b", "c", "e", "d", "f"]


@pytest.fixture
def tm(manager: TaskManager, registry: ExecutorRegistry) -> TaskManager:
    Probe.reset()
    register_helpers(registry)
    Probe.repo = manager.task_repository
    return manager


def diamond() -> list[dict[str, Any]]:
    """root; a; b needs a; c needs b; e likes b (optional); d unrelated; f needs d and c."""
    return [
        task("root", "h_count"),
        task("a", "h_count", parent="root"),
        task("b", "h_count", parent="root", deps=["a"]),
        task("c", "h_count", parent="b", deps=["b"]),
        task("e", "h_count", parent="root", deps=[("b", False)]),
        task("d", "h_count", parent="root"),
        task("f", "h_count", parent="root", deps=["d", "c"]),
    ]


async def stored(tm: TaskManager, root: str = "root") -> dict[str, Any]:
    return {r.id: r for r in await tm.task_repository.get_all_tasks_in_tree(root)}


# -- rerun="all" ---------------------------------------------------------------------------


async def test_rerun_all_executes_every_task_again(tm: TaskManager) -> None:
    first = await guard(tm.run_tasks(diamond()))
    assert first.status == COMPLETED
    assert Probe.executions == dict.fromkeys(ALL, 1)

    again = await guard(tm.execute_tree("root", rerun="all"))

    assert again.status == COMPLETED
    assert Probe.executions == dict.fromkeys(ALL, 2)
    assert {o.name: o.result["run"] for o in again.tasks} == dict.fromkeys(ALL, 2)
    assert {o.name: o.attempts for o in again.tasks} == dict.fromkeys(ALL, 1)
    rows = await stored(tm)
    assert {i: (r.status, r.result["run"], r.attempts) for i, r in rows.items()} == {
        i: (COMPLETED, 2, 1) for i in ALL
    }


async def test_rerun_none_of_a_finished_tree_runs_nothing(tm: TaskManager) -> None:
    await guard(tm.run_tasks(diamond()))
    again = await guard(tm.execute_tree("root"))
    assert again.status == COMPLETED
    assert set(Probe.executions.values()) == {1}
    assert again.task("f").result["run"] == 1


async def test_rerun_all_of_a_failed_tree(tm: TaskManager) -> None:
    Probe.fail = {"a"}
    first = await guard(tm.run_tasks(diamond()))
    assert first.status == FAILED
    Probe.fail = set()
    again = await guard(tm.execute_tree("root", rerun="all"))
    assert again.status == COMPLETED
    # first run: a failed, so b, c and f never ran; e ran (optional dependency)
    assert Probe.executions == {"root": 2, "a": 2, "b": 1, "c": 1, "e": 2, "d": 2, "f": 1}


# -- rerun="failed" ------------------------------------------------------------------------


async def test_rerun_failed_runs_failed_tasks_and_their_dependents_only(tm: TaskManager) -> None:
    Probe.fail = {"b"}
    first = await guard(tm.run_tasks(diamond()))
    assert {o.name: o.status for o in first.tasks} == {
        "root": COMPLETED,
        "a": COMPLETED,
        "b": FAILED,
        "c": FAILED,
        "e": COMPLETED,
        "d": COMPLETED,
        "f": FAILED,
    }
    assert Probe.executions == {"root": 1, "a": 1, "b": 1, "e": 1, "d": 1}
    kept = {i: r.result for i, r in (await stored(tm)).items() if i in ("root", "a", "d")}

    Probe.fail = set()
    again = await guard(tm.execute_tree("root", rerun="failed"))

    assert again.status == COMPLETED
    # b failed; c and f depend on it (f through c); e depends on it optionally
    assert Probe.executions == {"root": 1, "a": 1, "d": 1, "b": 2, "c": 1, "e": 2, "f": 1}
    rows = await stored(tm)
    for i in ("root", "a", "d"):
        assert rows[i].result == kept[i]
        assert rows[i].attempts == 1
    assert again.task("a").result == kept["a"]
    # a rerun dependent sees both the rerun dependency and the kept one
    assert again.task("f").result["deps"] == ["c", "d"]
    assert again.task("b").result["run"] == 2
    assert again.task("b").attempts == 1


async def test_rerun_failed_when_nothing_failed_runs_nothing(tm: TaskManager) -> None:
    await guard(tm.run_tasks(diamond()))
    again = await guard(tm.execute_tree("root", rerun="failed"))
    assert again.status == COMPLETED
    assert set(Probe.executions.values()) == {1}


async def test_rerun_failed_includes_cancelled_tasks(tm: TaskManager) -> None:
    tree = await tm.create_task_tree_from_array(
        [
            task("root", "h_count"),
            task("slow", "h_block", parent="root"),
            task("after", "h_count", parent="root", deps=["slow"]),
            task("other", "h_count", parent="root"),
        ]
    )
    run = asyncio.create_task(tm.distribute_task_tree(tree))
    await guard(Probe.started("slow").wait())
    await tm.cancel_task("slow")
    first = await guard(run)
    assert first.task("slow").status == CANCELLED
    assert first.task("after").status == CANCELLED

    Probe.release("slow").set()
    again = await guard(tm.execute_tree("root", rerun="failed"))

    assert again.status == COMPLETED
    assert Probe.executions == {"root": 1, "other": 1, "slow": 2, "after": 1}
    assert again.task("slow").result == {"released": "slow"}


async def test_rerun_failed_a_second_time_keeps_earlier_successes(tm: TaskManager) -> None:
    Probe.fail = {"b", "d"}
    await guard(tm.run_tasks(diamond()))
    Probe.fail = {"d"}
    second = await guard(tm.execute_tree("root", rerun="failed"))
    assert {o.name for o in second.tasks if o.status != COMPLETED} == {"d", "f"}
    Probe.fail = set()
    third = await guard(tm.execute_tree("root", rerun="failed"))
    assert third.status == COMPLETED
    assert Probe.executions == {"root": 1, "a": 1, "b": 2, "c": 1, "e": 2, "d": 3, "f": 1}


# -- results stay until replaced -----------------------------------------------------------


async def test_previous_result_stays_in_storage_while_the_task_reruns(tm: TaskManager) -> None:
    await guard(
        tm.run_tasks(
            [
                task("root", "h_count", inputs={"peek": True}),
                task("kid", "h_count", parent="root", deps=["root"], inputs={"peek": True}),
            ]
        )
    )
    assert Probe.peeks["root"][0]["result"] is None  # nothing before the first run

    again = await guard(tm.execute_tree("root", rerun="all"))

    assert again.status == COMPLETED
    # seen from inside the second execute(): the first run's result is still stored
    assert Probe.peeks["root"][1]["result"]["run"] == 1
    assert Probe.peeks["kid"][1]["result"]["run"] == 1
    assert Probe.peeks["root"][1]["status"] in ("pending", "in_progress")
    rows = await stored(tm)
    assert rows["root"].result["run"] == 2
    assert rows["kid"].result["run"] == 2


async def test_failed_then_rerun_task_keeps_its_earlier_result_until_replaced(
    tm: TaskManager,
) -> None:
    spec = [task("root", "h_count", inputs={"peek": True})]
    await guard(tm.run_tasks(spec))  # run 1: completed, result run=1
    Probe.fail = {"root"}
    failed = await guard(tm.execute_tree("root", rerun="all"))  # run 2: fails
    assert failed.status == FAILED
    row = (await stored(tm))["root"]
    assert row.status == FAILED
    assert row.result == {"name": "root", "run": 1, "deps": []}  # not replaced by a failure

    Probe.fail = set()
    again = await guard(tm.execute_tree("root", rerun="failed"))  # run 3
    assert again.status == COMPLETED
    assert Probe.peeks["root"][2]["result"]["run"] == 1
    assert again.task("root").result["run"] == 3


async def test_dependent_of_kept_task_gets_the_kept_result(tm: TaskManager) -> None:
    await guard(
        tm.run_tasks(
            [
                task("root", "h_count"),
                task("make", "h_count", parent="root"),
                task("use", "test_track", parent="root", deps=["make"], inputs={"fail": True}),
            ]
        )
    )
    await tm.task_repository.update_task("use", inputs={})  # fixed by the user
    again = await guard(tm.execute_tree("root", rerun="failed"))
    assert again.status == COMPLETED
    assert again.task("use").result == {"name": "use", "value": None}
    assert Probe.executions == {"root": 1, "make": 1}


# -- distribute_task_tree of a finished tree -----------------------------------------------


async def test_distribute_finished_tree_reruns_all(tm: TaskManager) -> None:
    tree = await tm.create_task_tree_from_array(diamond())
    first = await guard(tm.distribute_task_tree(tree))
    assert first.status == COMPLETED

    second = await guard(tm.distribute_task_tree(tree))
    assert second.status == COMPLETED
    assert set(Probe.executions.values()) == {2}

    rebuilt = await tm.task_repository.build_task_tree("root")
    assert isinstance(rebuilt, TaskTreeNode)
    third = await guard(tm.distribute_task_tree(rebuilt))
    assert third.status == COMPLETED
    assert set(Probe.executions.values()) == {3}
    assert {o.attempts for o in third.tasks} == {1}


async def test_distribute_failed_tree_reruns_all(tm: TaskManager) -> None:
    Probe.fail = {"d"}
    tree = await tm.create_task_tree_from_array(diamond())
    assert (await guard(tm.distribute_task_tree(tree))).status == FAILED
    Probe.fail = set()
    again = await guard(tm.distribute_task_tree(tree))
    assert again.status == COMPLETED
    assert Probe.executions["a"] == 2
    assert Probe.executions["d"] == 2


# -- concurrent runs of one root -----------------------------------------------------------


async def test_running_the_same_root_twice_concurrently_raises(
    tm: TaskManager, registry: ExecutorRegistry
) -> None:
    tree = await tm.create_task_tree_from_array(
        [task("root", "h_block"), task("kid", "h_count", parent="root")]
    )
    run = asyncio.create_task(tm.distribute_task_tree(tree))
    await guard(Probe.started("root").wait())

    with pytest.raises(AipartnerupflowError, match="already running"):
        await tm.execute_tree("root", rerun="all")
    with pytest.raises(AipartnerupflowError, match="already running"):
        await tm.execute_tree("root", rerun="failed")
    with pytest.raises(AipartnerupflowError, match="already running"):
        await tm.distribute_task_tree(tree)
    rebuilt = await tm.task_repository.build_task_tree("root")
    with pytest.raises(AipartnerupflowError, match="already running"):
        await tm.distribute_task_tree(rebuilt)
    other = TaskManager(tm.storage, registry=registry)
    try:
        with pytest.raises(AipartnerupflowError, match="already running"):
            await other.execute_tree("root", rerun="all")
    finally:
        await other.close(close_storage=False)

    Probe.release("root").set()
    result = await guard(run)
    assert result.status == COMPLETED
    assert Probe.executions == {"root": 1, "kid": 1}  # the refused runs changed nothing
    rows = await stored(tm)
    assert {r.status for r in rows.values()} == {COMPLETED}
    assert {r.attempts for r in rows.values()} == {1}

    # once it is over, it can run again
    again = await guard(tm.execute_tree("root", rerun="all"))
    assert again.status == COMPLETED


async def test_two_concurrent_reruns_one_wins(tm: TaskManager) -> None:
    await guard(tm.run_tasks(diamond()))
    outcomes = await guard(
        asyncio.gather(
            tm.execute_tree("root", rerun="all"),
            tm.execute_tree("root", rerun="all"),
            return_exceptions=True,
        )
    )
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    results = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(results) == 1
    assert len(errors) == 1
    assert isinstance(errors[0], AipartnerupflowError)
    assert results[0].status == COMPLETED
    assert set(Probe.executions.values()) == {2}


# -- attempts ------------------------------------------------------------------------------


async def test_attempts_reset_on_rerun(tm: TaskManager) -> None:
    spec = [
        task(
            "root",
            "test_flaky",
            inputs={"succeed_on": 2},
            retry={"max_attempts": 3, "backoff_seconds": 0.01},
        )
    ]
    first = await guard(tm.run_tasks(spec))
    assert first.task("root").attempts == 2
    assert first.task("root").result == {"attempt": 2}

    again = await guard(tm.execute_tree("root", rerun="all"))
    assert again.task("root").attempts == 2
    assert again.task("root").result == {"attempt": 2}  # context.attempt restarted at 1
    row = (await stored(tm))["root"]
    assert row.attempts == 2


async def test_attempts_reset_on_rerun_failed(tm: TaskManager) -> None:
    spec = [
        task("root", "h_count"),
        task("bad", "h_fail", parent="root", retry={"max_attempts": 2, "backoff_seconds": 0.01}),
    ]
    first = await guard(tm.run_tasks(spec))
    assert first.task("bad").attempts == 2
    assert "after 2 attempts" in (first.task("bad").error or "")
    again = await guard(tm.execute_tree("root", rerun="failed"))
    assert again.task("bad").attempts == 2
    assert again.task("root").attempts == 1
    assert Probe.executions == {"root": 1, "bad": 4}


# -- bad calls -----------------------------------------------------------------------------


async def test_rerun_mode_must_be_known(tm: TaskManager) -> None:
    await guard(tm.run_tasks([task("root", "h_count")]))
    with pytest.raises(ValueError, match="rerun"):
        await tm.execute_tree("root", rerun="some")  # type: ignore[arg-type]
    # the refused call leaves the tree runnable
    again = await guard(tm.execute_tree("root", rerun="all"))
    assert again.status == COMPLETED


async def test_execute_unknown_or_non_root_tree_raises(tm: TaskManager) -> None:
    with pytest.raises(TaskNotFoundError):
        await tm.execute_tree("nope", rerun="all")
    await guard(tm.run_tasks([task("root", "h_count"), task("kid", "h_count", parent="root")]))
    # not "parent 'root' is not in the tree": say that kid is not a root
    with pytest.raises(TaskNotFoundError, match="kid"):
        await tm.execute_tree("kid", rerun="all")


async def test_rerun_all_then_stored_rows_have_no_stale_error(tm: TaskManager) -> None:
    Probe.fail = {"a"}
    await guard(tm.run_tasks(diamond()))
    Probe.fail = set()
    await guard(tm.execute_tree("root", rerun="all"))
    rows = await stored(tm)
    assert {i: (r.status, r.error) for i, r in rows.items()} == {i: (COMPLETED, None) for i in rows}
    assert all(r.progress == 1.0 for r in rows.values())
    assert PENDING not in {r.status for r in rows.values()}
