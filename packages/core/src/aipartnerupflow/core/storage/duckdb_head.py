"""A new DuckDB file's schema at the newest revision, created without Alembic.

Running the migrations imports Alembic and SQLAlchemy: about 70 MB and a few hundred
milliseconds the first time a process opens a new file (``apflow run`` on a fresh database,
every test, every benchmark). A brand-new file gets these statements instead. A test creates
one file each way and compares their catalogues, so the two cannot drift; once
``HEAD_REVISION`` moves past :data:`REVISION`, new files go through Alembic again until this
module is brought up to date.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aipartnerupflow.core.storage.schema import HEAD_REVISION, version_table_name

if TYPE_CHECKING:
    import duckdb

__all__ = ["REVISION", "create_head_schema"]

log = logging.getLogger("aipartnerupflow.storage")

#: The revision these statements produce.
REVISION = "0003"

_TABLE = (
    "CREATE TABLE {t}(id VARCHAR, parent_id VARCHAR, root_id VARCHAR, user_id VARCHAR, "
    '"name" VARCHAR NOT NULL, status VARCHAR NOT NULL, priority INTEGER NOT NULL, '
    '"position" INTEGER NOT NULL, dependencies JSON, inputs JSON, params JSON, '
    '"schemas" JSON, result JSON, "error" VARCHAR, progress FLOAT NOT NULL, '
    "attempts INTEGER NOT NULL, retry JSON, timeout_seconds FLOAT, lease_owner VARCHAR, "
    "lease_expires_at TIMESTAMP WITH TIME ZONE, created_at TIMESTAMP WITH TIME ZONE, "
    "started_at TIMESTAMP WITH TIME ZONE, updated_at TIMESTAMP WITH TIME ZONE, "
    "completed_at TIMESTAMP WITH TIME ZONE, has_children BOOLEAN NOT NULL, "
    "original_task_id VARCHAR, has_copy BOOLEAN NOT NULL, "
    "dispatch VARCHAR DEFAULT('local') NOT NULL, open_deps INTEGER DEFAULT('0') NOT NULL, "
    "dependents JSON, run_after TIMESTAMP WITH TIME ZONE, "
    "cancel_requested BOOLEAN DEFAULT(false) NOT NULL, PRIMARY KEY(id))"
)
_INDEXED = ("original_task_id", "parent_id", "root_id", "user_id")


def _statements(table: str) -> list[str]:
    version = version_table_name(table)
    return [
        _TABLE.format(t=table),
        *(f"CREATE INDEX ix_{table}_{column} ON {table}({column})" for column in _INDEXED),
        f"CREATE TABLE {version}(version_num VARCHAR, PRIMARY KEY(version_num))",
        f"INSERT INTO {version} VALUES ('{REVISION}')",
    ]


def create_head_schema(conn: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Create the schema in a database that has neither of its tables yet; False (nothing
    done) when either exists, when these statements are behind the newest migration, or
    when another connection created them meanwhile: the caller runs the migrations then."""
    if REVISION != HEAD_REVISION:
        return False
    names = [table, version_table_name(table)]
    found = conn.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name IN (?, ?)", names
    ).fetchall()
    if found[0][0]:
        return False
    conn.begin()
    try:
        for statement in _statements(table):
            conn.execute(statement)
        conn.commit()
    except Exception as exc:  # e.g. another store of this process created it first
        log.debug("creating the schema directly failed (%s); running the migrations", exc)
        conn.rollback()
        return False
    return True
