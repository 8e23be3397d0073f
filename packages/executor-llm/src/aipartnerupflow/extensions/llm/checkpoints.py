"""Checkpoints of completed provider calls, so a retried or resumed task never pays twice.

A checkpoint is keyed by the task id and the call's position within the task's run (0, 1 …)
and holds a hash of the request; a later attempt whose call at that position sends the same
request gets the stored answer back without calling the provider.

Storage: a small SQLite file of its own (``AIPARTNERUPFLOW_LLM_CHECKPOINT_PATH``; stdlib
``sqlite3``, WAL: a commit survives a killed process), deliberately isolated in this module.
The task store has a plugin-table hook (``TaskStorage.run_sql`` and plugin migrations,
entry-point group ``aipartnerupflow.migrations``), but an executor cannot reach the engine's
store: :class:`~aipartnerupflow.core.context.TaskContext` does not expose it. Once it does,
this module can move onto a migration of its own behind the same interface
(:meth:`CheckpointStore.load`, :meth:`CheckpointStore.save`), and checkpoints will follow the
task store to PostgreSQL. Until then a checkpoint is visible to the engines of one host, which
is what a retry or a resume after a crash needs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from aipartnerupflow.core.errors import StorageError

__all__ = ["CheckpointStore", "request_hash"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS llm_checkpoints (
    task_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    request_hash TEXT NOT NULL,
    answer TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (task_id, position)
)
"""


def request_hash(model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    """SHA-256 of the request as the provider sees it (without the key)."""
    body = json.dumps(
        {"model": model, "messages": messages, "params": params},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


class CheckpointStore:
    """The checkpoints in one SQLite file; every method is safe from any thread."""

    _instances: dict[Path, CheckpointStore] = {}
    _instances_lock = threading.Lock()

    def __init__(self, path: Path, ttl_seconds: float) -> None:
        self.path = path
        self.ttl_seconds = ttl_seconds
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    @classmethod
    def at(cls, path: Path, ttl_seconds: float) -> CheckpointStore:
        """The store of ``path`` (one per file per process)."""
        with cls._instances_lock:
            found = cls._instances.get(path)
            if found is None or found.ttl_seconds != ttl_seconds:
                found = cls._instances[path] = cls(path, ttl_seconds)
            return found

    def _connect(self) -> sqlite3.Connection:
        """The open connection (made on first use; call with ``_lock`` held)."""
        if self._conn is not None:
            return self._conn
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit survives the process being killed (what a resume needs);
            # only an OS crash or power loss may drop the newest ones.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
            conn.execute(
                "DELETE FROM llm_checkpoints WHERE created_at < ?",
                (time.time() - self.ttl_seconds,),
            )
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(
                f"cannot open the LLM checkpoint file {self.path}: {exc} (set "
                "AIPARTNERUPFLOW_LLM_CHECKPOINT_PATH to a writable file, or "
                "AIPARTNERUPFLOW_LLM_CHECKPOINTS=false)"
            ) from None
        self._conn = conn
        return conn

    def _load(self, task_id: str, position: int, digest: str) -> dict[str, Any] | None:
        with self._lock:
            row = (
                self._connect()
                .execute(
                    "SELECT request_hash, answer, created_at FROM llm_checkpoints "
                    "WHERE task_id = ? AND position = ?",
                    (task_id, position),
                )
                .fetchone()
            )
        if row is None or row[0] != digest or row[2] < time.time() - self.ttl_seconds:
            return None
        answer: dict[str, Any] = json.loads(row[1])
        return answer

    def _save(self, task_id: str, position: int, digest: str, answer: dict[str, Any]) -> None:
        text = json.dumps(answer, ensure_ascii=False, allow_nan=False, default=str)
        with self._lock:
            self._connect().execute(
                "INSERT OR REPLACE INTO llm_checkpoints "
                "(task_id, position, request_hash, answer, created_at) VALUES (?, ?, ?, ?, ?)",
                (task_id, position, digest, text, time.time()),
            )

    def _forget(self, task_id: str) -> int:
        with self._lock:
            return (
                self._connect()
                .execute("DELETE FROM llm_checkpoints WHERE task_id = ?", (task_id,))
                .rowcount
            )

    async def load(self, task_id: str, position: int, digest: str) -> dict[str, Any] | None:
        """The stored answer of this call, or None (none, another request, or expired)."""
        return await asyncio.to_thread(self._load, task_id, position, digest)

    async def save(self, task_id: str, position: int, digest: str, answer: dict[str, Any]) -> None:
        """Store the answer of a completed call (durably, before the task goes on)."""
        await asyncio.to_thread(self._save, task_id, position, digest, answer)

    def close(self) -> None:
        """Close the connection (reopened on next use)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    async def forget(self, task_id: str) -> int:
        """Delete every checkpoint of a task; returns how many there were."""
        return await asyncio.to_thread(self._forget, task_id)
