"""Execution semantics: priorities, concurrency, failures, retries, timeouts, inputs."""

from __future__ import annotations

from typing import Any

from aipartnerupflow.core.manager import TaskManager
from aipartnerupflow.core.storage import create_session

from ._executors import Recorder


def _track(ident: str, **fields: Any) -> dict[str, Any]:
    return {"id": ident, "name": ident, "schemas": {"method": "test_track"}, **fields}


async def test_results_and_tree_status(manager: TaskManager) -> None:
    result = await manager.run_tasks(
        [_track("root", inputs={"value": 1}), _track("a", parent_id="root", inputs={"value": 2})]
    )
    assert result.status == "completed" and result.ok
    assert result.task("a").result == {"name": "a", "value": 2}
    assert result.to_dict()["tasks"][0] == {
        "id": "root",
        "name": "root",
        "status": "completed",
        "result": {"name": "root", "value": 1},
        "error": None,
    }
    stored = await manager.task_repository.get_task_by_id("a")
    assert stored is not None and stored.status == "completed" and stored.progress == 1.0
    assert stored.result == {"name": "a", "value": 2} and stored.attempts == 1
    assert stored.started_at is not None and stored.completed_at is not None


async def test_priority_zero_runs_first_then_submission_order(
    manager: TaskManager, recorder: type[Recorder]
) -> None:
    manager.scheduler.max_concurrency = 1
    await manager.run_tasks(
        [
            _track("root", priority=3),
            _track("low", parent_id="root", priority=3),
            _track("urgent", parent_id="root", priority=0),
            _track("mid1", parent_id="root", priority=1),
            _track("mid2", parent_id="root", priority=1),
        ]
    )
    assert recorder.starts == ["urgent", "mid1", "mid2", "root", "low"]


async def test_concurrency_is_bounded(manager: TaskManager, recorder: type[Recorder]) -> None:
    manager.scheduler.max_concurrency = 3
    tasks = [_track("root")] + [
        _track(f"t{i}", parent_id="root", inputs={"sleep": 0.02}) for i in range(12)
    ]
    result = await manager.run_tasks(tasks)
    assert result.ok and recorder.peak == 3


async def test_children_do_not_wait_for_their_parent(
    manager: TaskManager, recorder: type[Recorder]
) -> None:
    await manager.run_tasks(
        [_track("root", inputs={"sleep": 0.2}), _track("child", parent_id="root")]
    )
    assert recorder.ends[0] == "child"


async def test_dependencies_order_execution_and_merge_results(
    manager: TaskManager, recorder: type[Recorder]
) -> None:
    result = await manager.run_tasks(
        [
            _track("root"),
            _track("a", parent_id="root", inputs={"value": "A", "sleep": 0.05}),
            _track("b", parent_id="root", dependencies=["a"], inputs={"own": 1}),
        ]
    )
    assert result.ok
    assert recorder.starts.index("b") > recorder.ends.index("a")
    assert recorder.inputs["b"] == {"own": 1, "a": {"name": "a", "value": "A"}}
    stored = await manager.task_repository.get_task_by_id("b")
    assert stored is not None and stored.inputs == {"own": 1}, "definition stays as written"


async def test_input_schema_fields_are_copied_from_dependency_results(manager: TaskManager) -> None:
    result = await manager.run_tasks(
        [
            {
                "id": "root",
                "name": "root",
                "schemas": {"method": "test_noop"},
                "inputs": {"echo": "https://x"},
            },
            {
                "id": "s",
                "name": "s",
                "parent_id": "root",
                "dependencies": ["root"],
                "schemas": {
                    "method": "test_schema",
                    "input_schema": {"type": "object", "properties": {"url": {"type": "string"}}},
                },
                "inputs": {"count": 3},
            },
            {
                "id": "m",
                "name": "m",
                "parent_id": "root",
                "dependencies": ["root"],
                "schemas": {"method": "test_track"},
            },
        ]
    )
    assert result.task("s").status == "failed"
    assert result.task("s").error == (
        "inputs do not match the input schema of 'test_schema': input 'url' is required but missing"
    )
    result2 = await manager.run_tasks(
        [
            {"id": "r2", "name": "r2", "schemas": {"method": "test_track"}, "inputs": {"value": 5}},
            {
                "id": "s2",
                "name": "s2",
                "parent_id": "r2",
                "dependencies": ["r2"],
                "schemas": {
                    "method": "test_schema",
                    "input_schema": {"type": "object", "properties": {"name": {}, "url": {}}},
                },
                "inputs": {"url": "u"},
            },
        ]
    )
    assert result2.ok and result2.task("s2").result == {"url": "u", "count": None}


async def test_failed_required_dependency_fails_dependents_with_reason(
    manager: TaskManager, recorder: type[Recorder]
) -> None:
    result = await manager.run_tasks(
        [
            _track("root"),
            _track("bad", parent_id="root", inputs={"fail": True}),
            _track("dep", parent_id="root", dependencies=["bad"]),
            _track("dep2", parent_id="root", dependencies=["dep"]),
        ]
    )
    assert result.status == "failed"
    assert result.task("bad").error == "RuntimeError: bad was told to fail"
    assert result.task("dep").status == "failed"
    assert result.task("dep").error == (
        "dependency 'bad' (bad) failed: RuntimeError: bad was told to fail"
    )
    assert (result.task("dep2").error or "").startswith("dependency 'dep' (dep) failed")
    assert "dep" not in recorder.starts and "dep2" not in recorder.starts
    assert result.task("root").status == "completed"


async def test_optional_dependency_waits_then_runs_whatever_the_outcome(
    manager: TaskManager, recorder: type[Recorder]
) -> None:
    result = await manager.run_tasks(
        [
            _track("root"),
            _track("bad", parent_id="root", inputs={"fail": True, "sleep": 0.05}),
            _track("opt", parent_id="root", dependencies=[{"id": "bad", "required": False}]),
        ]
    )
    assert result.task("opt").status == "completed"
    assert recorder.starts.index("opt") > recorder.ends.index("bad")
    assert "bad" not in recorder.inputs["opt"], "a failed dependency has no result to merge"
    assert result.status == "failed"


async def test_explicit_failure_results_fail_the_task(manager: TaskManager) -> None:
    result = await manager.run_tasks(
        [
            {"id": "root", "name": "root", "schemas": {"method": "test_explicit_failure"}},
            {
                "id": "b",
                "name": "b",
                "parent_id": "root",
                "schemas": {"method": "test_explicit_failure"},
                "inputs": {"style": "success"},
            },
        ]
    )
    assert result.task("root").status == "failed"
    assert result.task("root").error == "quota exceeded"
    assert result.task("b").error == "remote said no"


async def test_unserialisable_result_fails_instead_of_hanging(manager: TaskManager) -> None:
    result = await manager.run_tasks(
        [{"id": "root", "name": "root", "schemas": {"method": "test_unserialisable"}}]
    )
    assert result.status == "failed"
    assert (result.task("root").error or "").startswith(
        "executor 'test_unserialisable' returned a result that is not JSON-serialisable (dict)"
    )
    stored = await manager.task_repository.get_task_by_id("root")
    assert stored is not None and stored.status == "failed"


async def test_retries_with_backoff_until_success(manager: TaskManager) -> None:
    result = await manager.run_tasks(
        [
            {
                "id": "root",
                "name": "root",
                "schemas": {"method": "test_flaky"},
                "inputs": {"succeed_on": 3},
                "retry": {"max_attempts": 4, "backoff_seconds": 0.01},
            }
        ]
    )
    assert result.ok and result.task("root").result == {"attempt": 3}
    assert result.task("root").attempts == 3


async def test_retries_exhausted(manager: TaskManager) -> None:
    result = await manager.run_tasks(
        [
            {
                "id": "root",
                "name": "root",
                "schemas": {"method": "test_flaky"},
                "inputs": {"succeed_on": 9},
                "retry": {"max_attempts": 2, "backoff_seconds": 0.01},
            }
        ]
    )
    assert result.task("root").error == "ConnectionError: attempt 2 failed (after 2 attempts)"
    assert result.task("root").attempts == 2


async def test_timeout_fails_the_task(manager: TaskManager) -> None:
    result = await manager.run_tasks(
        [
            {
                "id": "root",
                "name": "root",
                "schemas": {"method": "test_sleep"},
                "inputs": {"seconds": 30},
                "timeout_seconds": 0.1,
            }
        ]
    )
    assert result.status == "failed"
    assert result.task("root").error == "timed out after 0.1s"


async def test_input_validation_at_run_time_names_the_field(manager: TaskManager) -> None:
    result = await manager.run_tasks(
        [
            _track("root", inputs={"value": 1}),
            {
                "id": "s",
                "name": "s",
                "parent_id": "root",
                "dependencies": ["root"],
                "schemas": {"method": "test_schema"},
                "inputs": {"url": "x", "count": "many"},
            },
        ]
    )
    assert result.task("s").error == (
        "inputs do not match the input schema of 'test_schema': "
        "input 'count': must be of type integer"
    )


async def test_params_are_constructor_arguments(manager: TaskManager) -> None:
    result = await manager.run_tasks(
        [
            {
                "id": "root",
                "name": "root",
                "schemas": {"method": "test_params"},
                "params": {"greeting": "hi"},
                "inputs": {"who": "ada"},
            }
        ]
    )
    assert result.task("root").result == "hi ada"


async def test_grouping_task_without_executor_completes(manager: TaskManager) -> None:
    result = await manager.run_tasks(
        [{"id": "group", "name": "group"}, _track("a", parent_id="group")]
    )
    assert result.ok and result.task("group").result is None


async def test_legacy_executor_id_in_params_and_name_as_method(manager: TaskManager) -> None:
    result = await manager.run_tasks(
        [
            {
                "id": "root",
                "name": "root",
                "params": {"executor_id": "test_noop"},
                "inputs": {"echo": 1},
            },
            {"id": "n", "name": "test_noop", "parent_id": "root", "inputs": {"echo": 2}},
        ]
    )
    assert result.task("root").result == {"echo": 1}
    assert result.task("n").result == {"echo": 2}


async def test_many_trees_share_one_manager(manager: TaskManager) -> None:
    import asyncio

    results = await asyncio.gather(
        *[
            manager.run_tasks([_track(f"r{i}"), _track(f"c{i}", parent_id=f"r{i}")])
            for i in range(5)
        ]
    )
    assert all(r.ok for r in results)


async def test_same_suite_on_a_fresh_file_store(tmp_path: Any, registry: Any) -> None:
    url = f"duckdb:///{tmp_path / 'x.duckdb'}"
    async with TaskManager(create_session(url), registry=registry) as tm:
        result = await tm.run_tasks([_track("root")])
        assert result.ok
    async with TaskManager(create_session(url), registry=registry) as tm:
        stored = await tm.task_repository.get_task_by_id("root")
        assert stored is not None and stored.status == "completed"


async def test_schema_errors_never_quote_the_value(manager: TaskManager) -> None:
    secret = "Bearer s3cr3t-token"
    result = await manager.run_tasks(
        [
            _track("root", inputs={"value": 1}),
            {
                "id": "s",
                "name": "s",
                "parent_id": "root",
                "dependencies": ["root"],
                "schemas": {"method": "test_schema"},
                "inputs": {"url": ["x"], "count": secret},
            },
        ]
    )
    error = result.task("s").error
    assert error is not None and secret not in error and "s3cr3t" not in error
