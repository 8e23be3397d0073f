"""PostgreSQL: leave room on each heap page, so that run-state updates are HOT.

A task row is updated at every attempt start, end and progress report, and none of those
columns is indexed. With full pages (the default fillfactor of 100) every update moves the row
to another page and adds an entry to each of the table's indexes; with half of each page free,
PostgreSQL keeps the new version on the same page and touches no index (a heap-only tuple).
Existing pages keep their layout; new rows get the room. DuckDB has no such setting.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from aipartnerupflow.core.storage.schema import task_table_name

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

FILLFACTOR = 50


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE {task_table_name()} SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE {task_table_name()} RESET (fillfactor)")
