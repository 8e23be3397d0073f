"""Several replicas on one database: a version per A2A task, and the A2A event log.

Every write of an A2A task in cluster mode checks and bumps ``version`` (a replica that lost
the race reloads instead of overwriting), and appends the event it applied to
``apflow_a2a_events``, which replicas tail to stream a task another replica runs. The log is
only written in cluster mode, which needs PostgreSQL; DuckDB gets the column only.

Revision ID: a2a_0002
Revises: a2a_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "a2a_0002"
down_revision = "a2a_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("apflow_a2a_tasks", sa.Column("version", sa.BigInteger))
    if op.get_bind().dialect.name == "postgresql":
        op.create_table(
            "apflow_a2a_events",
            sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
            sa.Column("task_id", sa.String(255), nullable=False),
            sa.Column("version", sa.BigInteger, nullable=False),
            sa.Column("event", sa.Text, nullable=False),
        )
        op.create_index("ix_apflow_a2a_events_task", "apflow_a2a_events", ["task_id", "version"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_table("apflow_a2a_events")
    op.drop_column("apflow_a2a_tasks", "version")
