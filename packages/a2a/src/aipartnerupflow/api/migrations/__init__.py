"""The A2A server's own tables (SDK tasks, push configurations), made by its migrations."""

from __future__ import annotations

from pathlib import Path

from aipartnerupflow.core.storage.plugin_migrations import MigrationSet

__all__ = ["MIGRATIONS"]

MIGRATIONS = MigrationSet(
    name="a2a", versions=str(Path(__file__).with_name("versions")), head="a2a_0002"
)
