"""The write journal of a DuckDB file: an append-only, fsynced log of changes beside it.

A DuckDB commit costs 1-3 ms (its columnar UPDATE and its own log), an ``fsync`` of a small
append a fraction of that. So the store makes a batch of changes durable by appending it here
(one record, one ``fdatasync``), applies it to DuckDB in a transaction it commits later (a
checkpoint), and empties the journal once that commit is done. Opening the file replays what
the journal still holds: records are framed by length and CRC-32, so a record torn by a crash
(the last one) is detected and dropped; replaying twice gives the same rows.

Record layout: 4-byte big-endian payload length, 4-byte CRC-32 of the payload, the payload
(UTF-8 JSON). The file starts with :data:`MAGIC`.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import zlib
from typing import Any

from aipartnerupflow.core.errors import StorageError

__all__ = ["MAGIC", "Journal", "crash_point", "journal_path"]

log = logging.getLogger("aipartnerupflow.storage")

MAGIC = b"APFLOW-JOURNAL-1\n"
_HEADER = struct.Struct(">II")
#: A payload longer than this is not a record but damage (a torn length field).
_MAX_RECORD = 1 << 31

#: ``_APFLOW_CRASH_AT=name:n`` kills the process (SIGKILL) the n-th time it reaches the named
#: point: the fault-injection tests' way to crash at the journal's critical moments.
_CRASH_ENV = "_APFLOW_CRASH_AT"
_crash_counts: dict[str, int] = {}


def crash_point(name: str) -> None:
    """Die here (SIGKILL) when the fault-injection tests ask for it; nothing otherwise."""
    if _crash_due(name):
        _die()


def _crash_due(name: str) -> bool:
    wanted = os.environ.get(_CRASH_ENV)
    if not wanted:
        return False
    point, _, count = wanted.partition(":")
    if point != name:
        return False
    seen = _crash_counts.get(name, 0) + 1
    _crash_counts[name] = seen
    return seen >= int(count or 1)


def _die() -> None:
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def journal_path(database_path: str) -> str:
    """Where the journal of a DuckDB file lives."""
    return database_path + ".journal"


class Journal:
    """An append-only file of checksummed records, each durable when :meth:`append` returns."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None
        self.size = 0
        self.records = 0

    def open(self) -> list[Any]:
        """Open (or create) the journal; returns the payloads of its intact records.

        A torn or corrupt record ends the readable part: it and anything after it are
        dropped (with a warning), since no caller was told they were durable.
        """
        created = not os.path.exists(self.path)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise StorageError(f"cannot open the journal {self.path}: {exc.strerror}") from None
        self.fd = fd
        data = _read_all(fd)
        if not data.startswith(MAGIC):
            if data and not MAGIC.startswith(data):
                os.close(fd)
                self.fd = None
                raise StorageError(
                    f"{self.path} is not an aipartnerupflow journal (it sits where the DuckDB "
                    "file's journal belongs); move it away and open the database again"
                )
            self._rewrite_header()
            if created:
                _fsync_directory(self.path)
            return []
        payloads, end = _parse(data)
        if end < len(data):
            log.warning(
                "journal %s: dropped %d bytes after the last intact record (a write torn by a "
                "crash)",
                self.path,
                len(data) - end,
            )
            os.ftruncate(fd, end)
            os.fsync(fd)
        self.size = end
        self.records = len(payloads)
        os.lseek(fd, end, os.SEEK_SET)
        return payloads

    def append(self, payload: bytes) -> None:
        """Append one record and wait until it is on disk."""
        fd = self._fd()
        frame = _HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        if _crash_due("journal.torn"):  # the tests' torn write: half a record, then death
            _write_all(fd, frame[: len(frame) // 2])
            os.fsync(fd)
            _die()
        try:
            _write_all(fd, frame)
            os.fdatasync(fd)
        except OSError as exc:
            # A partly written record must not be read back as intact: cut it off.
            try:
                os.ftruncate(fd, self.size)
                os.lseek(fd, self.size, os.SEEK_SET)
            except OSError:
                pass
            raise StorageError(f"cannot write the journal {self.path}: {exc.strerror}") from exc
        self.size += len(frame)
        self.records += 1
        crash_point("journal.appended")

    def read(self) -> list[Any]:
        """The payloads of the intact records (the file is left as it is)."""
        return _parse(_read_all(self._fd()))[0]

    def reset(self) -> None:
        """Empty the journal (after its records were committed to the database)."""
        if self.records == 0 and self.size == len(MAGIC):
            return
        self._rewrite_header()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _rewrite_header(self) -> None:
        fd = self._fd()
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        _write_all(fd, MAGIC)
        os.fsync(fd)  # an emptied journal must stay empty, or old records would come back
        self.size = len(MAGIC)
        self.records = 0

    def _fd(self) -> int:
        if self.fd is None:
            raise StorageError(f"the journal {self.path} is not open")
        return self.fd


def _parse(data: bytes) -> tuple[list[Any], int]:
    """The intact records' payloads, and where the intact part ends."""
    payloads: list[Any] = []
    at = len(MAGIC)
    while at + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, at)
        start = at + _HEADER.size
        if length > _MAX_RECORD or start + length > len(data):
            break
        payload = data[start : start + length]
        if zlib.crc32(payload) != crc:
            break
        try:
            payloads.append(json.loads(payload))
        except ValueError:
            break
        at = start + length
    return payloads, at


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks: list[bytes] = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_directory(path: str) -> None:
    """Make a new file's directory entry durable."""
    try:
        dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)
