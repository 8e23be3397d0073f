"""The public API as the seed README shows it, and the namespace's promises."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import aipartnerupflow
from aipartnerupflow.core._exports import EXPORTS


def test_every_public_name_imports() -> None:
    for name in EXPORTS:
        assert getattr(aipartnerupflow, name) is not None, name
    assert set(aipartnerupflow.__all__) == set(EXPORTS)


def test_import_is_light() -> None:
    code = (
        "import sys, aipartnerupflow; heavy = [m for m in ('sqlalchemy', 'duckdb', "
        "'pydantic', 'alembic', 'jsonschema') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_seed_readme_library_example(tmp_path: Any, monkeypatch: Any) -> None:
    """The seed README's quick start, with a ``custom_task`` executor registered by name."""
    monkeypatch.setenv("AIPARTNERUPFLOW_DATABASE_URL", f"duckdb:///{tmp_path / 'seed.duckdb'}")
    from typing import Dict  # noqa: UP035 - the README's own style

    from aipartnerupflow import (
        ExecutableTask,
        TaskManager,
        TaskTreeNode,
        create_session,
        executor_register,
        get_executor_registry,
    )

    @executor_register()
    class CustomTask(ExecutableTask):
        id = "custom_task"
        name = "Custom Task"
        description = "Fetches a URL (here: echoes it)"

        async def execute(self, inputs: Dict[str, Any]) -> Dict[str, Any]:  # noqa: UP006
            return {"status": "completed", "result": {"fetched": inputs["url"]}}

        def get_input_schema(self) -> Dict[str, Any]:  # noqa: UP006
            return {"type": "object", "properties": {"url": {"type": "string"}}}

    try:
        db = create_session()
        task_manager = TaskManager(db)
        root_task = await task_manager.task_repository.create_task(
            name="root_task", user_id="user_123", priority=2
        )
        child_task = await task_manager.task_repository.create_task(
            name="custom_task",
            user_id="user_123",
            parent_id=root_task.id,
            dependencies=[],
            inputs={"url": "https://example.com"},
        )
        task_tree = TaskTreeNode(root_task)
        task_tree.add_child(TaskTreeNode(child_task))
        result = await task_manager.distribute_task_tree(task_tree)
        assert result.status == "completed"
        assert result.task(child_task.id).result == {
            "status": "completed",
            "result": {"fetched": "https://example.com"},
        }
        await task_manager.close()
    finally:
        get_executor_registry().unregister("custom_task")


def test_core_all_matches_the_export_map() -> None:
    import aipartnerupflow.core as core

    assert sorted(core.__all__) == sorted(EXPORTS)
