"""Creating trees: the whole tree is validated first and written in one transaction."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aipartnerupflow.core.errors import (
    TaskAlreadyExistsError,
    TaskTreeValidationError,
    ValidationError,
)
from aipartnerupflow.core.manager import TaskManager
from aipartnerupflow.core.registry import CATALOGUE_GROUP, get_executor_registry


def _t(ident: str, **fields: Any) -> dict[str, Any]:
    return {"id": ident, "name": ident, "schemas": {"method": "test_noop"}, **fields}


async def _count(manager: TaskManager) -> int:
    return (await manager.task_repository.count_tasks())["total"]


async def _problems(manager: TaskManager, tasks: Any) -> list[str]:
    with pytest.raises(TaskTreeValidationError) as info:
        await manager.create_task_tree_from_array(tasks)
    assert await _count(manager) == 0, "a rejected tree must write nothing"
    return info.value.problems


async def test_valid_tree_is_stored_with_root_and_children(manager: TaskManager) -> None:
    tree = await manager.create_task_tree_from_array(
        [_t("root"), _t("a", parent_id="root"), _t("b", parent_id="a", dependencies=["a"])]
    )
    assert tree.task.id == "root"
    assert [c.task.id for c in tree.children] == ["a"]
    stored = {t.id: t for t in await manager.task_repository.get_all_tasks_in_tree("root")}
    assert set(stored) == {"root", "a", "b"}
    assert stored["b"].root_id == "root"
    assert stored["a"].has_children and not stored["b"].has_children
    assert stored["b"].dependencies == [{"id": "a", "required": True}]
    assert stored["root"].priority == 2 and stored["root"].status == "pending"


async def test_references_by_name_are_resolved_to_ids(manager: TaskManager) -> None:
    tasks: list[dict[str, Any]] = [
        {"name": "root", "schemas": {"method": "test_noop"}},
        {
            "name": "child",
            "parent_id": "root",
            "dependencies": [{"id": "root"}],
            "schemas": {"method": "test_noop"},
        },
    ]
    tree = await manager.create_task_tree_from_array(tasks)
    child = tree.children[0].task
    assert child.parent_id == tree.task.id
    assert child.dependencies == [{"id": tree.task.id, "required": True}]


@pytest.fixture
def catalogue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An installed executor catalogue (as the CLI ships one) naming an unpublished executor."""
    site = tmp_path / "catalogue_site"
    info = site / "apf_test_catalogue-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: apf-test-catalogue\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text(
        f"[{CATALOGUE_GROUP}]\napf_test = apf_test_catalogue:CATALOGUE\n"
    )
    (site / "apf_test_catalogue.py").write_text(
        "CATALOGUE = {'executors': {'apf_future_executor': "
        "{'distribution': 'apf-executor-future', 'published': False}}}\n"
    )
    monkeypatch.syspath_prepend(str(site))
    get_executor_registry().catalogues.refresh()
    yield
    get_executor_registry().catalogues.refresh()


@pytest.mark.usefixtures("catalogue")
async def test_unknown_executor_lists_installed_and_install_line(manager: TaskManager) -> None:
    problems = await _problems(manager, [_t("root", schemas={"method": "apf_future_executor"})])
    assert len(problems) == 1
    assert problems[0].startswith("task 'root' (root): unknown executor 'apf_future_executor'.")
    assert "its package (apf-executor-future) is not published" in problems[0]
    assert "test_noop" in problems[0]


async def test_unknown_executor_suggests_closest(manager: TaskManager) -> None:
    problems = await _problems(manager, [_t("root", schemas={"method": "test_noopp"})])
    assert "Did you mean 'test_noop'?" in problems[0]


async def test_missing_dependency(manager: TaskManager) -> None:
    problems = await _problems(
        manager, [_t("root"), _t("a", parent_id="root", dependencies=["ghost"])]
    )
    assert problems == [
        "task #2 'a' (id 'a'): dependency 'ghost' is not a task of this array "
        "(use the id or the name of a task in the same array)"
    ]


async def test_cycle_is_named(manager: TaskManager) -> None:
    problems = await _problems(
        manager,
        [
            _t("root"),
            _t("a", parent_id="root", dependencies=["c"]),
            _t("b", parent_id="root", dependencies=["a"]),
            _t("c", parent_id="root", dependencies=["b"]),
        ],
    )
    assert len(problems) == 1
    assert problems[0].startswith("dependency cycle: ")
    cycle = problems[0].removeprefix("dependency cycle: ").split(";")[0].split(" -> ")
    assert cycle[0] == cycle[-1] and set(cycle) == {"'a'", "'b'", "'c'"}


async def test_self_dependency(manager: TaskManager) -> None:
    problems = await _problems(manager, [_t("root", dependencies=["root"])])
    assert problems == ["task 'root' (root) depends on itself"]


async def test_several_roots(manager: TaskManager) -> None:
    problems = await _problems(manager, [_t("r1"), _t("r2")])
    assert problems == [
        "several root tasks: 'r1' (r1), 'r2' (r2); a tree has exactly one root, "
        "so give the others a parent_id"
    ]


async def test_unknown_parent(manager: TaskManager) -> None:
    problems = await _problems(manager, [_t("root"), _t("a", parent_id="nowhere")])
    assert problems == [
        "task #2 'a' (id 'a'): parent_id 'nowhere' is not a task of this array "
        "(use the id or the name of a task in the same array)"
    ]


async def test_parent_loop_has_no_root(manager: TaskManager) -> None:
    problems = await _problems(manager, [_t("a", parent_id="b"), _t("b", parent_id="a")])
    assert problems == ["no root task: exactly one task must have no parent_id"]


async def test_duplicate_ids(manager: TaskManager) -> None:
    problems = await _problems(
        manager, [_t("root"), _t("x", parent_id="root"), _t("x", parent_id="root")]
    )
    assert problems[0] == (
        "duplicate task id 'x' (tasks #2 and #3); every id in the array must be unique"
    )


async def test_id_already_stored_is_an_error_not_a_rename(manager: TaskManager) -> None:
    await manager.create_task_tree_from_array([_t("root")])
    with pytest.raises(TaskAlreadyExistsError) as info:
        await manager.create_task_tree_from_array([_t("other"), _t("root", parent_id="other")])
    assert str(info.value) == (
        "task id(s) already exist in the store: root. Leave out 'id' to "
        "get fresh ids, or pick ids that are not used."
    )
    assert await _count(manager) == 1


async def test_static_inputs_are_checked_against_the_schema(manager: TaskManager) -> None:
    problems = await _problems(
        manager,
        [
            {
                "id": "root",
                "name": "root",
                "schemas": {"method": "test_schema"},
                "inputs": {"url": 42},
            }
        ],
    )
    assert problems == [
        "task 'root' (root): inputs do not match the input schema of "
        "'test_schema': input 'url': must be of type string"
    ]
    problems = await _problems(
        manager,
        [{"id": "root", "name": "root", "schemas": {"method": "test_schema"}, "inputs": {}}],
    )
    assert problems == [
        "task 'root' (root): inputs do not match the input schema of "
        "'test_schema': input 'url' is required but missing"
    ]


async def test_inputs_fed_by_dependencies_are_not_checked_at_creation(manager: TaskManager) -> None:
    await manager.create_task_tree_from_array(
        [
            _t("root"),
            {
                "id": "s",
                "name": "s",
                "parent_id": "root",
                "dependencies": ["root"],
                "schemas": {"method": "test_schema"},
            },
        ]
    )
    assert await _count(manager) == 2


async def test_bad_field_values_name_task_and_field(manager: TaskManager) -> None:
    problems = await _problems(manager, [_t("root", priority=7)])
    assert problems == [
        "task #1 'root' (id 'root'): field 'priority': Input should be less than or equal to 3"
    ]
    problems = await _problems(manager, [_t("root", dependecies=["x"])])
    assert problems[0].startswith(
        "task #1 'root' (id 'root'): field 'dependecies': unknown "
        "field (check the spelling; allowed: id, name,"
    )


async def test_not_an_array(manager: TaskManager) -> None:
    assert await _problems(manager, []) == ["expected a non-empty JSON array of task objects"]
    assert await _problems(manager, ["x"]) == ["task #1: expected a JSON object, got str"]


async def test_every_problem_is_reported_at_once(manager: TaskManager) -> None:
    problems = await _problems(
        manager,
        [
            _t("root"),
            _t("a", parent_id="root", schemas={"method": "nope_executor"}),
            _t("b", parent_id="root", dependencies=["b"]),
        ],
    )
    assert len(problems) == 2
    assert str(TaskTreeValidationError(problems)).startswith("invalid task tree:\n  - ")


async def test_params_the_executor_does_not_accept(manager: TaskManager) -> None:
    problems = await _problems(
        manager,
        [
            {
                "id": "root",
                "name": "root",
                "schemas": {"method": "test_noop"},
                "params": {"colour": "red"},
            }
        ],
    )
    assert problems[0].startswith(
        "task 'root' (root): executor 'test_noop' does not accept these params: "
    )


async def test_create_task_rejects_unknown_arguments(manager: TaskManager) -> None:
    with pytest.raises(ValidationError) as info:
        await manager.task_repository.create_task(name="x", colour="red")
    assert str(info.value) == (
        "create_task('x'): unknown argument(s) colour: custom task columns of aipartnerupflow "
        "0.9 (set_task_model_class) are not kept; put such data in inputs or params"
    )
