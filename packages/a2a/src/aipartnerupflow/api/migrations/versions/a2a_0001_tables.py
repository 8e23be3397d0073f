"""The A2A task and push-configuration tables.

Revision ID: a2a_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "a2a_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "apflow_a2a_tasks" not in existing:  # servers before this revision made them directly
        op.create_table(
            "apflow_a2a_tasks",
            sa.Column("id", sa.String(255), primary_key=True),
            sa.Column("context_id", sa.String(255), nullable=False),
            sa.Column("owner", sa.String(255), nullable=False),
            sa.Column("state", sa.String(40), nullable=False),
            sa.Column("updated_ns", sa.BigInteger),
            sa.Column("task", sa.Text, nullable=False),
        )
    if "apflow_a2a_push_configs" not in existing:
        op.create_table(
            "apflow_a2a_push_configs",
            sa.Column("task_id", sa.String(255), primary_key=True),
            sa.Column("owner", sa.String(255), primary_key=True),
            sa.Column("config_id", sa.String(255), primary_key=True),
            sa.Column("config", sa.Text, nullable=False),
        )


def downgrade() -> None:
    op.drop_table("apflow_a2a_push_configs")
    op.drop_table("apflow_a2a_tasks")
