"""Plugins add their own tables through their own Alembic migrations, run via run_sql."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from aipartnerupflow.core.errors import PluginError
from aipartnerupflow.core.storage.base import TaskQuery, TaskStorage
from aipartnerupflow.core.storage.plugin_migrations import (
    MigrationSet,
    apply_migrations,
    installed_migration_sets,
)


def _plugin(tmp_path: Path) -> MigrationSet:
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "demo_0001.py").write_text(
        textwrap.dedent(
            '''
            """Demo plugin table."""
            import sqlalchemy as sa
            from alembic import op

            revision = "demo_0001"
            down_revision = None
            branch_labels = None
            depends_on = None

            def upgrade():
                op.create_table(
                    "demo_plugin_notes",
                    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
                    sa.Column("note", sa.Text, nullable=False),
                )

            def downgrade():
                op.drop_table("demo_plugin_notes")
            '''
        )
    )
    return MigrationSet(name="demo", versions=str(versions), head="demo_0001")


async def test_a_plugin_table_is_created_once_and_usable_through_run_sql(
    store: TaskStorage, tmp_path: Path
) -> None:
    import sqlalchemy as sa

    demo = _plugin(tmp_path)

    def drop(conn: sa.Connection) -> None:  # the postgres schema is shared between runs
        with conn.begin():
            conn.execute(sa.text("DROP TABLE IF EXISTS demo_plugin_notes"))
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {demo.version_table('apflow_tasks')}"))

    await store.run_sql(drop)
    assert await apply_migrations(store, [demo]) == ["demo"]
    assert await apply_migrations(store, [demo]) == []  # at its head: nothing to do

    def write_and_read(conn: sa.Connection) -> list[str]:
        with conn.begin():
            conn.execute(sa.text("INSERT INTO demo_plugin_notes (id, note) VALUES (1, 'hi')"))
        return [row[0] for row in conn.execute(sa.text("SELECT note FROM demo_plugin_notes"))]

    assert await store.run_sql(write_and_read) == ["hi"]
    assert await store.count_tasks(TaskQuery()) == {}  # the core's table is untouched


def test_installed_sets_are_migration_sets() -> None:
    assert all(isinstance(s, MigrationSet) for s in installed_migration_sets())


def test_a_bad_set_name_is_refused() -> None:
    with pytest.raises(PluginError, match="lower-case"):
        MigrationSet(name="Bad-Name", versions=".", head="x")


async def test_run_sql_is_part_of_the_storage_interface() -> None:
    assert "run_sql" in TaskStorage.__dict__
