"""A database of aipartnerupflow 0.9, written from its published schema, for import tests.

:data:`LEGACY_SCHEMA_SQL` is the task table of aipartnerupflow 0.9.0 (PyPI) as SQL DDL,
written from its SQLAlchemy model (``aipartnerupflow/core/storage/sqlalchemy/models.py``, class
``TaskModel``, table ``apflow_tasks``, created by ``Base.metadata.create_all``: the project
had no migrations). Column names, types, defaults and the indexed columns follow that model:
``String(255)``/``String(100)``/``String(50)``, ``Integer``, ``JSON``, ``Text``,
``Numeric(3, 2)``, ``DateTime(timezone=True)``, ``Boolean``, and ``index=True`` on id, parent_id,
user_id, name, original_task_id and has_copy (SQLAlchemy names those ``ix_<table>_<column>``).
The same statements run on DuckDB and PostgreSQL. None of the original's code is run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aipartnerupflow.core.compat.legacy_db import LEGACY_COLUMNS

__all__ = ["LEGACY_COLUMNS", "LEGACY_SCHEMA_SQL", "legacy_row", "write_legacy_database"]

LEGACY_SCHEMA_SQL = """
CREATE TABLE {table} (
    id VARCHAR(255) NOT NULL,
    parent_id VARCHAR(255),
    user_id VARCHAR(255),
    name VARCHAR(100) NOT NULL,
    status VARCHAR(50),
    priority INTEGER,
    dependencies JSON,
    inputs JSON,
    params JSON,
    result JSON,
    error TEXT,
    schemas JSON,
    progress NUMERIC(3, 2),
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now(),
    started_at TIMESTAMP WITH TIME ZONE,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now(),
    completed_at TIMESTAMP WITH TIME ZONE,
    has_children BOOLEAN,
    original_task_id VARCHAR(255),
    has_copy BOOLEAN,
    PRIMARY KEY (id)
);
CREATE INDEX ix_{table}_id ON {table} (id);
CREATE INDEX ix_{table}_parent_id ON {table} (parent_id);
CREATE INDEX ix_{table}_user_id ON {table} (user_id);
CREATE INDEX ix_{table}_name ON {table} (name);
CREATE INDEX ix_{table}_original_task_id ON {table} (original_task_id);
CREATE INDEX ix_{table}_has_copy ON {table} (has_copy)
"""

_JSON = ("dependencies", "inputs", "params", "result", "schemas")


def legacy_row(id: str, name: str, **fields: Any) -> dict[str, Any]:
    """A row as the original's ``TaskRepository.create_task`` stored it (pending, priority 1,
    progress 0, empty inputs/params/schemas), with ``fields`` on top."""
    row: dict[str, Any] = {
        "id": id,
        "name": name,
        "parent_id": None,
        "user_id": None,
        "status": "pending",
        "priority": 1,
        "dependencies": [],
        "inputs": {},
        "params": {},
        "schemas": {},
        "result": None,
        "error": None,
        "progress": 0,
        "has_children": False,
        "original_task_id": None,
        "has_copy": False,
    }
    unknown = set(fields) - set(LEGACY_COLUMNS)
    if unknown:
        raise ValueError(f"not columns of the 0.9 table: {', '.join(sorted(unknown))}")
    row.update(fields)
    return row


def _statements(table: str) -> list[str]:
    return [s.strip() for s in LEGACY_SCHEMA_SQL.format(table=table).split(";") if s.strip()]


def write_legacy_database(
    url: str,
    rows: Sequence[dict[str, Any]],
    *,
    table: str = "apflow_tasks",
    extra_columns: Sequence[str] = (),
) -> None:
    """Create the 0.9 table in ``url`` (``duckdb:///file`` or ``postgresql://...``, a libpq URL
    that may carry ``?options=-csearch_path%3D<schema>``) and insert ``rows``.

    ``extra_columns`` adds text columns, as a custom ``TaskModel`` subclass of 0.9 did.
    """
    statements = _statements(table)
    statements += [f"ALTER TABLE {table} ADD COLUMN {c} VARCHAR(255)" for c in extra_columns]
    columns = [*LEGACY_COLUMNS, *extra_columns]
    values = [
        [json.dumps(r[c]) if c in _JSON and r.get(c) is not None else r.get(c) for c in columns]
        for r in rows
    ]
    if url.startswith("duckdb:///"):
        import duckdb

        conn = duckdb.connect(url.removeprefix("duckdb:///"))
        try:
            for sql in statements:
                conn.execute(sql)
            marks = ", ".join("?" for _ in columns)
            for value in values:
                conn.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", value)
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1)) as pg:
        for sql in statements:
            pg.execute(sql)
        marks = ", ".join("%s" for _ in columns)
        for value in values:
            pg.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                value,
            )
