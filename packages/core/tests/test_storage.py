"""Storage: repository queries, migrations, table renaming, the DuckDB file lock."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from aipartnerupflow.core.errors import (
    ConfigurationError,
    DatabaseLockedError,
    TaskNotFoundError,
    ValidationError,
)
from aipartnerupflow.core.manager import TaskManager
from aipartnerupflow.core.storage import create_session
from aipartnerupflow.core.storage.sql_store import SqlTaskStorage


def _t(ident: str, **fields: Any) -> dict[str, Any]:
    return {"id": ident, "name": ident, "schemas": {"method": "test_noop"}, **fields}


async def test_seed_style_create_task_and_queries(manager: TaskManager) -> None:
    repo = manager.task_repository
    root = await repo.create_task(name="root_task", user_id="user_123", priority=2)
    child = await repo.create_task(
        name="child",
        user_id="user_123",
        parent_id=root.id,
        dependencies=[],
        inputs={"url": "https://example.com"},
    )
    assert child.root_id == root.id
    fetched = await repo.get_task_by_id(root.id)
    assert fetched is not None and fetched.has_children
    assert [c.id for c in await repo.get_child_tasks_by_parent_id(root.id)] == [child.id]
    assert (await repo.get_root_task(child)).id == root.id
    tree = await repo.build_task_tree(root.id)
    assert [n.task.id for n in tree.walk()] == [root.id, child.id]
    with pytest.raises(TaskNotFoundError):
        await repo.create_task(name="orphan", parent_id="missing")


async def test_list_filters_pagination_and_counts(manager: TaskManager) -> None:
    for r in range(3):
        await manager.run_tasks(
            [
                _t(f"r{r}", user_id="alice" if r < 2 else "bob"),
                _t(f"c{r}", parent_id=f"r{r}", user_id="carol"),
            ]
        )
    repo = manager.task_repository
    roots = await repo.query_tasks(parent_id="")
    assert {t.id for t in roots} == {"r0", "r1", "r2"}
    assert {t.id for t in await repo.query_tasks(user_id="alice")} == {"r0", "r1"}
    assert {t.id for t in await repo.query_tasks(root_id="r1")} == {"r1", "c1"}
    assert [t.id for t in await repo.query_tasks(name="c2")] == ["c2"]
    page1 = await repo.query_tasks(limit=4, offset=0)
    page2 = await repo.query_tasks(limit=4, offset=4)
    assert len(page1) == 4 and len(page2) == 2
    assert not {t.id for t in page1} & {t.id for t in page2}
    assert await repo.count_tasks() == {"completed": 6, "total": 6}
    assert await repo.count_tasks(user_id="carol", status="failed") == {"total": 0}


async def test_search_matches_names_and_id_prefixes_literally_in_either_order(
    manager: TaskManager,
) -> None:
    from aipartnerupflow.core.service import TaskService

    names = {"n1": "Nightly Report", "n2": "report_50%", "n3": "reportX50y", "n4": "other"}
    for ident, name in names.items():
        await manager.create_task_tree_from_array(
            [{"id": ident, "name": name, "schemas": {"method": "test_noop"}}]
        )
    service = TaskService(manager)

    async def found(**params: Any) -> list[str]:
        return [t.id for t in (await service.list_tasks(params)).tasks]

    assert sorted(await found(search="REPORT")) == ["n1", "n2", "n3"]
    assert await found(search="_50%") == ["n2"]  # wildcards are taken literally
    assert await found(search="n4") == ["n4"]  # an id prefix
    assert await found(search="zzz") == []
    assert await found(order="oldest") == ["n1", "n2", "n3", "n4"]
    assert await found(order="newest") == ["n4", "n3", "n2", "n1"]
    counts = await service.count({"search": "report", "root_only": True})
    assert counts == {"pending": 3, "total": 3}
    with pytest.raises(ValidationError, match="order"):
        await service.list_tasks({"order": "sideways"})


async def test_update_status_can_clear_fields_and_rejects_unknown(manager: TaskManager) -> None:
    await manager.run_tasks([_t("root")])
    repo = manager.task_repository
    assert await repo.update_task_status("root", "failed", error="x", result=None)
    task = await repo.get_task_by_id("root")
    assert task is not None and task.status == "failed" and task.result is None
    with pytest.raises(ValidationError):
        await repo.update_task_status("root", "exploded")
    with pytest.raises(ValidationError):
        await repo.update_task("root", colour="red")
    assert not await repo.update_task_status("missing", "failed")


async def test_delete_and_copy(manager: TaskManager) -> None:
    await manager.run_tasks(
        [_t("root"), _t("a", parent_id="root"), _t("b", parent_id="a", dependencies=["a"])]
    )
    repo = manager.task_repository
    copy = await repo.copy_task_tree("root")
    copied = await repo.get_all_tasks_in_tree(copy.id)
    assert len(copied) == 3 and all(t.status == "pending" for t in copied)
    b_copy = next(t for t in copied if t.original_task_id == "b")
    a_copy = next(t for t in copied if t.original_task_id == "a")
    assert b_copy.dependencies == [{"id": a_copy.id, "required": True}]
    assert (await repo.get_task_by_id("root")).has_copy  # type: ignore[union-attr]
    result = await manager.execute_tree(copy.id)
    assert result.ok
    assert await repo.delete_task("a") == 2
    assert await repo.get_task_by_id("b") is None


async def test_schema_is_migrated_with_a_version_table(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'm.duckdb'}"
    store = create_session(url)
    assert isinstance(store, SqlTaskStorage)
    await store.initialize()

    def read(conn: sa.Connection) -> tuple[Any, list[str]]:
        version = conn.execute(sa.text("SELECT version_num FROM apflow_tasks_alembic_version"))
        return version.scalar(), sa.inspect(conn).get_table_names()

    version, tables = store.call_sync(read)
    assert version == "0003" and "apflow_tasks" in tables
    await store.close()


async def test_upgrade_from_an_older_schema_keeps_task_history(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    from aipartnerupflow.core.storage import migrate

    url = f"duckdb:///{tmp_path / 'old.duckdb'}"
    engine = sa.create_engine(url)
    migrate._register_duckdb_impl()
    cfg = Config()
    cfg.set_main_option("script_location", str(migrate._MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        cfg.attributes["version_table"] = "apflow_tasks_alembic_version"
        command.upgrade(cfg, "0001")
        conn.execute(
            sa.text(
                "INSERT INTO apflow_tasks (id, name, status, priority, position, progress, "
                "attempts, has_children, has_copy, result) VALUES ('old', 'old task', "
                "'completed', 2, 0, 1.0, 1, false, false, '{\"kept\": true}')"
            )
        )
    engine.dispose()
    store = create_session(url)
    old = await store.get_task("old")
    await store.close()
    assert old is not None and old.result == {"kept": True} and old.dispatch == "local"


async def test_table_name_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: Any
) -> None:
    monkeypatch.setenv("AIPARTNERUPFLOW_TASK_TABLE_NAME", "my_tasks")
    store = create_session(f"duckdb:///{tmp_path / 't.duckdb'}")
    async with TaskManager(store, registry=registry) as tm:
        assert (await tm.run_tasks([_t("root")])).ok
        names = store.call_sync(lambda c: sa.inspect(c).get_table_names())  # type: ignore[attr-defined]
        assert "my_tasks" in names and "apflow_tasks" not in names
    monkeypatch.setenv("AIPARTNERUPFLOW_TASK_TABLE_NAME", "bad name;")
    with pytest.raises(ConfigurationError) as info:
        create_session("duckdb:///:memory:")
    assert "is not a valid table name" in str(info.value)


def test_unsupported_url_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        create_session("mysql://root:hunter2@db/x")
    assert str(info.value) == (
        "unsupported database URL 'mysql://root:***@db/x': use "
        "duckdb:///path/to/file.duckdb, duckdb:///:memory: or "
        "postgresql://user:password@host:5432/dbname"
    )


async def test_second_process_gets_a_clear_lock_error(tmp_path: Path) -> None:
    path = tmp_path / "locked.duckdb"
    url = f"duckdb:///{path}"
    store = create_session(url)
    await store.initialize()
    script = textwrap.dedent(f"""
        import asyncio
        from aipartnerupflow.core.storage import create_session
        from aipartnerupflow.core.errors import DatabaseLockedError
        try:
            asyncio.run(create_session({url!r}).initialize())
        except DatabaseLockedError as exc:
            print(exc)
    """)
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
    )
    await store.close()
    assert out.stdout.startswith(f"the task database {path} is in use by process {os.getpid()} ")
    assert "DuckDB allows one process per file" in out.stdout
    assert DatabaseLockedError.__mro__[1].__name__ == "StorageError"


async def test_cancelling_a_stored_tree_that_is_not_running(manager: TaskManager) -> None:
    await manager.create_task_tree_from_array(
        [
            _t("root"),
            _t("a", parent_id="root"),
            _t("b", parent_id="root", dependencies=["a"]),
            _t("c", parent_id="root", dependencies=["b"]),
            _t("opt", parent_id="root", dependencies=[{"id": "a", "required": False}]),
        ]
    )
    assert await manager.cancel_task("a") == ["a", "b", "c"]
    stored = {t.id: t.status for t in await manager.task_repository.get_all_tasks_in_tree("root")}
    assert stored == {
        "root": "pending",
        "a": "cancelled",
        "b": "cancelled",
        "c": "cancelled",
        "opt": "pending",
    }
    assert await manager.cancel_task("a") == []


async def test_unreachable_or_refused_postgres_is_one_clear_line() -> None:
    from aipartnerupflow.core.errors import StorageError

    store = create_session("postgresql://nobody:hunter2@127.0.0.1:5432/postgres")
    with pytest.raises(StorageError) as info:
        await store.initialize()
    await store.close()
    message = str(info.value)
    assert message.startswith(
        "cannot open the task database postgresql+psycopg://nobody:***@127.0.0.1:5432/postgres: "
    )
    assert "hunter2" not in message and "\n" not in message
    assert message.endswith(
        ('role "nobody" does not exist', 'password authentication failed for user "nobody"')
    )


def test_column_kinds_match_the_table_definition() -> None:
    from aipartnerupflow.core.models import TASK_COLUMNS
    from aipartnerupflow.core.storage.schema import COLUMN_KINDS, build_tasks_table

    kinds = {
        sa.String: "text",
        sa.Text: "text",
        sa.Integer: "int",
        sa.Float: "float",
        sa.Boolean: "bool",
        sa.DateTime: "timestamp",
        sa.JSON: "json",
    }
    table = build_tasks_table(sa.MetaData(), "t")
    from_table = {
        c.name: next(k for t, k in kinds.items() if isinstance(c.type, t)) for c in table.columns
    }
    assert from_table == COLUMN_KINDS
    assert set(from_table) == set(TASK_COLUMNS)


async def test_json_values_of_every_shape_round_trip(store: Any) -> None:
    from aipartnerupflow.core.models import TaskModel

    values: list[Any] = [
        "hello",
        "",
        0,
        1.5,
        True,
        None,
        [],
        [1, "two", None],
        {"a": {"b": []}},
        '{"looks": "like json"}',
    ]
    await store.insert_tasks(
        [TaskModel(name=f"t{i}", id=f"j{i}", result=v) for i, v in enumerate(values)]
    )
    stored = {t.id: t.result for t in await store.get_tasks([f"j{i}" for i in range(10)])}
    assert stored == {f"j{i}": v for i, v in enumerate(values)}
    assert await store.update_task("j0", {"result": "plain text", "inputs": {"k": [1]}})
    assert not await store.update_task("missing", {"result": 1})
    again = await store.get_task("j0")
    assert again is not None and again.result == "plain text" and again.inputs == {"k": [1]}
    assert await store.delete_tasks(["j1", "j2", "missing"]) == 2


async def test_duckdb_runs_without_sqlalchemy_once_migrated(tmp_path: Path) -> None:
    """The embedded path (the CLI's) loads no SQLAlchemy: a new file gets its schema from
    plain statements (test_duckdb_head), an existing one needs none."""
    db = tmp_path / "light.duckdb"
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from aipartnerupflow.core import TaskManager, create_session

        async def main():
            async with TaskManager(create_session("duckdb:///{db}")) as tm:
                result = await tm.run_tasks(
                    [{{"name": "root", "schemas": {{"method": "aggregate_results_executor"}}}}]
                )
                assert result.status == "completed", result
            print("sqlalchemy" in sys.modules)

        asyncio.run(main())
        """
    )
    first = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    second = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout.strip() == "False"  # created without Alembic
    assert second.stdout.strip() == "False"


async def test_a_sqlite_file_is_refused_without_touching_the_network(tmp_path: Path) -> None:
    import sqlite3

    from aipartnerupflow.core.errors import StorageError

    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("create table a(x)")
    before = path.read_bytes()
    store = create_session(f"duckdb:///{path}")
    with pytest.raises(StorageError) as info:
        await store.initialize()
    assert "it is a SQLite file, not a DuckDB database" in str(info.value)
    assert path.read_bytes() == before
    await store.close()
