"""Task storage: the ``TaskStorage`` interface and the session factory.

``create_session()`` returns a store ("session" in the original project's words) for a database
URL: the embedded DuckDB file by default, ``duckdb:///:memory:`` for tests and embedding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aipartnerupflow.core.errors import ConfigurationError
from aipartnerupflow.core.storage.base import TaskQuery, TaskStorage

__all__ = [
    "TaskQuery",
    "TaskStorage",
    "connect_error",
    "create_session",
    "default_database_url",
    "get_default_session",
    "redact_url",
    "reset_default_session",
]

_default: TaskStorage | None = None


def default_database_url() -> str:
    """``AIPARTNERUPFLOW_DATABASE_URL``, else a DuckDB file in the per-user data directory."""
    from aipartnerupflow.core.settings import CoreSettings

    settings = CoreSettings.from_env()  # when a store is made, so tests may change it
    if settings.database_url:
        return settings.database_url
    path = settings.db_path
    if not path:
        path = str(Path.home() / ".aipartnerup" / "data" / "aipartnerupflow.duckdb")
    return f"duckdb:///{path}"


def normalize_url(url: str) -> str:
    """Check a database URL and pick the driver; a clear error for anything unsupported."""
    if url.startswith("duckdb:///"):
        target = url.removeprefix("duckdb:///")
        if target and target != ":memory:" and not target.startswith(":memory:"):
            Path(target).expanduser().parent.mkdir(parents=True, exist_ok=True)
            return "duckdb:///" + str(Path(target).expanduser())
        return url
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    raise ConfigurationError(
        f"unsupported database URL {redact_url(url)!r}: use duckdb:///path/to/file.duckdb, "
        "duckdb:///:memory: or postgresql://user:password@host:5432/dbname"
    )


def connect_error(exc: BaseException) -> str:
    """The cause of a failed connection in a few words (libpq's first line, sans prefix)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return "connection failed"
    return lines[0].rsplit(" failed: ", 1)[-1].replace("FATAL:  ", "")


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``***``."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" not in creds:
            return url
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


def create_session(url: str | None = None, **engine_kwargs: Any) -> TaskStorage:
    """A task store for ``url`` (default: :func:`default_database_url`). Opened on first use.

    ``engine_kwargs`` go to SQLAlchemy's ``create_engine`` for PostgreSQL; a DuckDB store
    talks to ``duckdb`` directly and takes only ``connect_args={"config": {...}}`` (DuckDB
    settings such as ``threads`` or ``memory_limit``).
    """
    target = normalize_url(url or default_database_url())
    if target.startswith("postgresql+psycopg://"):
        from aipartnerupflow.core.storage.postgres import create_postgres_storage

        return create_postgres_storage(target, **engine_kwargs)
    from aipartnerupflow.core.storage.sql_store import SqlTaskStorage

    return SqlTaskStorage(target, engine_kwargs=engine_kwargs)


def get_default_session() -> TaskStorage:
    """The process-wide default store (created on first call)."""
    global _default
    if _default is None:
        _default = create_session()
    return _default


def reset_default_session() -> None:
    """Forget the default store (closing is the caller's job)."""
    global _default
    _default = None
