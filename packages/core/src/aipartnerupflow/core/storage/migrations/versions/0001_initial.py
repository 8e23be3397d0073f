"""Create the tasks table.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from aipartnerupflow.core.storage.schema import build_tasks_table, task_table_name

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = build_tasks_table(sa.MetaData(), task_table_name())
    table.create(op.get_bind())


def downgrade() -> None:
    op.drop_table(task_table_name())
