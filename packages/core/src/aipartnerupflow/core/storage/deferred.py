"""Journaled writes of a DuckDB file: durable by the journal, committed to the file later.

The store's database thread hands every batch of task changes and every insert to
:class:`JournaledWrites`. A batch is appended to the :class:`~.journal.Journal` (one record,
one ``fdatasync``: durable when the call returns) and kept in memory; it is applied to DuckDB,
inside one long transaction, before the next read, so reads see it. That transaction is
committed at a checkpoint (the store idle, the journal large, a write that is not journaled,
closing), after which the journal is emptied. A kill -9 loses only the uncommitted
transaction: the next open replays the journal into the file.

Replay is idempotent: the committed file is either older than every record (crash before the
checkpoint's commit) or already holds them all and nothing newer (crash between the commit
and emptying the journal), and records set columns to values or insert rows that are missing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aipartnerupflow.core.models import TASK_COLUMNS, TaskModel
from aipartnerupflow.core.storable import storable_text
from aipartnerupflow.core.storage.drivers import taken_ids_error
from aipartnerupflow.core.storage.journal import Journal, crash_point
from aipartnerupflow.core.storage.schema import COLUMN_KINDS

if TYPE_CHECKING:
    from aipartnerupflow.core.storage.drivers import DuckDBDriver
    from aipartnerupflow.core.storage.sql_store import _Sql

__all__ = ["CHECKPOINT_BYTES", "IDLE_CHECKPOINT_SECONDS", "JournaledWrites"]

log = logging.getLogger("aipartnerupflow.storage")

#: Commit to the file and empty the journal once it holds this many bytes.
CHECKPOINT_BYTES = 32 << 20
#: ... or once the store has had nothing to do for this long.
IDLE_CHECKPOINT_SECONDS = 0.25
#: Apply the changes kept in memory to DuckDB once this many rows are waiting.
_OVERLAY_ROWS = 20_000
#: Journaled rows are inserted into DuckDB this many at a time.
_APPLY_ROWS = 1_000
#: How many rows' ``(root_id, has_children)`` :meth:`JournaledWrites.add` keeps in memory.
_KNOWN_ROWS = 10_000

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_TIMESTAMPS = frozenset(n for n, kind in COLUMN_KINDS.items() if kind == "timestamp")
_ID_AT = TASK_COLUMNS.index("id")
_TIMESTAMP_AT = tuple(i for i, n in enumerate(TASK_COLUMNS) if n in _TIMESTAMPS)


def _stamp(value: datetime) -> int | str:
    """A timestamp as the journal holds it: microseconds since the epoch (exact, and five
    times cheaper than ISO text), or ISO text for a datetime without a time zone."""
    if value.tzinfo is None:
        return value.isoformat()
    return (value - _EPOCH) // _MICROSECOND


def _unstamp(value: Any) -> Any:
    if isinstance(value, int):
        return _EPOCH + timedelta(microseconds=value)
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


def _encode_fields(fields: dict[str, Any]) -> str:
    """One row's changes as JSON; raises for values no store holds."""
    out = {
        name: _stamp(value) if name in _TIMESTAMPS and value is not None else value
        for name, value in fields.items()
    }
    return json.dumps(out, allow_nan=False, separators=(",", ":"))


def _encode_changes(pending: dict[str, dict[str, Any]]) -> bytes:
    """A batch of row changes as one record."""
    out: dict[str, dict[str, Any]] = {}
    for task_id, fields in pending.items():
        stamps = _TIMESTAMPS.intersection(fields)
        if stamps:
            fields = dict(fields)
            for name in stamps:
                value = fields[name]
                if value is not None:
                    fields[name] = _stamp(value)
        out[task_id] = fields
    return json.dumps({"u": out}, allow_nan=False, separators=(",", ":")).encode()


def _decode_fields(fields: dict[str, Any]) -> dict[str, Any]:
    for name in _TIMESTAMPS.intersection(fields):
        fields[name] = _unstamp(fields[name])
    return fields


def _encode_row_chunks(rows: Sequence[TaskModel]) -> list[bytes]:
    """Rows as JSON arrays of row values, :data:`_APPLY_ROWS` rows to an array."""
    chunks = []
    for at in range(0, len(rows), _APPLY_ROWS):
        values = []
        for row in rows[at : at + _APPLY_ROWS]:
            line = [getattr(row, name) for name in TASK_COLUMNS]
            for i in _TIMESTAMP_AT:
                if line[i] is not None:
                    line[i] = _stamp(line[i])
            values.append(line)
        chunks.append(json.dumps(values, allow_nan=False, separators=(",", ":")).encode())
    return chunks


def _insert_record(chunks: Sequence[bytes]) -> bytes:
    """One record holding every chunk's rows (so they are durable, or not, together)."""
    return b'{"i":[' + b",".join(chunk[1:-1] for chunk in chunks) + b"]}"


def _decode_rows(values: list[list[Any]]) -> list[TaskModel]:
    rows = []
    for line in values:
        for i in _TIMESTAMP_AT:
            line[i] = _unstamp(line[i])
        rows.append(TaskModel(*line))
    return rows


def _failed_fields(reason: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "status": "failed",
        "error": reason,
        "completed_at": now,
        "updated_at": now,
        "lease_owner": None,
        "lease_expires_at": None,
    }


class JournaledWrites:
    """The journal, the changes not yet applied to DuckDB, and the transaction holding the
    applied but uncommitted ones. Used only by the store's database thread."""

    def __init__(self, driver: DuckDBDriver, sql: _Sql, journal: Journal) -> None:
        self.driver = driver
        self.sql = sql
        self.journal = journal
        self.overlay: dict[str, dict[str, Any]] = {}
        #: Rows journaled but not yet inserted into DuckDB (JSON arrays of row values, in
        #: order), and their ids.
        self.pending: list[bytes] = []
        self.pending_ids: set[str] = set()
        #: ``(root_id, has_children)`` of rows this store added or looked up as parents;
        #: forgotten on any write that does not go through the journal.
        self.known: dict[str, tuple[str | None, bool]] = {}
        #: Another store of this process has the file open: commit every write at once.
        self.shared = False
        #: ``time.monotonic()`` of the last batch of changes (an idle store checkpoints).
        self.last_write = 0.0

    @property
    def dirty(self) -> bool:
        """Something is durable only in the journal (a checkpoint is due when idle)."""
        return (
            bool(self.overlay)
            or bool(self.pending)
            or self.driver.deferred
            or self.journal.records > 0
        )

    # -- opening -----------------------------------------------------------------------------

    def open(self) -> None:
        """Open the journal and replay what a crashed process left in it."""
        payloads = self.journal.open()
        if payloads:
            log.info("journal %s: replaying %d record(s)", self.journal.path, len(payloads))
            self._replay(payloads)

    def _replay(self, payloads: list[Any]) -> None:
        """Apply records to the file and commit them (row by row if the batch fails)."""
        driver = self.driver
        try:
            with driver.transaction():
                for payload in payloads:
                    self._apply_record(payload)
                crash_point("journal.replay.applied")
        except Exception as exc:
            log.warning("journal replay as one transaction failed (%s); row by row", exc)
            for payload in payloads:
                self._apply_isolated(payload)
        crash_point("journal.replay.committed")
        self.journal.reset()

    def _apply_record(self, payload: dict[str, Any]) -> None:
        """A record inserts rows (``i``), changes rows (``u``), or both, in that order."""
        if "i" in payload:
            rows = _decode_rows(payload["i"])
            taken = self._existing([r.id for r in rows])
            fresh = [r for r in rows if r.id not in taken]
            if fresh:
                self.sql.insert(self.driver, fresh)
        if "u" in payload:
            changes = {i: _decode_fields(f) for i, f in payload["u"].items()}
            if changes:
                self.sql.update_many(self.driver, changes)

    def _apply_isolated(self, payload: dict[str, Any]) -> None:
        driver = self.driver
        parts: list[dict[str, Any]] = [{"i": [row]} for row in payload.get("i", ())]
        parts += [{"u": {i: f}} for i, f in payload.get("u", {}).items()]
        for part in parts:
            try:
                with driver.transaction():
                    self._apply_record(part)
            except Exception as exc:
                task_id = next(iter(part["u"])) if "u" in part else part["i"][0][_ID_AT]
                log.error("task %s: its journaled change could not be applied: %s", task_id, exc)
                if "u" in part:
                    reason = storable_text(f"the task's state could not be stored: {exc}") or ""
                    try:
                        with driver.transaction():
                            self.sql.update_many(driver, {task_id: _failed_fields(reason)})
                    except Exception:
                        log.exception("task %s: could not even record that failure", task_id)

    def _existing(self, ids: Sequence[str]) -> set[str]:
        sql = f"SELECT id FROM {self.sql.table} WHERE id IN (SELECT unnest(CAST(? AS TEXT[])))"
        return {r[0] for r in self.driver.fetch(sql, [list(ids)])}

    # -- writing -----------------------------------------------------------------------------

    def write(self, pending: dict[str, dict[str, Any]], maintain: bool = True) -> dict[str, str]:
        """Make a batch of changes durable (one journal record); returns the rows that could
        not be stored, with the reason (those rows are recorded as failed instead).
        ``maintain=False`` touches only the journal and memory, never DuckDB (the event
        loop's direct writes leave :meth:`maintain` to the database thread)."""
        failed: dict[str, str] = {}
        try:
            payload = _encode_changes(pending)  # the whole batch in one encoder call
        except (TypeError, ValueError, RecursionError):  # find the rows no store holds
            for task_id, fields in pending.items():
                try:
                    _encode_fields(fields)
                except (TypeError, ValueError, RecursionError) as exc:
                    reason = storable_text(f"the task's state could not be stored: {exc}") or ""
                    failed[task_id] = reason
                    log.error("task %s: %s", task_id, reason)
                    pending[task_id] = _failed_fields(reason)
            payload = _encode_changes(pending)
        self.journal.append(payload)
        self.last_write = time.monotonic()
        overlay = self.overlay
        known = self.known
        for task_id, fields in pending.items():
            if known and "has_children" in fields:
                known.pop(task_id, None)
            mine = overlay.get(task_id)
            if mine is None:
                overlay[task_id] = dict(fields)
            else:
                mine.update(fields)
        if maintain:
            self.maintain()
        return failed

    @property
    def maintenance_due(self) -> bool:
        """Changes kept in memory or the journal have grown enough to apply or commit them."""
        return (
            len(self.overlay) >= _OVERLAY_ROWS
            or self.shared
            or self.journal.size >= CHECKPOINT_BYTES
        )

    def maintain(self) -> None:
        """Apply the in-memory changes when there are many; checkpoint a large journal."""
        if len(self.overlay) >= _OVERLAY_ROWS:
            self.apply()
        if self.shared or self.journal.size >= CHECKPOINT_BYTES:
            self.checkpoint()

    def insert(self, rows: Sequence[TaskModel]) -> list[str]:
        """Journal new rows (one record, durable on return); they reach DuckDB with the next
        read or checkpoint. Returns the ids that are already taken (or given twice), in
        which case nothing is written."""
        ids = [r.id for r in rows]
        taken = self._taken(ids)
        if taken:
            return taken
        self._journal_rows(_encode_row_chunks(rows), ids)
        self.maintain()
        return []

    def _taken(self, ids: Sequence[str]) -> list[str]:
        taken: set[str] = set()
        if len(set(ids)) != len(ids):
            seen: set[str] = set()
            for task_id in ids:
                if task_id in seen:
                    taken.add(task_id)
                seen.add(task_id)
        pending = self.pending_ids
        taken.update(i for i in ids if i in pending)
        stored = [i for i in ids if i not in pending]
        if stored:
            taken.update(self._existing(stored))
        return sorted(taken)

    def _journal_rows(
        self, chunks: list[bytes], ids: Sequence[str], changes: bytes | None = None
    ) -> None:
        """Append one insert record (with ``changes``, a ``u`` part, if given) and keep its
        row chunks for :meth:`apply`."""
        record = _insert_record(chunks)
        if changes is not None:
            record = record[:-1] + b',"u":' + changes + b"}"
        self.journal.append(record)
        self.pending.extend(chunks)
        self.pending_ids.update(ids)
        if self.overlay:  # changes to ids no row had yet changed nothing: drop them
            for task_id in ids:
                self.overlay.pop(task_id, None)

    def add(self, row: TaskModel, fresh_id: bool = False) -> bool:
        """``create_task``'s insert: the parent's ``root_id`` and ``has_children`` looked up
        (in memory or with one statement), the row and the parent's flag journaled as one
        record (durable on return), and both kept in memory until the next read applies
        them. False when the parent does not exist; raises for a taken id. ``fresh_id``:
        the id was just generated (a UUID), so it is not looked up."""
        parent_id = row.parent_id
        if not fresh_id and row.id in self.pending_ids:
            raise taken_ids_error([row.id])
        wanted = [] if fresh_id else [row.id]
        if self.shared:
            self.known.clear()
        parent = self.known.get(parent_id) if parent_id is not None else None
        if parent_id is not None and parent is None:
            wanted.append(parent_id)
            if parent_id in self.pending_ids:
                self.apply()  # the parent is in memory only: put it where SELECT finds it
        if wanted:
            for task_id, fact in self.sql.tree_facts(self.driver, wanted).items():
                if task_id == row.id:
                    raise taken_ids_error([row.id])
                parent = fact
                self._remember(task_id, parent)
        flag = None  # the parent's has_children, set in the same record
        if parent_id is not None:
            if parent is None:
                return False
            row.root_id = parent[0] or parent_id
            if not parent[1]:
                flag = json.dumps({parent_id: {"has_children": True}}).encode()
        self._journal_rows(_encode_row_chunks([row]), [row.id], flag)
        self._remember(row.id, (row.root_id, False))
        if flag is not None and parent_id is not None and parent is not None:
            self.overlay.setdefault(parent_id, {})["has_children"] = True
            self._remember(parent_id, (parent[0], True))
        self.maintain()
        return True

    def _remember(self, task_id: str, fact: tuple[str | None, bool]) -> None:
        if self.shared:
            return
        if len(self.known) >= _KNOWN_ROWS:
            self.known.clear()
        self.known[task_id] = fact

    def apply(self) -> None:
        """Apply the rows and changes kept in memory to DuckDB (in the open transaction):
        journaled rows are inserted with their later changes already merged in."""
        if not self.overlay and not self.pending:
            return
        driver = self.driver
        if not driver.deferred:
            driver.begin_deferred()
        chunks, self.pending, self.pending_ids = self.pending, [], set()
        changes, self.overlay = self.overlay, {}
        try:
            for chunk in chunks:  # one statement per chunk: bounded memory
                rows = _decode_rows(json.loads(chunk))
                if changes:
                    for r in rows:
                        fields = changes.pop(r.id, None)
                        if fields is not None:
                            for name, value in fields.items():
                                setattr(r, name, value)
                self.sql.insert(driver, rows)
                del rows
            if changes:
                self.sql.update_many(driver, changes)
        except Exception as exc:  # a value the file refuses: the replay isolates its row
            log.warning("journaled changes could not be applied (%s); replaying the journal", exc)
            self.recover()

    def checkpoint(self) -> None:
        """Commit everything to the file and empty the journal."""
        self.apply()
        if self.driver.deferred:
            try:
                self.driver.commit_deferred()
            except BaseException:  # the file did not take them: reads must still see them
                self.recover()
                raise
        crash_point("journal.checkpoint.committed")
        self.journal.reset()

    def recover(self) -> None:
        """After a failed statement: roll back, then replay the journal and commit it."""
        self.overlay = {}
        self.pending, self.pending_ids = [], set()
        self.known.clear()
        self.driver.rollback_deferred()
        payloads = self.journal.read()
        if payloads:
            self._replay(payloads)

    # -- the database thread's calls ---------------------------------------------------------

    def before_call(self, sqlalchemy: bool) -> None:
        """Reads see every journaled change; SQLAlchemy callers get a committed file."""
        if sqlalchemy or self.shared:
            self.known.clear()  # SQLAlchemy callers may change any row
            self.checkpoint()
        else:
            self.apply()

    def after_call(self) -> None:
        """A call that wrote without the journal is committed at once (with the journal)."""
        if self.driver.unjournaled:
            self.driver.unjournaled = False
            self.known.clear()
            self.checkpoint()

    def failed_call(self) -> None:
        """A call failed inside the open transaction: restore what the journal holds."""
        self.driver.unjournaled = False
        self.recover()

    def close(self) -> None:
        try:
            self.checkpoint()
        finally:
            self.journal.close()
