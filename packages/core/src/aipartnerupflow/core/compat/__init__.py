"""Compatibility with aipartnerupflow 0.9: its task JSON, API names and database.

A thin layer over our own API, which stays primary:

* :mod:`~aipartnerupflow.core.compat.task_json` - the fields the original's task JSON carries;
* :mod:`~aipartnerupflow.core.compat.creator` - ``TaskCreator`` (creation from an array);
* :mod:`~aipartnerupflow.core.compat.repository` - the original's single-field setters;
* :mod:`~aipartnerupflow.core.compat.legacy_db` - reading a 0.9 database and importing it.

Where we deliberately differ (a fixed defect, a safer default), the error says what to do
instead; docs/migration.md lists every difference.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TaskCreator"]


def __getattr__(name: str) -> Any:
    if name == "TaskCreator":
        from aipartnerupflow.core.compat.creator import TaskCreator

        return TaskCreator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
