"""The tasks table, named by ``AIPARTNERUPFLOW_TASK_TABLE_NAME`` (default ``apflow_tasks``)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = [
    "COLUMN_KINDS",
    "HEAD_REVISION",
    "build_tasks_table",
    "queue_columns",
    "task_table_name",
    "version_table_name",
]

#: The newest migration; a store at this revision needs no Alembic run.
HEAD_REVISION = "0003"

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def task_table_name() -> str:
    """The configured table name, checked to be a plain SQL identifier."""
    from aipartnerupflow.core.errors import ConfigurationError
    from aipartnerupflow.core.settings import CoreSettings

    name = CoreSettings.from_env().task_table_name.strip()
    if not _NAME.match(name):
        raise ConfigurationError(
            f"AIPARTNERUPFLOW_TASK_TABLE_NAME={name!r} is not a valid table name: use letters, "
            "digits and underscores, starting with a letter (at most 63 characters)"
        )
    return name


def version_table_name(table: str) -> str:
    """Alembic's version table for ``table``."""
    return f"{table}_alembic_version"


#: Each column's kind, for the raw SQL paths (kept equal to the table below by a test).
COLUMN_KINDS: dict[str, str] = {
    **dict.fromkeys(
        (
            "id",
            "parent_id",
            "root_id",
            "user_id",
            "name",
            "status",
            "error",
            "lease_owner",
            "original_task_id",
            "dispatch",
        ),
        "text",
    ),
    **dict.fromkeys(("priority", "position", "attempts", "open_deps"), "int"),
    **dict.fromkeys(("progress", "timeout_seconds"), "float"),
    **dict.fromkeys(("has_children", "has_copy", "cancel_requested"), "bool"),
    **dict.fromkeys(
        ("lease_expires_at", "created_at", "started_at", "updated_at", "completed_at", "run_after"),
        "timestamp",
    ),
    **dict.fromkeys(
        ("dependencies", "inputs", "params", "schemas", "result", "retry", "dependents"), "json"
    ),
}


def build_tasks_table(metadata: sa.MetaData, name: str) -> sa.Table:
    """The tasks table definition (the shape the newest migration creates)."""
    import sqlalchemy as sa

    ts = sa.DateTime(timezone=True)
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("parent_id", sa.String(255), index=True),
        sa.Column("root_id", sa.String(255), index=True),
        sa.Column("user_id", sa.String(255), index=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("dependencies", sa.JSON),
        sa.Column("inputs", sa.JSON),
        sa.Column("params", sa.JSON),
        sa.Column("schemas", sa.JSON),
        sa.Column("result", sa.JSON),
        sa.Column("error", sa.Text),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("retry", sa.JSON),
        sa.Column("timeout_seconds", sa.Float),
        sa.Column("lease_owner", sa.String(255)),
        sa.Column("lease_expires_at", ts),
        sa.Column("created_at", ts),
        sa.Column("started_at", ts),
        sa.Column("updated_at", ts),
        sa.Column("completed_at", ts),
        sa.Column("has_children", sa.Boolean, nullable=False),
        sa.Column("original_task_id", sa.String(255), index=True),
        sa.Column("has_copy", sa.Boolean, nullable=False),
        *queue_columns(),
    )


def queue_columns() -> list[sa.Column[Any]]:
    """Columns of revision 0002: the work queue that PostgreSQL workers claim from."""
    import sqlalchemy as sa

    return [
        sa.Column("dispatch", sa.String(10), nullable=False, server_default="local"),
        sa.Column("open_deps", sa.Integer, nullable=False, server_default="0"),
        sa.Column("dependents", sa.JSON),
        sa.Column("run_after", sa.DateTime(timezone=True)),
        sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    ]
