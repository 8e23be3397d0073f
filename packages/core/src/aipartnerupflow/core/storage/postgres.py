"""PostgreSQL storage (``pip install "aipartnerupflow-core[postgres]"``)."""

from __future__ import annotations

from typing import Any

from aipartnerupflow.core.errors import ConfigurationError
from aipartnerupflow.core.storage.base import TaskStorage

__all__ = ["create_postgres_storage", "require_psycopg"]


def require_psycopg() -> None:
    """Fail with the install line when the PostgreSQL driver is missing."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            'PostgreSQL needs the psycopg driver: pip install "aipartnerupflow[postgres]"'
        ) from None


def create_postgres_storage(url: str, **engine_kwargs: Any) -> TaskStorage:
    """A PostgreSQL task store (same group-commit design as DuckDB, on psycopg 3)."""
    require_psycopg()
    from aipartnerupflow.core.storage.sql_store import SqlTaskStorage

    return SqlTaskStorage(url, engine_kwargs=engine_kwargs)
