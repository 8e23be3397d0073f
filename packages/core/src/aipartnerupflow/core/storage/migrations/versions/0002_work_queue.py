"""Work-queue columns for PostgreSQL workers (dispatch, open_deps, dependents, ...).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from aipartnerupflow.core.storage.schema import queue_columns, task_table_name

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


_INDEXED = ("parent_id", "root_id", "user_id", "original_task_id")


def upgrade() -> None:
    name = task_table_name()
    duckdb = op.get_bind().dialect.name == "duckdb"
    if duckdb:  # DuckDB cannot alter a table that indexes depend on
        for indexed in _INDEXED:
            op.drop_index(f"ix_{name}_{indexed}", table_name=name)
    for column in queue_columns():
        op.add_column(name, column)
    if duckdb:
        for indexed in _INDEXED:
            op.create_index(f"ix_{name}_{indexed}", name, [indexed])
    else:
        op.create_index(
            f"ix_{name}_claimable", name, ["priority", "created_at", "position"],
            postgresql_where=sa.text("status = 'pending' AND dispatch = 'queue' AND open_deps = 0"),
        )
        op.create_index(f"ix_{name}_leases", name, ["lease_expires_at"],
                        postgresql_where=sa.text("status = 'in_progress' AND dispatch = 'queue'"))


def downgrade() -> None:
    name = task_table_name()
    for column in queue_columns():
        op.drop_column(name, column.name)
