"""aipartnerupflow 0.9's Python API and task-JSON fields, on our API (core.compat)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from aipartnerupflow.core.errors import (
    AipartnerupflowError,
    TaskAlreadyExistsError,
    TaskTreeValidationError,
    ValidationError,
)
from aipartnerupflow.core.manager import TaskManager
from aipartnerupflow.core.registry import ExecutorRegistry
from aipartnerupflow.core.results import TaskOutcome, TreeResult
from aipartnerupflow.core.storage import create_session

from ._executors import Recorder

TRACK = {"method": "test_track"}


@pytest.fixture
async def tm(registry: ExecutorRegistry, recorder: type[Recorder]) -> AsyncIterator[TaskManager]:
    """Validation does not depend on the backend: one in-memory DuckDB store."""
    manager = TaskManager(create_session("duckdb:///:memory:"), registry=registry)
    yield manager
    await manager.close()


# -- task JSON -------------------------------------------------------------------------------


async def test_original_row_fields_of_a_pending_task_are_accepted(
    tm: TaskManager, recorder: type[Recorder]
) -> None:
    tree = await tm.create_task_tree_from_array(
        [
            {
                "id": "root",
                "name": "Root",
                "status": "pending",
                "progress": 0.0,
                "result": None,
                "error": None,
                "has_children": True,
                "has_copy": False,
                "original_task_id": None,
                "created_at": "2025-12-20T10:00:00+00:00",
                "updated_at": None,
                "schemas": TRACK,
                "dependencies": [{"name": "Second", "required": True, "type": "result"}],
            },
            {
                "id": "one",
                "name": "First",
                "parent_id": "root",
                "progress": 0,
                "has_children": False,
                "schemas": TRACK,
                "inputs": {"value": 1},
            },
            {
                "id": "two",
                "name": "Second",
                "parent_id": "Root",
                "schemas": TRACK,
                "dependencies": ["First"],
            },
        ]
    )
    stored = {t.id: t for t in tree.tasks()}
    assert stored["root"].dependencies == [{"id": "two", "required": True}]
    assert stored["two"].dependencies == [{"id": "one", "required": True}]
    assert stored["root"].has_children and not stored["one"].has_children
    result = await tm.execute_tree("root")
    assert result.status == "completed"
    assert recorder.inputs["Second"]["one"] == {"name": "First", "value": 1}


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (
            {"status": "completed"},
            "field 'status' is 'completed': a new task is always pending; drop the field "
            "(stored tasks of aipartnerupflow 0.9 with their state are brought over with "
            "`apflow db import-legacy`)",
        ),
        ({"status": "done"}, "field 'status': unknown status 'done' (a new task is 'pending')"),
        ({"progress": 0.5}, "field 'progress' is 0.5: a new task starts at 0; a new task is"),
        ({"progress": True}, "field 'progress' is True: a new task starts at 0"),
        ({"result": {"rows": 3}}, "field 'result' is set: a new task is always pending"),
        ({"error": "boom"}, "field 'error' is set: a new task is always pending"),
        ({"has_children": "yes"}, "field 'has_children' must be true or false, not 'yes'"),
        (
            {"dependencies": [{"id": "other", "type": "control"}]},
            "dependency type 'control' is not supported: the only type is 'result' (the "
            "dependency's result is merged into the inputs); drop 'type' or set it to 'result'",
        ),
        (
            {"dependencies": [{"required": True}]},
            "a dependency needs 'id' (or 'name', the original's spelling) naming a task of "
            "the array, got {'required': True}",
        ),
    ],
)
async def test_original_fields_a_new_task_cannot_honour_are_refused(
    tm: TaskManager, extra: dict[str, Any], problem: str
) -> None:
    tasks = [
        {"id": "other", "name": "Other", "schemas": TRACK},
        {"id": "t", "name": "T", "parent_id": "other", "schemas": TRACK, **extra},
    ]
    with pytest.raises(TaskTreeValidationError) as info:
        await tm.create_task_tree_from_array(tasks)
    assert info.value.problems[0].startswith(f"task #2 'T' (id 't'): {problem}")
    assert await tm.storage.get_task("other") is None  # nothing written


# -- create_task keyword arguments ------------------------------------------------------------


async def test_create_task_accepts_the_original_keywords_it_can_honour(
    manager: TaskManager,
) -> None:
    repo = manager.task_repository
    root = await repo.create_task(
        name="root", status="pending", progress=0, result=None, has_children=False, schemas=TRACK
    )
    copy = await repo.create_task(
        name="copy", parent_id=root.id, original_task_id="earlier", has_copy=False, schemas=TRACK
    )
    stored = await repo.get_task_by_id(copy.id)
    assert stored is not None and stored.original_task_id == "earlier"
    assert (await repo.get_task_by_id(root.id)).has_children  # type: ignore[union-attr]
    with pytest.raises(ValidationError) as info:
        await repo.create_task(name="late", status="completed", progress=1.0)
    assert str(info.value) == (
        "create_task('late'): field 'status' is 'completed': a new task is always pending; "
        "drop the field (stored tasks of aipartnerupflow 0.9 with their state are brought "
        "over with `apflow db import-legacy`); field 'progress' is 1.0: a new task starts at "
        "0; a new task is always pending; drop the field (stored tasks of aipartnerupflow 0.9 "
        "with their state are brought over with `apflow db import-legacy`)"
    )
    with pytest.raises(ValidationError, match="original_task_id must be a task id string"):
        await repo.create_task(name="x", original_task_id=7)
    with pytest.raises(ValidationError, match="dependency type 'order' is not supported"):
        await repo.create_task(name="x", dependencies=[{"id": root.id, "type": "order"}])


# -- TaskCreator -----------------------------------------------------------------------------


async def test_task_creator_creates_from_an_array_in_one_transaction(
    manager: TaskManager, registry: ExecutorRegistry
) -> None:
    from aipartnerupflow.core import TaskCreator

    creator = TaskCreator(manager.storage, registry=registry)
    tree = await creator.create_task_tree_from_array(
        [
            {"name": "Task 1", "schemas": TRACK},
            {
                "name": "Task 2",
                "parent_id": "Task 1",
                "schemas": TRACK,
                "dependencies": [{"name": "Task 1", "required": True}],
            },
        ]
    )
    assert [t.name for t in creator.tree_to_flat_list(tree)] == ["Task 1", "Task 2"]
    assert tree.children[0].task.dependencies == [{"id": tree.task.id, "required": True}]
    with pytest.raises(TaskAlreadyExistsError, match="Leave out 'id' to get fresh ids"):
        await creator.create_task_tree_from_array(
            [{"id": tree.task.id, "name": "Again", "schemas": TRACK}]
        )
    with pytest.raises(TaskTreeValidationError, match="several root tasks"):
        await creator.create_task_tree_from_array(
            [{"id": "n1", "name": "A", "schemas": TRACK}, {"id": "n2", "name": "B"}]
        )
    assert await manager.storage.get_tasks(["n1", "n2"]) == []
    with pytest.raises(ValidationError, match=r"execute_tree\(root_id, rerun='failed'\)"):
        await creator.create_task_copy(tree.task)


# -- distribute_task_tree's result, walked as the original's tree -----------------------------


async def test_the_readme_quick_start_verbatim_and_its_result_walked_as_a_tree(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aipartnerupflow 0.9.0's README "As a Library" snippet, verbatim, with the
    ``custom_task`` executor it names registered first."""
    monkeypatch.setenv("AIPARTNERUPFLOW_DATABASE_URL", f"duckdb:///{tmp_path / 'q.duckdb'}")
    from aipartnerupflow import ExecutableTask, executor_register, get_executor_registry

    @executor_register()
    class CustomTask(ExecutableTask):
        id = "custom_task"
        name = "Custom Task"
        description = "Echoes its url"

        async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
            return {"fetched": inputs["url"]}

        def get_input_schema(self) -> dict[str, Any]:
            return {"type": "object", "properties": {"url": {"type": "string"}}}

    try:
        # --- README (0.9.0), "Using Task Orchestration Specifications", verbatim ---
        from aipartnerupflow import TaskManager, TaskTreeNode, create_session

        # Create database session and task manager (core)
        db = create_session()  # or: db = get_default_session()
        task_manager = TaskManager(db)

        # Create task tree (task orchestration)
        # Use task_repository to create tasks
        root_task = await task_manager.task_repository.create_task(
            name="root_task", user_id="user_123", priority=2
        )

        child_task = await task_manager.task_repository.create_task(
            name="custom_task",  # Task name corresponds to specific executor
            user_id="user_123",
            parent_id=root_task.id,
            dependencies=[],  # Dependency relationships
            inputs={"url": "https://example.com"},
        )

        # Build task tree and execute (task orchestration core)
        task_tree = TaskTreeNode(root_task)
        task_tree.add_child(TaskTreeNode(child_task))
        result = await task_manager.distribute_task_tree(task_tree)
        # --- end of the snippet ---

        assert isinstance(result, TreeResult) and result.status == "completed"
        assert result.task.id == root_task.id and result.task.status == "completed"
        assert result.calculate_status() == "completed" and result.calculate_progress() == 1.0
        [child] = result.children
        assert child.task.name == "custom_task" and child.children == []
        assert child.task.result == {"fetched": "https://example.com"}
        assert result.task(child_task.id).result == {"fetched": "https://example.com"}
        assert result.task("custom_task").status == "completed"
        await task_manager.close()
    finally:
        get_executor_registry().unregister("custom_task")


def test_a_result_without_rows_says_how_to_get_the_tree() -> None:
    result = TreeResult("r", "completed", [TaskOutcome("r", "Root", "completed", {"ok": 1})])
    assert result.task.status == "completed" and result.task.result == {"ok": 1}
    with pytest.raises(AipartnerupflowError, match=r"build_task_tree\('r'\)"):
        _ = result.children


# -- task_repository methods of the original ---------------------------------------------------


async def test_repository_methods_the_original_docs_use(manager: TaskManager) -> None:
    from datetime import UTC, datetime

    repo = manager.task_repository
    tree = await manager.create_task_tree_from_array(
        [
            {"id": "r", "name": "Root", "schemas": TRACK},
            {"id": "a", "name": "A", "parent_id": "r", "schemas": TRACK},
            {"id": "b", "name": "B", "parent_id": "a", "schemas": TRACK},
            {"id": "c", "name": "C", "parent_id": "r", "schemas": TRACK, "dependencies": ["a"]},
        ]
    )
    root = tree.task
    a = await repo.get_task_by_id("a")
    assert a is not None
    assert (await repo.get_root_task(a)).id == root.id
    assert [t.id for t in await repo.get_child_tasks_by_parent_id("r")] == ["a", "c"]
    assert sorted(t.id for t in await repo.get_all_tasks_in_tree(root)) == ["a", "b", "c", "r"]
    assert [t.id for t in await repo.get_all_children_recursive("a")] == ["b"]
    assert [t.id for t in await repo.find_dependent_tasks("a")] == ["c"]

    assert await repo.update_task_name("b", "B2")
    assert await repo.update_task_priority("b", 0)
    assert await repo.update_task_inputs("b", {"value": 5})
    assert await repo.update_task_params("b", {})
    assert await repo.update_task_schemas("b", TRACK)
    assert await repo.update_task_dependencies("b", [{"name": "C", "required": False}])
    assert await repo.update_task("c", priority=3)
    b = await repo.get_task_by_id("b")
    assert b is not None
    assert (b.name, b.priority, b.inputs) == ("B2", 0, {"value": 5})
    assert b.dependencies == [{"id": "c", "required": False}]
    assert not await repo.update_task_name("missing", "x")

    started = datetime(2025, 12, 20, 10, 0, tzinfo=UTC)
    assert await repo.update_task_status("a", "completed", result={"v": 1}, started_at=started)
    done = await repo.get_completed_tasks_by_ids(["a", "b"])
    assert list(done) == ["a"] and done["a"].started_at == started

    assert await repo.delete_task("c") == 1
    assert await repo.get_task_by_id("c") is None


async def test_save_task_hierarchy_to_database_stores_new_nodes(manager: TaskManager) -> None:
    from aipartnerupflow.core import TaskModel, TaskTreeNode

    top = TaskTreeNode(TaskModel(name="Top", id="top", schemas=TRACK))
    top.add_child(TaskTreeNode(TaskModel(name="Leaf", id="leaf", schemas=TRACK)))
    assert await manager.task_repository.save_task_hierarchy_to_database(top)
    leaf = await manager.task_repository.get_task_by_id("leaf")
    assert leaf is not None and (leaf.parent_id, leaf.root_id) == ("top", "top")
    result = await manager.execute_tree("top")
    assert result.status == "completed"


async def test_task_manager_takes_the_original_arguments(
    registry: ExecutorRegistry, recorder: type[Recorder]
) -> None:
    from aipartnerupflow.core import TaskTreeNode
    from aipartnerupflow.core.errors import ConfigurationError

    tm = TaskManager(
        create_session("duckdb:///:memory:"),
        registry=registry,
        root_task_id=None,
        executor_instances={},
        use_demo=False,
        pre_hooks=None,
    )
    try:
        root = await tm.task_repository.create_task(name="solo", schemas=TRACK)
        result = await tm.distribute_task_tree_with_streaming(TaskTreeNode(root), use_callback=True)
        assert result.task.status == "completed"
        again = await tm.distribute_task_tree(TaskTreeNode(root), use_callback=False)
        assert again.ok and recorder.calls["solo"] == 2
    finally:
        await tm.close()
    with pytest.raises(ConfigurationError) as info:
        TaskManager(create_session("duckdb:///:memory:"), pre_hooks=[print], use_demo=True)
    assert str(info.value) == (
        "TaskManager(): pre_hooks=: hooks are not per manager; register each with "
        "register_pre_hook(hook) (they apply to every TaskManager of the process); "
        "use_demo=True: demo mode (canned results) is not kept"
    )


async def test_get_hook_repository_inside_a_post_hook(tm: TaskManager) -> None:
    import gc

    from aipartnerupflow import get_hook_repository, get_hook_session, register_post_hook
    from aipartnerupflow.core.hooks import clear_hooks

    gc.collect()  # managers other tests dropped without closing are not live
    seen: list[Any] = []

    @register_post_hook
    async def note(task: Any, inputs: Any, result: Any) -> None:
        stored = await get_hook_repository().get_task_by_id(task.id)
        seen.append((stored.name if stored else None, get_hook_session() is tm.storage))

    try:
        await tm.run_tasks([{"id": "h", "name": "Hooked", "schemas": TRACK}])
    finally:
        clear_hooks()
    assert seen == [("Hooked", True)]
    other = TaskManager(create_session("duckdb:///:memory:"))
    try:
        with pytest.raises(AipartnerupflowError, match="2 TaskManagers are live"):
            get_hook_repository()
    finally:
        await other.close()


async def test_updates_take_the_original_dependency_shapes(tm: TaskManager) -> None:
    from aipartnerupflow.core.service import TaskService

    await tm.create_task_tree_from_array(
        [
            {"id": "p", "name": "Parent", "schemas": TRACK},
            {"id": "k", "name": "Kid", "parent_id": "p", "schemas": TRACK},
        ]
    )
    service = TaskService(tm)
    await service.update(
        {"task_id": "p", "dependencies": [{"name": "Kid", "required": True, "type": "result"}]}
    )
    stored = await tm.storage.get_task("p")
    assert stored is not None and stored.dependencies == [{"id": "k", "required": True}]
    with pytest.raises(ValidationError, match="dependency type 'x' is not supported"):
        await service.update({"task_id": "p", "dependencies": [{"id": "k", "type": "x"}]})
