"""Create the tasks table.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from aipartnerupflow.core.storage.schema import task_table_name

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    name = task_table_name()
    op.create_table(
        name,
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("parent_id", sa.String(255)),
        sa.Column("root_id", sa.String(255)),
        sa.Column("user_id", sa.String(255)),
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
        sa.Column("original_task_id", sa.String(255)),
        sa.Column("has_copy", sa.Boolean, nullable=False),
    )
    for column in ("parent_id", "root_id", "user_id", "original_task_id"):
        op.create_index(f"ix_{name}_{column}", name, [column])


def downgrade() -> None:
    op.drop_table(task_table_name())
