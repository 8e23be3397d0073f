"""Apply Alembic migrations to a store (automatically on first use, or ``apflow db upgrade``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from aipartnerupflow.core.errors import StorageError
from aipartnerupflow.core.storage.schema import HEAD_REVISION, version_table_name

__all__ = ["current_revision", "upgrade", "upgrade_versions"]

_MIGRATIONS = Path(__file__).with_name("migrations")
_MIGRATION_LOCK = 0x61706677  # "apfw": one number shared by every aipartnerupflow process


def current_revision(
    conn: sa.Connection, table: str, *, version_table: str | None = None
) -> str | None:
    """The applied revision, or None for a database this project never touched."""
    vt = version_table or version_table_name(table)
    if not sa.inspect(conn).has_table(vt):
        return None
    row = conn.execute(sa.text(f"SELECT version_num FROM {vt}")).first()
    return str(row[0]) if row else None


def upgrade(conn: sa.Connection, table: str) -> bool:
    """Bring the schema to the newest revision; returns True when something was applied.

    On PostgreSQL an advisory lock serialises processes that open a fresh database at once.
    """
    return upgrade_versions(
        conn,
        table,
        versions=None,
        version_table=version_table_name(table),
        head=HEAD_REVISION,
    )


def upgrade_versions(
    conn: sa.Connection,
    table: str,
    *,
    versions: str | None,
    version_table: str,
    head: str,
) -> bool:
    """Apply the Alembic revisions in ``versions`` (None: the core's own) up to ``head``,
    recording them in ``version_table``; True when something was applied."""
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
    try:
        applied = current_revision(conn, table, version_table=version_table)
        if applied == head:
            return False
        if applied is None and versions is None:
            _refuse_legacy_table(conn, table)
        if conn.in_transaction():
            conn.commit()
        _register_duckdb_impl()
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        if versions is not None:
            cfg.set_main_option("path_separator", "os")
            cfg.set_main_option("version_locations", versions)
        cfg.attributes["connection"] = conn
        cfg.attributes["version_table"] = version_table
        if applied is not None:
            _refuse_unknown_revision(cfg, applied, head, version_table)
        with conn.begin():
            command.upgrade(cfg, "head")
        return True
    finally:
        if conn.in_transaction():
            conn.commit()
        if postgres:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
            conn.commit()


def _refuse_legacy_table(conn: sa.Connection, table: str) -> None:
    """A clear error for a database of aipartnerupflow 0.9 (same table name, older schema)."""
    from aipartnerupflow.core.compat.legacy_db import is_legacy_table, legacy_table_error

    if is_legacy_table(conn, table):
        raise legacy_table_error(table)


def _refuse_unknown_revision(cfg: Any, applied: str, head: str, version_table: str) -> None:
    """A database whose recorded revision this release does not know was written by a newer
    release (or another branch): say so, instead of Alembic's "Can't locate revision"."""
    from alembic.script import ScriptDirectory

    try:
        ScriptDirectory.from_config(cfg).get_revision(applied)
    except Exception:
        raise StorageError(
            f"the database's schema revision {applied!r} (in {version_table}) is unknown to "
            f"this release, whose newest is {head!r}: a newer aipartnerupflow wrote it. "
            "Upgrade aipartnerupflow (and its plugins), or use another database"
        ) from None


def _register_duckdb_impl() -> None:
    """Teach Alembic the duckdb dialect (it speaks PostgreSQL's DDL)."""
    from alembic.ddl import impl
    from alembic.ddl.postgresql import PostgresqlImpl

    if "duckdb" not in impl._impls:
        type("DuckDBImpl", (PostgresqlImpl,), {"__dialect__": "duckdb"})
