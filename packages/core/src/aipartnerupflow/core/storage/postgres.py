"""PostgreSQL storage (``pip install "aipartnerupflow-core[postgres]"``)."""

from __future__ import annotations

from typing import Any

from aipartnerupflow.core.errors import ConfigurationError
from aipartnerupflow.core.storage.base import TaskStorage

__all__ = ["create_postgres_storage"]


def create_postgres_storage(url: str, **engine_kwargs: Any) -> TaskStorage:
    """A PostgreSQL task store; needs the ``postgres`` extra."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            'PostgreSQL needs the psycopg driver: pip install "aipartnerupflow[postgres]"'
        ) from None
    raise ConfigurationError(
        "PostgreSQL storage is not available in this version yet; use a DuckDB URL"
    )
