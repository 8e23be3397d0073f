"""TaskService: the shared bad-input corpus, updates, ownership, ids, hooks and run states."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from aipartnerupflow.core.errors import (
    AipartnerupflowError,
    TaskConflictError,
    TaskNotFoundError,
    ValidationError,
)
from aipartnerupflow.core.hooks import clear_hooks, register_task_tree_hook
from aipartnerupflow.core.limits import TaskLimits
from aipartnerupflow.core.manager import TaskManager
from aipartnerupflow.core.models import TaskModel
from aipartnerupflow.core.registry import ExecutorRegistry
from aipartnerupflow.core.service import TaskCaller, TaskService, params_schema
from aipartnerupflow.core.storage import create_session
from aipartnerupflow.core.tree import TaskTreeNode
from aipartnerupflow.testing.bad_inputs import (
    CREATE_CASES,
    EXECUTOR,
    UPDATE_CASES,
    BadCreate,
    BadUpdate,
    base_tree,
)


@pytest.fixture
async def tm(registry: ExecutorRegistry) -> AsyncIterator[TaskManager]:
    clear_hooks()
    manager = TaskManager(create_session("duckdb:///:memory:"), registry=registry)
    yield manager
    await manager.close()
    clear_hooks()


def _service(tm: TaskManager, user: str | None = None) -> TaskService:
    return TaskService(tm, TaskCaller.user(user) if user else TaskCaller.system())


async def _snapshot(tm: TaskManager) -> list[dict[str, Any]]:
    page = await _service(tm).list_tasks({"root_only": False, "limit": 1000})
    return sorted((t.to_dict() for t in page.tasks), key=lambda d: d["id"])


# -- the corpus ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", CREATE_CASES, ids=lambda c: c.name)
async def test_creation_refuses_the_corpus_and_writes_nothing(
    tm: TaskManager, case: BadCreate
) -> None:
    before = await _snapshot(tm)
    with pytest.raises(ValidationError) as info:
        await _service(tm).create({"tasks": case.tasks("c-")})
    assert case.expect in str(info.value)
    assert await _snapshot(tm) == before


@pytest.mark.parametrize("case", UPDATE_CASES, ids=lambda c: c.name)
async def test_update_refuses_the_corpus_and_changes_nothing(
    tm: TaskManager, case: BadUpdate
) -> None:
    service = _service(tm)
    await service.create({"tasks": base_tree("u-")})
    before = await _snapshot(tm)
    with pytest.raises(ValidationError) as info:
        await service.update({"task_id": "u-a", **case.fields("u-")})
    assert case.expect in str(info.value)
    assert await _snapshot(tm) == before


@pytest.mark.parametrize(
    "case",
    [c for c in UPDATE_CASES if c.name not in ("structural_field", "unknown_field", "reparent")],
    ids=lambda c: c.name,
)
async def test_repository_update_task_runs_the_same_checks(
    tm: TaskManager, case: BadUpdate
) -> None:
    await _service(tm).create({"tasks": base_tree("r-")})
    before = await _snapshot(tm)
    with pytest.raises(ValidationError):
        await tm.task_repository.update_task("r-a", **case.fields("r-"))
    assert await _snapshot(tm) == before


async def test_repository_refuses_reparenting_instead_of_corrupting_the_tree(
    tm: TaskManager,
) -> None:
    await _service(tm).create({"tasks": base_tree("m-")})
    with pytest.raises(ValidationError, match="parent_id cannot be changed"):
        await tm.task_repository.update_task("m-b", parent_id="m-a")
    stored = await tm.task_repository.get_task_by_id("m-b")
    assert stored is not None and stored.parent_id == "m-root"


# -- updates ------------------------------------------------------------------------------


async def test_plain_string_dependencies_are_normalised_and_the_tree_runs(
    tm: TaskManager,
) -> None:
    service = _service(tm)
    await service.create(
        {
            "tasks": [
                {"id": "root", "name": "root", "schemas": {"method": EXECUTOR}},
                {"id": "x", "name": "x", "parent_id": "root", "schemas": {"method": EXECUTOR}},
                {"id": "y", "name": "y", "parent_id": "root", "schemas": {"method": EXECUTOR}},
            ]
        }
    )
    updated = await service.update({"task_id": "y", "dependencies": ["x"], "priority": 0})
    assert updated.dependencies == [{"id": "x", "required": True}]
    by_name = await service.update({"task_id": "root", "dependencies": ["y"]})
    assert by_name.dependencies == [{"id": "y", "required": True}]
    result = await service.execute({"task_id": "root"})
    assert result.status == "completed", result.to_dict()
    assert result.task("y").result == {"results": {"x": {"results": {}, "count": 0}}, "count": 1}


async def test_completed_and_running_tasks_cannot_be_edited(tm: TaskManager) -> None:
    service = _service(tm)
    await service.create({"tasks": base_tree("d-")})
    assert (await service.execute({"task_id": "d-root"})).status == "completed"
    with pytest.raises(TaskConflictError, match="completed and cannot be edited"):
        await service.update({"task_id": "d-a", "priority": 0})
    reset = await service.update({"task_id": "d-a", "status": "pending", "priority": 0})
    assert (reset.status, reset.priority, reset.result) == ("pending", 0, None)
    await tm.task_repository.update_task("d-b", status="in_progress")
    with pytest.raises(TaskConflictError, match="running"):
        await service.update({"task_id": "d-b", "name": "renamed"})
    with pytest.raises(TaskConflictError, match="cannot change from 'in_progress'"):
        await service.update({"task_id": "d-b", "status": "pending"})


async def test_status_transitions_are_checked(tm: TaskManager) -> None:
    service = _service(tm)
    await service.create({"tasks": base_tree("s-")})
    with pytest.raises(TaskConflictError, match="allowed: cancelled"):
        await service.update({"task_id": "s-a", "status": "completed"})
    assert (await service.update({"task_id": "s-a", "status": "cancelled"})).status == "cancelled"
    with pytest.raises(ValidationError, match="nothing to change"):
        await service.update({"task_id": "s-a"})


# -- ownership and ids --------------------------------------------------------------------


async def test_another_users_task_is_answered_like_a_missing_one(tm: TaskManager) -> None:
    alice, bob = _service(tm, "alice"), _service(tm, "bob")
    await alice.create({"tasks": base_tree("iso-")})
    answers = []
    for task_id in ("iso-a", "never-was"):
        for call in (
            lambda i: bob.get({"task_id": i}),
            lambda i: bob.tree({"task_id": i}),
            lambda i: bob.update({"task_id": i, "priority": 1}),
            lambda i: bob.delete({"task_id": i}),
            lambda i: bob.copy({"task_id": i}),
            lambda i: bob.execute({"task_id": i}),
        ):
            with pytest.raises(TaskNotFoundError) as info:
                await call(task_id)
            answers.append(str(info.value).replace(task_id, "ID"))
    half = len(answers) // 2
    assert answers[:half] == answers[half:]
    assert (await bob.cancel({"task_id": "iso-a"}))[0].status == "not_found"
    assert (await bob.list_tasks()).tasks == []
    assert (await bob.list_tasks({"user_id": "alice"})).tasks == []
    with pytest.raises(ValidationError, match="authenticated user"):
        await bob.create({"tasks": [{"name": "x", "user_id": "alice", "schemas": {}}]})


async def test_taken_ids_get_fresh_ids_whoever_holds_them(tm: TaskManager) -> None:
    alice, bob = _service(tm, "alice"), _service(tm, "bob")
    await alice.create({"tasks": base_tree("id-")})
    await bob.create({"tasks": [{"id": "mine", "name": "m", "schemas": {"method": EXECUTOR}}]})
    theirs = await bob.create({"tasks": base_tree("id-")})
    own = await bob.create(
        {"tasks": [{"id": "mine", "name": "m", "schemas": {"method": EXECUTOR}}]}
    )
    assert set(theirs.renamed) == {"id-root", "id-a", "id-b"}
    assert set(own.renamed) == {"mine"}
    copy = {t.id: t for t in theirs.tree.tasks()}
    b = copy[theirs.renamed["id-b"]]
    assert b.dependencies == [{"id": theirs.renamed["id-a"], "required": True}]
    assert b.user_id == "bob"
    original = await alice.get({"task_id": "id-root"})
    assert original.user_id == "alice"  # untouched
    with pytest.raises(AipartnerupflowError, match="already exist") as first:
        await bob.create({"tasks": base_tree("id-")[:1], "id_conflict": "fail"})
    with pytest.raises(AipartnerupflowError, match="already exist") as second:
        await bob.create(
            {
                "tasks": [{"id": "mine", "name": "m", "schemas": {"method": EXECUTOR}}],
                "id_conflict": "fail",
            }
        )
    assert str(first.value).replace("id-root", "X") == str(second.value).replace("mine", "X")


# -- limits, parameters, listing ----------------------------------------------------------


async def test_limits_are_checked_before_writing(tm: TaskManager) -> None:
    small = TaskService(tm, TaskCaller.system(), limits=TaskLimits(max_tasks=2))
    with pytest.raises(ValidationError, match="at most 2 tasks"):
        await small.create({"tasks": base_tree("l-")})
    assert await _snapshot(tm) == []


async def test_parameters_are_strict_and_have_schemas(tm: TaskManager) -> None:
    service = _service(tm)
    with pytest.raises(ValidationError, match="limit"):
        await service.list_tasks({"limit": "5"})
    with pytest.raises(ValidationError, match="unknown parameter"):
        await service.get({"task_id": "x", "colour": "red"})
    with pytest.raises(ValidationError, match="not a cursor"):
        await service.list_tasks({"cursor": "!!"})
    schema = params_schema("update")
    assert schema["properties"]["priority"]["anyOf"][0]["maximum"] == 3
    assert schema["additionalProperties"] is False


async def test_listing_pages_with_cursors(tm: TaskManager) -> None:
    service = _service(tm)
    for i in range(5):
        await service.create(
            {"tasks": [{"id": f"p{i}", "name": "p", "schemas": {"method": EXECUTOR}}]}
        )
    seen: list[str] = []
    page = await service.list_tasks({"limit": 2})
    while True:
        seen += [t.id for t in page.tasks]
        if page.next_cursor is None:
            break
        page = await service.list_tasks({"limit": 2, "cursor": page.next_cursor})
    assert sorted(seen) == [f"p{i}" for i in range(5)]
    assert len(seen) == 5


async def test_delete_is_refused_while_others_depend_or_tasks_run(tm: TaskManager) -> None:
    service = _service(tm)
    await service.create({"tasks": base_tree("x-")})
    with pytest.raises(TaskConflictError, match="depends on a task being deleted"):
        await service.delete({"task_id": "x-a"})
    with pytest.raises(ValidationError, match="force is not available"):
        await service.delete({"task_id": "x-a", "force": True})
    await tm.task_repository.update_task("x-b", status="in_progress")
    with pytest.raises(TaskConflictError, match="in progress"):
        await service.delete({"task_id": "x-root"})
    forced = TaskService(tm, TaskCaller.system(), allow_force_delete=True)
    assert await forced.delete({"task_id": "x-root", "force": True}) == 3


# -- hooks and run states -----------------------------------------------------------------


async def test_on_tree_created_fires_once_for_every_way_of_building_a_tree(
    tm: TaskManager,
) -> None:
    created: list[str] = []
    register_task_tree_hook("on_tree_created", lambda root, tree: created.append(root.id))
    repo = tm.task_repository
    root = await repo.create_task(name="seed-root", id="seed", schemas={"method": EXECUTOR})
    child = await repo.create_task(
        name="seed-child", id="seed-kid", parent_id=root.id, schemas={"method": EXECUTOR}
    )
    tree = TaskTreeNode(root)
    tree.add_child(TaskTreeNode(child))
    assert (await tm.distribute_task_tree(tree)).status == "completed"
    assert created == ["seed"]
    built = await tm.create_task_tree_from_array(base_tree("h-"))
    await tm.distribute_task_tree(built)
    assert created == ["seed", "h-root"]
    await tm.distribute_task_tree(built)  # a finished tree runs again: not created again
    await _service(tm).copy({"task_id": "h-root"})
    assert len(created) == 3


async def test_run_state_says_a_fresh_tree_is_pending_and_how_to_start_it(
    tm: TaskManager,
) -> None:
    service = _service(tm)
    await service.create({"tasks": base_tree("w-")})
    state = await service.run_state({"task_id": "w-a"})
    assert state.state == "pending"
    assert state.hint is not None and "apflow tasks execute w-root" in state.hint
    await service.execute({"task_id": "w-root"})
    assert (await service.run_state({"task_id": "w-a"})).state == "finished"


def test_a_leaf_without_executor_names_the_task(registry: ExecutorRegistry) -> None:
    from aipartnerupflow.core.validation import executor_problems

    leaf = TaskModel(name="APICallTask", id="t1")
    [problem] = executor_problems([leaf], registry)
    assert "'APICallTask' (t1) has no executor and no children" in problem
    assert "Only a task with children may be a grouping task" in problem


@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
async def test_a_queued_tree_created_through_the_service_fires_on_tree_created(
    manager: TaskManager,
) -> None:
    created: list[str] = []
    register_task_tree_hook("on_tree_created", lambda root, tree: created.append(root.id))
    service = TaskService(manager, TaskCaller.system())
    made = await service.create({"tasks": base_tree("q-"), "queue": True})
    assert created == ["q-root"]
    stored = await manager.task_repository.get_all_tasks_in_tree(made.root_id)
    assert {t.dispatch for t in stored} == {"queue"}
    state = await service.run_state({"task_id": "q-a"})
    assert state.state == "queued" and state.hint is not None and "apflow worker" in state.hint


async def test_create_task_refuses_non_finite_numbers_and_writes_nothing(tm: TaskManager) -> None:
    with pytest.raises(ValidationError, match="is not a JSON number"):
        await tm.task_repository.create_task(
            name="n", inputs={"x": float("nan")}, schemas={"method": EXECUTOR}
        )
    assert await _snapshot(tm) == []


def test_json_problems_names_every_hostile_value_with_its_path() -> None:
    from aipartnerupflow.core.limits import json_problems

    found = json_problems({"a": [1, float("-inf")], "k\x00": "v", "s": "x\x00"}, "task")
    assert "task.a[1]: -inf is not a JSON number" in " ".join(found)
    assert any("task.k" in p and "NUL" in p for p in found)
    assert any(p.startswith("task.s: contains a NUL") for p in found)
    assert json_problems({"ok": [1.5, "text", None, True]}, "task") == []
    huge = json_problems({"x": "y" * 2_000_000}, "task")
    assert huge and "larger than" in huge[0]


def test_the_size_check_is_exact_near_the_limit_and_skips_repr_far_below() -> None:
    from aipartnerupflow.core.limits import TaskLimits, json_problems, json_problems_sized

    limits = TaskLimits(max_task_bytes=1_000)
    value = {"x": "y" * 991}
    assert len(repr(value)) == 1_000 and json_problems(value, "t", limits) == []
    value = {"x": "y" * 992}  # one character over
    assert "larger than 1000" in json_problems(value, "t", limits)[0]
    escaped = {"x": "\U000e0001\x01" * 60}  # repr shows 14 characters for every 2
    assert len(repr(escaped)) > 800
    problems, bound = json_problems_sized(escaped, "t", TaskLimits(max_task_bytes=800))
    assert problems and bound * 10 >= len(repr(escaped))
    for sample in ({"a": [1, 2.5, None, True, "s", {"k": -(10**30)}]}, {1: "x", "n": 0.1}):
        found, bound = json_problems_sized(sample, "t")
        assert found == [] and bound * 10 >= len(repr(sample))
