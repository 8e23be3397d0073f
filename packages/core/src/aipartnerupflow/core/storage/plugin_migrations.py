"""Plugins' own tables, created and changed by their own Alembic migrations.

A plugin ships a directory of Alembic revision files (a linear history of its own) and a
:class:`MigrationSet` naming it, registered under the entry-point group
``aipartnerupflow.migrations``::

    [project.entry-points."aipartnerupflow.migrations"]
    myplugin = "myplugin.migrations:MIGRATIONS"

Each set keeps its revision in its own version table (``<task table>_<name>_alembic_version``),
so the core's history and every plugin's evolve independently. :func:`apply_migrations` runs
through :meth:`TaskStorage.run_sql`, on the store's own connection and database thread;
``apflow db upgrade`` applies every installed set.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aipartnerupflow.core.errors import PluginError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from aipartnerupflow.core.storage.base import TaskStorage

__all__ = ["MIGRATIONS_GROUP", "MigrationSet", "apply_migrations", "installed_migration_sets"]

MIGRATIONS_GROUP = "aipartnerupflow.migrations"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")


@dataclass(frozen=True, slots=True)
class MigrationSet:
    """A plugin's migrations: ``versions`` is the directory of its Alembic revision files,
    ``head`` the newest revision id in it."""

    name: str
    versions: str
    head: str

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise PluginError(
                f"migration set name {self.name!r} must be lower-case letters, digits and "
                "underscores, starting with a letter (at most 31 characters)"
            )

    def version_table(self, task_table: str) -> str:
        """Where this set records its revision."""
        return f"{task_table}_{self.name}_alembic_version"


def installed_migration_sets() -> list[MigrationSet]:
    """Every set registered under ``aipartnerupflow.migrations`` (imports their modules)."""
    from aipartnerupflow.core.registry import PluginGroup

    group = PluginGroup(MIGRATIONS_GROUP)
    sets = []
    for name in group.names():
        found = group.load(name)
        if not isinstance(found, MigrationSet):
            raise PluginError(
                f"entry point {name!r} in {MIGRATIONS_GROUP} points at {found!r}, which is "
                "not an aipartnerupflow.core.storage.plugin_migrations.MigrationSet"
            )
        sets.append(found)
    return sets


async def apply_migrations(
    storage: TaskStorage, sets: Sequence[MigrationSet] | None = None
) -> list[str]:
    """Bring each set (default: every installed one) to its head; the names it upgraded."""
    from aipartnerupflow.core.storage.schema import task_table_name

    chosen = installed_migration_sets() if sets is None else list(sets)
    table = task_table_name()
    applied: list[str] = []
    for mset in chosen:

        def run(conn: sa.Connection, mset: MigrationSet = mset) -> bool:
            from aipartnerupflow.core.storage.migrate import upgrade_versions

            return upgrade_versions(
                conn,
                table,
                versions=mset.versions,
                version_table=mset.version_table(table),
                head=mset.head,
            )

        if await storage.run_sql(run):
            applied.append(mset.name)
    return applied
