"""A new DuckDB file gets the newest schema without Alembic, identical to the migrations'."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import duckdb
import pytest

from aipartnerupflow.core.storage import create_session, drivers
from aipartnerupflow.core.storage.duckdb_head import REVISION
from aipartnerupflow.core.storage.schema import HEAD_REVISION


def _catalogue(path: Path) -> dict[str, Any]:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return {
            "tables": conn.execute(
                "SELECT table_name, sql FROM duckdb_tables() ORDER BY 1"
            ).fetchall(),
            "indexes": conn.execute(
                "SELECT index_name, table_name, sql, is_unique FROM duckdb_indexes() ORDER BY 1"
            ).fetchall(),
            "constraints": conn.execute(
                "SELECT table_name, constraint_type, constraint_text, constraint_column_names "
                "FROM duckdb_constraints() ORDER BY 1, 2, 3, 4"
            ).fetchall(),
            "sequences": conn.execute("SELECT sequence_name FROM duckdb_sequences()").fetchall(),
            "views": conn.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal"
            ).fetchall(),
        }
    finally:
        conn.close()


async def _create(path: Path) -> None:
    store = create_session(f"duckdb:///{path}")
    await store.initialize()
    await store.close()


@pytest.mark.parametrize("table", ["apflow_tasks", "custom_tasks"])
async def test_the_direct_schema_equals_what_the_migrations_create(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: str
) -> None:
    monkeypatch.setenv("AIPARTNERUPFLOW_TASK_TABLE_NAME", table)
    direct, migrated = tmp_path / "direct.duckdb", tmp_path / "migrated.duckdb"
    await _create(direct)
    with monkeypatch.context() as m:
        m.setattr(drivers, "create_head_schema", lambda conn, table: False)
        await _create(migrated)
    got, want = _catalogue(direct), _catalogue(migrated)
    assert got == want
    assert any(name == table for name, _ in got["tables"])
    for path in (direct, migrated):
        conn = duckdb.connect(str(path), read_only=True)
        rows = conn.execute(f"SELECT version_num FROM {table}_alembic_version").fetchall()
        conn.close()
        assert rows == [(HEAD_REVISION,)]


def test_the_direct_schema_is_at_the_newest_revision() -> None:
    # A new migration must come with these statements brought up to date (until then new
    # files go through Alembic, which is correct but slow).
    assert REVISION == HEAD_REVISION


async def test_an_existing_file_is_left_to_the_migrations(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    conn = duckdb.connect(str(path))
    conn.execute("CREATE TABLE apflow_tasks_alembic_version(version_num VARCHAR PRIMARY KEY)")
    conn.execute("INSERT INTO apflow_tasks_alembic_version VALUES ('9999')")
    conn.close()
    store = create_session(f"duckdb:///{path}")
    with pytest.raises(Exception, match="9999"):  # not silently created over
        await store.initialize()
    await store.close()


def test_a_new_file_loads_neither_sqlalchemy_nor_alembic(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import asyncio, sys
        from aipartnerupflow import TaskManager, create_session

        async def main():
            store = create_session("duckdb:///{tmp_path / "new.duckdb"}")
            tm = TaskManager(store)
            root = await tm.task_repository.create_task("root")
            assert (await store.get_task(root.id)) is not None
            await tm.close()
            print(sorted(m for m in sys.modules if m.split(".")[0] in ("sqlalchemy", "alembic")))

        asyncio.run(main())
    """)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout
