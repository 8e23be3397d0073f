"""Database connections for the task store: raw DuckDB, and PostgreSQL through SQLAlchemy.

The store writes its own SQL with ``?`` placeholders; a driver runs it. The DuckDB driver talks
to ``duckdb`` directly, so opening the embedded file and running a tree load neither SQLAlchemy
nor a dialect; SQLAlchemy is brought in only for migrations and for :meth:`sa_connection` users
(the A2A task store). Every method runs on the store's database thread.
"""

from __future__ import annotations

import contextlib
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from aipartnerupflow.core.errors import (
    ConfigurationError,
    DatabaseLockedError,
    StorageError,
    TaskAlreadyExistsError,
)
from aipartnerupflow.core.storage.duckdb_head import create_head_schema
from aipartnerupflow.core.storage.schema import HEAD_REVISION, version_table_name

if TYPE_CHECKING:
    import duckdb
    import sqlalchemy as sa

__all__ = ["Driver", "DuckDBDriver", "SqlAlchemyDriver", "open_driver"]


class Driver(ABC):
    """One connection, used by one thread."""

    dialect: str

    def __init__(self, url: str, table: str) -> None:
        self.url = url
        self.table = table
        self.statements = 0
        self._engine: sa.Engine | None = None
        self._sa: sa.Connection | None = None

    def _count(self, *args: Any) -> None:
        self.statements += 1

    def _close_sqlalchemy(self) -> None:
        if self._sa is not None:
            self._sa.close()
            self._sa = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @abstractmethod
    def open(self) -> None:
        """Connect and bring the schema to the newest revision."""

    @abstractmethod
    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement and return its rows (empty for statements without rows)."""

    @abstractmethod
    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Statements inside commit together, or not at all."""

    @abstractmethod
    def sa_connection(self) -> sa.Connection:
        """A SQLAlchemy connection on the same database session (created on first use)."""

    @abstractmethod
    def end_call(self, failed: bool) -> None:
        """Commit (or, after an error, roll back) whatever a call left open."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""

    @abstractmethod
    def decode_json(self, value: Any) -> Any:
        """A JSON column's value as Python data."""


class DuckDBDriver(Driver):
    """The embedded DuckDB database, through the ``duckdb`` module itself."""

    dialect = "duckdb"

    def __init__(self, url: str, table: str, engine_kwargs: dict[str, Any]) -> None:
        super().__init__(url, table)
        unknown = set(engine_kwargs) - {"connect_args"}
        if unknown:
            raise ConfigurationError(
                f"DuckDB stores take only connect_args={{'config': {{...}}}}; "
                f"got {', '.join(sorted(unknown))}"
            )
        # Never fetch extensions from the network behind the user's back (the JSON type is
        # built in); a user's config may still turn it on.
        self.config: dict[str, Any] = {
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            **engine_kwargs.get("connect_args", {}).get("config", {}),
        }
        self.path = url.removeprefix("duckdb:///") or ":memory:"
        self.raw: duckdb.DuckDBPyConnection | None = None
        #: A transaction holding journaled changes is open (committed at a checkpoint).
        self.deferred = False
        #: A statement inside that transaction wrote without the journal: commit it soon.
        self.unjournaled = False

    @property
    def journaled(self) -> bool:
        """Writes to this database go through a journal beside the file (not in memory, and
        not opened read-only)."""
        mode = str(self.config.get("access_mode", "")).upper()
        return not self.path.startswith(":memory:") and mode != "READ_ONLY"

    def begin_deferred(self) -> None:
        self._conn().begin()
        self.deferred = True

    def commit_deferred(self) -> None:
        self.deferred = False
        self._conn().commit()

    def rollback_deferred(self) -> None:
        """Roll back the deferred transaction (or whatever a failed statement left open)."""
        self.deferred = False
        self.unjournaled = False
        if self.raw is not None:
            with contextlib.suppress(Exception):  # no transaction was open
                self.raw.rollback()

    def open(self) -> None:
        import duckdb

        _refuse_foreign_file(self.path)
        try:
            self.raw = duckdb.connect(self.path, config=self.config)
        except duckdb.Error as exc:
            raise _duckdb_open_error(self.url, exc) from None
        if self._revision() != HEAD_REVISION and not create_head_schema(self.raw, self.table):
            from aipartnerupflow.core.storage.migrate import upgrade

            try:
                upgrade(self.sa_connection(), self.table)
            except StorageError as exc:
                raise StorageError(f"cannot use the task database {self.path}: {exc}") from None

    def _revision(self) -> str | None:
        import duckdb

        try:
            rows = self.fetch(f"SELECT version_num FROM {version_table_name(self.table)}")
        except duckdb.CatalogException:
            return None
        return str(rows[0][0]) if rows else None

    def _conn(self) -> duckdb.DuckDBPyConnection:
        if self.raw is None:
            raise StorageError(f"the task store {self.url} is not open")
        return self.raw

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.statements += 1
        cursor = self._conn().execute(sql, list(params) if params else None)
        return cursor.fetchall() if cursor.description else []

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        conn = self._conn()
        if self.deferred:  # inside the journal's transaction: committed right after the call
            self.unjournaled = True
            yield
            return
        conn.begin()
        try:
            yield
        except BaseException:
            conn.rollback()
            raise
        conn.commit()

    def sa_connection(self) -> sa.Connection:
        if self._sa is None:
            import sqlalchemy as sa
            from duckdb_engine import ConnectionWrapper

            raw = self._conn()
            self._engine = sa.create_engine(
                "duckdb:///:memory:",
                creator=lambda: ConnectionWrapper(raw),
                poolclass=sa.pool.StaticPool,
            )
            sa.event.listen(self._engine, "before_cursor_execute", self._count)
            self._sa = self._engine.connect()
        return self._sa

    def end_call(self, failed: bool) -> None:
        if self._sa is not None and self._sa.in_transaction():
            if failed:
                self._sa.rollback()
            else:
                self._sa.commit()
        elif failed and self.raw is not None:
            self.rollback_deferred()

    def close(self) -> None:
        self._close_sqlalchemy()
        self.deferred = False
        if self.raw is not None:
            self.raw.close()
            self.raw = None

    def decode_json(self, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value


class SqlAlchemyDriver(Driver):
    """PostgreSQL (psycopg 3) through one SQLAlchemy connection, READ COMMITTED."""

    dialect = "postgresql"

    def __init__(self, url: str, table: str, engine_kwargs: dict[str, Any]) -> None:
        super().__init__(url, table)
        self.engine_kwargs = engine_kwargs

    def open(self) -> None:
        import sqlalchemy as sa

        from aipartnerupflow.core.storage.migrate import upgrade

        try:
            engine = sa.create_engine(self.url, poolclass=sa.pool.StaticPool, **self.engine_kwargs)
            self._engine = engine.execution_options(isolation_level="READ COMMITTED")
            sa.event.listen(self._engine, "before_cursor_execute", self._count)
            self._sa = self._engine.connect()
            upgrade(self._sa, self.table)
        except sa.exc.DBAPIError as exc:
            from aipartnerupflow.core.storage import connect_error, redact_url

            raise StorageError(
                f"cannot open the task database {redact_url(self.url)}: "
                f"{connect_error(exc.orig or exc)}"
            ) from None

    def sa_connection(self) -> sa.Connection:
        if self._sa is None:
            raise StorageError(f"the task store {self.url} is not open")
        return self._sa

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        result = self.sa_connection().exec_driver_sql(sql.replace("?", "%s"), tuple(params))
        return [tuple(row) for row in result] if result.returns_rows else []

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        conn = self.sa_connection()
        if conn.in_transaction():
            conn.commit()
        with conn.begin():
            yield

    def end_call(self, failed: bool) -> None:
        conn = self._sa
        if conn is not None and conn.in_transaction():
            if failed:
                with contextlib.suppress(Exception):  # the connection may be broken
                    conn.rollback()
            else:
                conn.commit()

    def close(self) -> None:
        self._close_sqlalchemy()

    def decode_json(self, value: Any) -> Any:
        return value  # psycopg decodes json columns itself


def open_driver(url: str, table: str, engine_kwargs: dict[str, Any]) -> Driver:
    """The driver for a normalised store URL (not yet connected)."""
    if url.startswith("postgresql"):
        return SqlAlchemyDriver(url, table, engine_kwargs)
    return DuckDBDriver(url, table, engine_kwargs)


def taken_ids_error(taken: Sequence[str]) -> TaskAlreadyExistsError:
    """The error for an insert whose ids are already stored."""
    return TaskAlreadyExistsError(
        "task id(s) already exist in the store: "
        + ", ".join(sorted(taken))
        + ". Leave out 'id' to get fresh ids, or pick ids that are not used."
    )


def _refuse_foreign_file(path: str) -> None:
    """A clear error for a SQLite file (DuckDB would try to attach it through an extension)."""
    try:
        with open(path, "rb") as file:
            header = file.read(16)
    except OSError:
        return  # missing (a new database) or unreadable: DuckDB reports it
    if header.startswith(b"SQLite format 3"):
        raise StorageError(
            f"cannot open the task database {path}: it is a SQLite file, not a DuckDB database. "
            "Point AIPARTNERUPFLOW_DATABASE_URL (or --database-url) at a DuckDB file or a new path."
        )


def _duckdb_open_error(url: str, exc: BaseException) -> StorageError:
    text = str(exc)
    if "Could not set lock on file" in text or "Conflicting lock" in text:
        match = re.search(r"Conflicting lock is held in (.*?) \(PID (\d+)\)", text)
        holder = f"process {match.group(2)} ({match.group(1)})" if match else "another process"
        return DatabaseLockedError(
            f"the task database {url.removeprefix('duckdb:///')} is in use by {holder}. "
            "DuckDB allows one process per file: stop that process, talk to it through its API "
            "server, or set AIPARTNERUPFLOW_DATABASE_URL to another database."
        )
    first = text.strip().splitlines()[0].rstrip("!") if text.strip() else type(exc).__name__
    hint = ""
    if "Could not read enough bytes" in text or "not a valid DuckDB database" in text:
        hint = (
            ". The file is truncated or damaged: restore it from a backup, or move it away to "
            "start with an empty database"
        )
    elif "newer version" in text.lower() or "storage version" in text.lower():
        hint = ". A newer DuckDB wrote it: upgrade the duckdb package"
    return StorageError(
        f"cannot open the task database {url.removeprefix('duckdb:///')}: {first}{hint}"
    )
