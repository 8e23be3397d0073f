"""Task storage: the ``TaskStorage`` interface and the session factory.

``create_session()`` returns a store ("session" in the original project's words) for a database
URL: the embedded DuckDB file by default, ``duckdb:///:memory:`` for tests and embedding.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aipartnerupflow.core.errors import ConfigurationError
from aipartnerupflow.core.storage.base import TaskQuery, TaskStorage

__all__ = [
    "TaskQuery",
    "TaskStorage",
    "connect_error",
    "create_session",
    "db_error_text",
    "default_database_url",
    "get_default_session",
    "is_database_error",
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


#: Query or DSN keys whose values are secrets (``?password=``, ``sslpassword=`` …).
_SECRET_KEYS = re.compile(
    r"(?i)((?:^|[?&;\s])(?:password|passwd|pwd|sslpassword|sslkey|secret|token|api_?key)=)"
    r"([^&;\s]*)"
)


def redact_url(url: str) -> str:
    """The URL with its password (user-info or query/DSN values such as ``?password=``)
    replaced by ``***``."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" in creds.split("/", 1)[0]:
            user = creds.split(":", 1)[0]
            url = f"{scheme}://{user}:***@{host}"
    return _SECRET_KEYS.sub(lambda m: m.group(1) + "***", url)


#: Values quoted in driver messages: DuckDB's 'value', PostgreSQL's ``: "value"``.
_QUOTED_VALUE = re.compile(r"'[^']*'|(?<=: )\"[^\"]*\"")


def db_error_text(exc: BaseException) -> str:
    """A database error in one line, safe to log or store: the driver's first line with the
    values it quotes masked (no SQL text, parameters or DETAIL lines, which carry data)."""
    cause = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    text = lines[0] if lines else type(cause).__name__
    text = text.split(" [SQL: ", 1)[0].split("[SQL: ", 1)[0]
    return redact_url(_QUOTED_VALUE.sub(lambda m: m.group(0)[0] + "***" + m.group(0)[-1], text))


def is_database_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the database failing (a :class:`StorageError` other than "not
    found"/"already exists", or a driver's own error), not a problem with the request."""
    from aipartnerupflow.core.errors import StorageError, TaskAlreadyExistsError, TaskNotFoundError

    if isinstance(exc, TaskNotFoundError | TaskAlreadyExistsError):
        return False
    if isinstance(exc, StorageError):
        return True
    module = type(getattr(exc, "orig", None) or exc).__module__.split(".")[0]
    return module in {"sqlalchemy", "psycopg", "psycopg2", "duckdb", "_duckdb", "alembic"}


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
