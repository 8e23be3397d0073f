"""A database written with aipartnerupflow 0.9's schema (DuckDB and PostgreSQL), imported, run.

The 0.9 table comes from its published DDL (:mod:`aipartnerupflow.testing.legacy`); the rows
are in the shapes the original stored: dependencies as ``{"id", "required", "type"}``, plain
strings and ``{"name"}``, progress as NUMERIC(3,2), a task stranded ``in_progress`` by a process
that died, an orphan left by a failed TaskCreator run, a copy with ``original_task_id``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest

from aipartnerupflow.core.compat.legacy_db import import_legacy
from aipartnerupflow.core.errors import StorageError, TaskAlreadyExistsError, ValidationError
from aipartnerupflow.core.manager import TaskManager
from aipartnerupflow.core.registry import ExecutorRegistry
from aipartnerupflow.core.storage import create_session
from aipartnerupflow.testing.legacy import legacy_row, write_legacy_database

from ._executors import Recorder

T0 = datetime(2025, 12, 20, 10, 0, tzinfo=UTC)
TRACK = {"method": "test_track"}


def _rows() -> list[dict[str, Any]]:
    at = {"created_at": T0}
    return [
        legacy_row("root", "Root", schemas=TRACK, has_children=True, priority=2, **at),
        legacy_row(
            "a",
            "Fetch",
            parent_id="root",
            status="completed",
            schemas=TRACK,
            inputs={"value": 1},
            result={"name": "Fetch", "value": 1},
            progress=1,
            started_at=T0,
            completed_at=T0,
            has_copy=True,
            **at,
        ),
        legacy_row(
            "b",
            "Parse",
            parent_id="root",
            status="in_progress",  # its process died: the original never resumed it
            schemas=TRACK,
            dependencies=[{"id": "a", "required": True, "type": "result"}],
            inputs={"value": 2},
            progress=0,
            started_at=T0,
            **at,
        ),
        legacy_row(
            "c",
            "Store",
            parent_id="root",
            schemas=TRACK,
            dependencies=["b", {"name": "Fetch", "required": False}],
            priority=0,
            **at,
        ),
        legacy_row(
            "d",
            "Report",
            parent_id="root",
            status="failed",
            error="boom",
            schemas=TRACK,
            completed_at=T0,
            **at,
        ),
        legacy_row("orphan", "Left over", parent_id="gone", schemas=TRACK, **at),
        legacy_row("root-copy", "Root", schemas=TRACK, original_task_id="root", **at),
    ]


def _pg_url(base: str, schema: str) -> str:
    return f"{base}?options=-csearch_path%3D{schema}"


@pytest.fixture
def duck(tmp_path: Path) -> str:
    return f"duckdb:///{tmp_path / 'aipartnerupflow.duckdb'}"


async def _run(url: str, registry: ExecutorRegistry) -> Any:
    store = create_session(url)
    tm = TaskManager(store, registry=registry)
    try:
        return await tm.execute_tree("root", rerun="failed"), await tm.storage.get_tree("root")
    finally:
        await tm.close()


async def test_duckdb_database_of_09_is_imported_in_place_and_runs(
    duck: str, registry: ExecutorRegistry, recorder: type[Recorder]
) -> None:
    write_legacy_database(duck, _rows())
    with pytest.raises(StorageError) as refused:  # our store will not open it as it is
        await create_session(duck).initialize()
    assert "apflow db import-legacy" in str(refused.value)

    report = await import_legacy(duck, duck, table="apflow_tasks")

    assert (len(report.tasks), report.trees, report.backup_table) == (7, 3, "apflow_tasks_v09")
    assert any("in_progress" in n and "pending again" in n for n in report.notes)
    assert any("'orphan'" in n and "root of its own tree" in n for n in report.notes)
    conn = duckdb.connect(duck.removeprefix("duckdb:///"), read_only=True)
    try:
        kept = conn.execute("SELECT count(*) FROM apflow_tasks_v09").fetchone()
        stored = conn.execute(
            "SELECT id, root_id, status, dependencies, progress, has_children, has_copy, "
            "original_task_id FROM apflow_tasks ORDER BY id"
        ).fetchall()
    finally:
        conn.close()
    assert kept == (7,)
    rows = {r[0]: r for r in stored}
    assert rows["b"][1:3] == ("root", "pending")
    assert json.loads(rows["c"][3]) == [
        {"id": "b", "required": True},
        {"id": "a", "required": False},
    ]
    assert rows["a"][4] == 1.0 and rows["a"][6] is True
    assert rows["root"][5] is True and rows["orphan"][1] is None
    assert rows["root-copy"][7] == "root"

    result, tree = await _run(duck, registry)
    assert result.status == "completed", result.to_dict()
    assert sorted(recorder.starts) == ["Parse", "Report", "Root", "Store"]  # not Fetch again
    assert recorder.inputs["Parse"]["a"] == {"name": "Fetch", "value": 1}
    by_id = {t.id: t for t in tree}
    assert by_id["a"].completed_at == T0  # kept from the old row


async def test_postgres_database_of_09_is_imported_in_place_and_runs(
    postgres_url: str,
    postgres_schema: str,
    registry: ExecutorRegistry,
    recorder: type[Recorder],
) -> None:
    url = _pg_url(postgres_url, postgres_schema)
    write_legacy_database(url, _rows())

    report = await import_legacy(url, url, table="apflow_tasks")

    assert (len(report.tasks), report.backup_table) == (7, "apflow_tasks_v09")
    with psycopg.connect(url) as pg:
        kept = pg.execute("SELECT count(*) FROM apflow_tasks_v09").fetchone()
        deps = pg.execute("SELECT dependencies FROM apflow_tasks WHERE id = 'c'").fetchone()
    assert kept == (7,)
    assert deps == ([{"id": "b", "required": True}, {"id": "a", "required": False}],)
    result, _ = await _run(url, registry)
    assert result.status == "completed", result.to_dict()
    assert recorder.inputs["Store"]["b"] == {"name": "Parse", "value": 2}


async def test_postgres_09_database_into_a_new_duckdb_file_leaves_the_source_alone(
    postgres_url: str,
    postgres_schema: str,
    duck: str,
    registry: ExecutorRegistry,
    recorder: type[Recorder],
) -> None:
    source = _pg_url(postgres_url, postgres_schema)
    write_legacy_database(source, _rows())

    report = await import_legacy(source, duck, table="apflow_tasks")

    assert report.backup_table is None
    with psycopg.connect(source) as pg:
        assert pg.execute("SELECT count(*) FROM apflow_tasks").fetchone() == (7,)
        assert pg.execute("SELECT to_regclass('apflow_tasks_v09')").fetchone() == (None,)
    result, _ = await _run(duck, registry)
    assert result.status == "completed"
    with pytest.raises(TaskAlreadyExistsError, match="already exist"):  # a second import
        await import_legacy(source, duck, table="apflow_tasks")


async def test_a_row_that_cannot_be_converted_changes_nothing(duck: str) -> None:
    rows = _rows()
    rows[1]["status"] = "done"
    rows[2]["inputs"] = ["not", "an", "object"]
    write_legacy_database(duck, rows)
    with pytest.raises(ValidationError) as info:
        await import_legacy(duck, duck, table="apflow_tasks")
    assert str(info.value) == (
        "the old table cannot be imported as it is (nothing was changed):\n"
        "- task 'a': unknown status 'done'\n"
        "- task 'b': inputs is not a JSON object: ['not', 'an', 'object']"
    )
    conn = duckdb.connect(duck.removeprefix("duckdb:///"), read_only=True)
    try:
        found = conn.execute("SELECT table_name FROM information_schema.tables").fetchall()
    finally:
        conn.close()
    assert found == [("apflow_tasks",)]


async def test_custom_columns_need_consent(duck: str, tmp_path: Path) -> None:
    write_legacy_database(duck, [legacy_row("x", "X", schemas=TRACK)], extra_columns=["project_id"])
    with pytest.raises(ValidationError, match=r"custom column\(s\) project_id .*--allow-extra"):
        await import_legacy(duck, duck, table="apflow_tasks")
    target = f"duckdb:///{tmp_path / 'new.duckdb'}"
    report = await import_legacy(duck, target, table="apflow_tasks", allow_extra_columns=True)
    assert report.notes[-1] == "custom column(s) not imported: project_id"


async def test_parent_loop_and_foreign_tables_are_refused(duck: str, tmp_path: Path) -> None:
    write_legacy_database(
        duck, [legacy_row("p", "P", parent_id="q"), legacy_row("q", "Q", parent_id="p")]
    )
    with pytest.raises(ValidationError, match="form a parent_id loop"):
        await import_legacy(duck, duck, table="apflow_tasks")
    with pytest.raises(ValidationError, match="has no table other_tasks"):
        await import_legacy(duck, duck, table="other_tasks")
    with pytest.raises(ValidationError, match="not a valid table name"):
        await import_legacy(duck, duck, table="x; DROP TABLE y")
    ours = f"duckdb:///{tmp_path / 'ours.duckdb'}"
    store = create_session(ours)
    await store.initialize()
    await store.close()
    with pytest.raises(ValidationError, match="already has this version's schema"):
        await import_legacy(ours, f"duckdb:///{tmp_path / 'x.duckdb'}", table="apflow_tasks")


async def test_dry_run_reports_and_changes_nothing(duck: str) -> None:
    write_legacy_database(duck, _rows())
    report = await import_legacy(duck, duck, table="apflow_tasks", dry_run=True)
    assert len(report.tasks) == 7 and report.backup_table == "apflow_tasks_v09"
    with pytest.raises(StorageError, match="import-legacy"):
        await create_session(duck).initialize()
