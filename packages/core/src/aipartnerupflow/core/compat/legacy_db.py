"""Bring the tasks of an aipartnerupflow 0.9 database (DuckDB or PostgreSQL) into ours.

The original created its table (default ``apflow_tasks``, the name ours has too) with
``create_all`` and never migrated it. Its columns are :data:`LEGACY_COLUMNS`; ours add
``root_id``, ``position``, ``attempts``, leases and retry settings. Importing:

1. reads every row of the old table (DuckDB read-only; nothing is changed in another database);
2. converts them (:func:`convert_rows`): dependencies to ``{"id", "required"}`` (names and plain
   strings resolved within the tree), ``progress`` to a float, JSON text decoded, ``root_id`` and
   ``has_children`` derived from ``parent_id``, ``in_progress`` rows (left by a process that
   died: the original never recovered them) made ``pending`` again so they run;
3. refuses the whole import when a row cannot be converted, listing every such row;
4. when the old table is in the target database itself (the usual case: both use
   ``apflow_tasks``), first keeps the old rows in a backup table (``<table>_v09``) and drops the
   old table, so our schema can be created;
5. stores every task in one transaction: nothing is half-imported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aipartnerupflow.core.errors import StorageError, ValidationError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from aipartnerupflow.core.models import TaskModel
    from aipartnerupflow.core.storage.base import TaskStorage

__all__ = [
    "LEGACY_COLUMNS",
    "LegacyImport",
    "check_table_name",
    "convert_rows",
    "import_legacy",
    "is_legacy_table",
    "legacy_table_error",
    "read_legacy_rows",
    "same_database",
]

#: The columns of the original's ``TaskModel`` (aipartnerupflow 0.9.0).
LEGACY_COLUMNS: tuple[str, ...] = (
    "id",
    "parent_id",
    "user_id",
    "name",
    "status",
    "priority",
    "dependencies",
    "inputs",
    "params",
    "result",
    "error",
    "schemas",
    "progress",
    "created_at",
    "started_at",
    "updated_at",
    "completed_at",
    "has_children",
    "original_task_id",
    "has_copy",
)
_STATUSES = ("pending", "in_progress", "completed", "failed", "cancelled")


@dataclass(slots=True)
class LegacyImport:
    """What an import found and did."""

    tasks: list[TaskModel] = field(default_factory=list)
    trees: int = 0
    notes: list[str] = field(default_factory=list)
    backup_table: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{"tasks", "trees", "backup_table", "notes"}`` for ``--json``."""
        return {
            "tasks": len(self.tasks),
            "trees": self.trees,
            "backup_table": self.backup_table,
            "notes": list(self.notes),
        }


# -- recognising and reading the old table -------------------------------------------------


def is_legacy_table(conn: sa.Connection, table: str) -> bool:
    """True when ``table`` exists with the original's columns and without ours."""
    import sqlalchemy as sa

    rows = conn.execute(
        sa.text(
            "SELECT column_name FROM information_schema.columns WHERE table_name = :t "
            "AND table_schema = current_schema()"
        ),
        {"t": table},
    ).all()
    columns = {str(r[0]) for r in rows}
    return bool(columns) and "root_id" not in columns and {"id", "parent_id", "name"} <= columns


def legacy_table_error(table: str) -> StorageError:
    """The error for opening a database whose task table is the original's."""
    return StorageError(
        f"the task database holds the table {table} of aipartnerupflow 0.9 (an older schema "
        "without migrations). Bring its tasks over with `apflow db import-legacy` (the old "
        f"rows are kept in {table}_v09), or point AIPARTNERUPFLOW_DATABASE_URL at another "
        "database."
    )


def _kind(url: str) -> str:
    if url.startswith("duckdb:///"):
        return "duckdb"
    scheme = url.split("://", 1)[0]
    if scheme in ("postgres", "postgresql") or scheme.startswith("postgresql+"):
        return "postgresql"
    raise ValidationError(
        f"unsupported database URL {url.split('@')[-1]!r} for the old database: use "
        "duckdb:///path/to/aipartnerupflow.duckdb or postgresql://user:password@host/db"
    )


def _pg_conninfo(url: str) -> str:
    """A libpq URL for any of the original's spellings (``postgresql+asyncpg://`` ...)."""
    return "postgresql://" + url.split("://", 1)[1]


def _duckdb_path(url: str) -> str:
    from pathlib import Path

    path = url.removeprefix("duckdb:///")
    return str(Path(path).expanduser()) if path and not path.startswith(":memory:") else path


def same_database(a: str, b: str) -> bool:
    """True when two URLs name the same database (DuckDB file or PostgreSQL database)."""
    if _kind(a) != _kind(b):
        return False
    if _kind(a) == "duckdb":
        import os

        pa, pb = _duckdb_path(a), _duckdb_path(b)
        if pa == pb:
            return True
        try:
            return os.path.samefile(pa, pb)
        except OSError:
            return False
    return _pg_conninfo(a) == _pg_conninfo(b)


def _check_columns(found: Sequence[str], table: str) -> list[str]:
    """The extra columns (custom columns of a ``TaskModel`` subclass); raises when the table
    is not the original's."""
    missing = [c for c in LEGACY_COLUMNS if c not in found]
    if "root_id" in found:
        raise ValidationError(
            f"the table {table} already has this version's schema (it has root_id): there is "
            "nothing to import"
        )
    if missing:
        raise ValidationError(
            f"the table {table} is not an aipartnerupflow 0.9 task table: it lacks the "
            f"column(s) {', '.join(missing)}"
        )
    return [c for c in found if c not in LEGACY_COLUMNS]


_JSON_COLUMNS = ("dependencies", "inputs", "params", "result", "schemas")
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def check_table_name(name: str) -> str:
    """``name`` when it is a plain SQL identifier, else a clear error."""
    if not _TABLE_NAME.match(name):
        raise ValidationError(
            f"{name!r} is not a valid table name: use letters, digits and underscores, "
            "starting with a letter (at most 63 characters)"
        )
    return name


def _decode_json_text(row: dict[str, Any]) -> dict[str, Any]:
    """DuckDB returns JSON columns as text; PostgreSQL's driver decodes them itself."""
    for key in _JSON_COLUMNS:
        value = row.get(key)
        if isinstance(value, str):
            try:
                row[key] = json.loads(value)
            except ValueError:
                raise ValidationError(
                    f"task {row.get('id')!r}: column {key} holds invalid JSON: {value[:80]!r}"
                ) from None
    return row


def read_legacy_rows(url: str, table: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Every row of the old table as a dict, and the names of extra columns (synchronous)."""
    check_table_name(table)
    sql = f"SELECT * FROM {table}"
    if _kind(url) == "duckdb":
        import duckdb

        path = _duckdb_path(url)
        try:
            conn = duckdb.connect(path, read_only=True)
        except duckdb.Error as exc:
            raise StorageError(f"cannot open the old database {path}: {exc}") from None
        try:
            try:
                cursor = conn.execute(sql)
            except duckdb.CatalogException:
                raise ValidationError(f"the old database {path} has no table {table}") from None
            names = [d[0] for d in cursor.description or ()]
            data = cursor.fetchall()
        finally:
            conn.close()
        extra = _check_columns(names, table)
        return [_decode_json_text(dict(zip(names, row, strict=True))) for row in data], extra
    import psycopg
    from psycopg import sql as pgsql

    try:
        with psycopg.connect(_pg_conninfo(url)) as pg:
            try:
                pg_cursor = pg.execute(
                    pgsql.SQL("SELECT * FROM {}").format(pgsql.Identifier(table))
                )
            except psycopg.errors.UndefinedTable:
                raise ValidationError(f"the old database has no table {table}") from None
            names = [d.name for d in pg_cursor.description or ()]
            data = pg_cursor.fetchall()
    except psycopg.OperationalError as exc:
        from aipartnerupflow.core.storage import connect_error

        raise StorageError(f"cannot connect to the old database: {connect_error(exc)}") from None
    extra = _check_columns(names, table)
    return [dict(zip(names, row, strict=True)) for row in data], extra


# -- converting ------------------------------------------------------------------------------


def _when(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _roots(rows: dict[str, dict[str, Any]], notes: list[str]) -> dict[str, str | None]:
    """Each task's root id (None for a root); an orphan becomes a root of its own."""
    roots: dict[str, str | None] = {}
    for task_id in rows:
        chain = [task_id]
        current = task_id
        while True:
            parent = rows[current]["parent_id"]
            if not parent:
                break
            if parent not in rows:
                notes.append(
                    f"task {current!r}: its parent {parent!r} is not in the table; imported "
                    "as the root of its own tree"
                )
                rows[current]["parent_id"] = None
                break
            if parent in chain:
                raise ValidationError(
                    f"tasks {', '.join(map(repr, chain))} form a parent_id loop; fix parent_id "
                    "in the old table and import again"
                )
            chain.append(parent)
            current = parent
        top = chain[-1]
        roots[task_id] = None if top == task_id else top
    return roots


def _dependencies(
    raw: Any, task_id: str, tree_ids: set[str], names: dict[str, list[str]], problems: list[str]
) -> list[dict[str, Any]]:
    from aipartnerupflow.core.compat.task_json import normalize_dependency

    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append(f"task {task_id!r}: dependencies is not a list: {raw!r}")
        return []
    out: list[dict[str, Any]] = []
    for dep in raw:
        value, problem = normalize_dependency(dep)
        if problem or not isinstance(value, dict) or not isinstance(value.get("id"), str):
            problems.append(f"task {task_id!r}: dependency {dep!r}: {problem or 'not an id'}")
            continue
        ref = value["id"]
        if ref not in tree_ids and len(names.get(ref, [])) == 1:
            ref = names[ref][0]
        required = value.get("required", True)
        out.append({"id": ref, "required": bool(required)})
    return out


def _object(value: Any, what: str, task_id: str, problems: list[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"task {task_id!r}: {what} is not a JSON object: {value!r}")
        return {}
    return value


def convert_rows(rows: Sequence[dict[str, Any]]) -> LegacyImport:
    """Our task rows for the original's rows; raises with every row that cannot be converted."""
    from aipartnerupflow.core.models import TaskModel

    report = LegacyImport()
    problems: list[str] = []
    by_id: dict[str, dict[str, Any]] = {}
    for row in rows:
        task_id = row.get("id")
        if not isinstance(task_id, str) or not task_id:
            problems.append(f"a row has no id: {row.get('name')!r}")
            continue
        by_id[task_id] = dict(row)
    roots = _roots(by_id, report.notes)
    members: dict[str, set[str]] = {}
    for task_id, root in roots.items():
        members.setdefault(root or task_id, set()).add(task_id)
    parents = {r["parent_id"] for r in by_id.values() if r["parent_id"]}
    tree_names: dict[str, dict[str, list[str]]] = {}
    for top, ids in members.items():
        named = tree_names.setdefault(top, {})
        for other in ids:
            named.setdefault(str(by_id[other]["name"]), []).append(other)
    order = sorted(by_id.values(), key=lambda r: (_when(r.get("created_at")) or _EPOCH, r["id"]))
    reopened = 0
    for position, row in enumerate(order):
        task_id = row["id"]
        root_id = roots[task_id]
        tree_ids = members[root_id or task_id]
        names = tree_names[root_id or task_id]
        status = row.get("status") or "pending"
        if status not in _STATUSES:
            problems.append(f"task {task_id!r}: unknown status {status!r}")
            continue
        if status == "in_progress":
            status = "pending"
            reopened += 1
        priority = row.get("priority")
        priority = 2 if priority is None else int(priority)
        if not 0 <= priority <= 3:
            report.notes.append(
                f"task {task_id!r}: priority {priority} is outside 0..3; stored as "
                f"{min(max(priority, 0), 3)}"
            )
            priority = min(max(priority, 0), 3)
        progress = row.get("progress")
        progress_value = float(progress) if isinstance(progress, int | float | Decimal) else 0.0
        name = row.get("name")
        if not isinstance(name, str) or not name:
            problems.append(f"task {task_id!r}: no name")
            continue
        report.tasks.append(
            TaskModel(
                id=task_id,
                name=name,
                parent_id=row["parent_id"] or None,
                root_id=root_id,
                user_id=row.get("user_id"),
                status=status,
                priority=priority,
                position=position,
                dependencies=_dependencies(
                    row.get("dependencies"), task_id, tree_ids, names, problems
                ),
                inputs=_object(row.get("inputs"), "inputs", task_id, problems),
                params=_object(row.get("params"), "params", task_id, problems),
                schemas=_object(row.get("schemas"), "schemas", task_id, problems),
                result=row.get("result"),
                error=row.get("error"),
                progress=min(max(progress_value, 0.0), 1.0),
                created_at=_when(row.get("created_at")),
                started_at=_when(row.get("started_at")),
                updated_at=_when(row.get("updated_at")),
                completed_at=_when(row.get("completed_at")) if status != "pending" else None,
                has_children=task_id in parents,
                original_task_id=row.get("original_task_id"),
                has_copy=bool(row.get("has_copy")),
            )
        )
    if problems:
        raise ValidationError(
            "the old table cannot be imported as it is (nothing was changed):\n- "
            + "\n- ".join(problems)
        )
    if reopened:
        report.notes.append(
            f"{reopened} task(s) were in_progress (left by a process that stopped; the original "
            "never resumed them) and are pending again, so running their tree runs them"
        )
    report.trees = len(members)
    report.notes.extend(_tree_notes(report.tasks))
    return report


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _tree_notes(tasks: list[TaskModel]) -> list[str]:
    """Dependency problems the trees will report when run (kept as they were stored)."""
    from aipartnerupflow.core.validation import dependency_problems

    trees: dict[str, list[TaskModel]] = {}
    for t in tasks:
        trees.setdefault(t.root_id or t.id, []).append(t)
    notes: list[str] = []
    for root_id, members in trees.items():
        notes.extend(f"tree {root_id}: {p}" for p in dependency_problems(members))
    return notes


# -- importing -------------------------------------------------------------------------------


def _keep_backup(url: str, table: str, backup: str) -> None:
    """Copy the old table to ``backup`` and drop it, in one transaction."""
    check_table_name(backup)
    check_table_name(table)
    if _kind(url) == "duckdb":
        statements = [f"CREATE TABLE {backup} AS SELECT * FROM {table}", f"DROP TABLE {table}"]
        import duckdb

        conn = duckdb.connect(_duckdb_path(url))
        try:
            exists = conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [backup]
            ).fetchone()
            if exists and exists[0]:
                raise ValidationError(
                    f"the backup table {backup} already exists; pass another --backup-table"
                )
            conn.execute("BEGIN")
            for sql in statements:
                conn.execute(sql)
            conn.execute("COMMIT")
        finally:
            conn.close()
        return
    import psycopg
    from psycopg import sql as pgsql

    with psycopg.connect(_pg_conninfo(url)) as pg:
        row = pg.execute("SELECT to_regclass(%s)", [backup]).fetchone()
        if row and row[0]:
            raise ValidationError(
                f"the backup table {backup} already exists; pass another --backup-table"
            )
        with pg.transaction():
            pg.execute(
                pgsql.SQL("CREATE TABLE {} AS SELECT * FROM {}").format(
                    pgsql.Identifier(backup), pgsql.Identifier(table)
                )
            )
            pg.execute(pgsql.SQL("DROP TABLE {}").format(pgsql.Identifier(table)))


async def import_legacy(
    source_url: str,
    target_url: str,
    *,
    table: str,
    backup_table: str | None = None,
    allow_extra_columns: bool = False,
    dry_run: bool = False,
    open_store: Any = None,
) -> LegacyImport:
    """Import the old table of ``source_url`` into our store at ``target_url``.

    When both are the same database and ``table`` is our table's name, the old rows are kept
    in ``backup_table`` (default ``<table>_v09``) first. ``open_store(url)`` makes the target
    store (default :func:`~aipartnerupflow.core.storage.create_session`).
    """
    import asyncio

    from aipartnerupflow.core.storage import create_session
    from aipartnerupflow.core.storage.schema import task_table_name

    rows, extra = await asyncio.to_thread(read_legacy_rows, source_url, table)
    if extra and not allow_extra_columns:
        raise ValidationError(
            f"the table {table} has custom column(s) {', '.join(extra)} (a TaskModel subclass "
            "of the original); this version has no custom columns: move that data into inputs "
            "or params first, or pass --allow-extra-columns to import without them"
        )
    report = convert_rows(rows)
    if extra:
        report.notes.append(f"custom column(s) not imported: {', '.join(extra)}")
    in_place = same_database(source_url, target_url) and table == task_table_name()
    if in_place:
        report.backup_table = backup_table or f"{table}_v09"
    if dry_run:
        return report
    if in_place and report.backup_table:
        await asyncio.to_thread(_keep_backup, source_url, table, report.backup_table)
    store: TaskStorage = (open_store or create_session)(target_url)
    try:
        await store.initialize()
        await store.insert_tasks(report.tasks)
    except Exception as exc:
        if in_place:
            raise StorageError(
                f"the import failed ({exc}); the old rows are safe in the table "
                f"{report.backup_table}: fix the cause and run `apflow db import-legacy "
                f"--table {report.backup_table}`"
            ) from exc
        raise
    finally:
        await store.close()
    return report
