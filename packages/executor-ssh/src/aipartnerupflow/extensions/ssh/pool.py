"""Reused SSH connections: one per (host, port, user, credentials, host-key check) per loop.

Each connection runs at most ``max_sessions`` commands at once (OpenSSH's MaxSessions is 10 by
default); more tasks wait for a free session. At most ``max_connections`` connections are
kept; beyond that the least recently used idle one is closed, and when every one is busy the
new connection serves its task and is closed afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Connection", "ConnectionPool", "Lease"]

log = logging.getLogger("aipartnerupflow.extensions.ssh")


class Connection(Protocol):
    """What the pool needs of a connection (an asyncssh connection fits)."""

    def is_closed(self) -> bool: ...

    def close(self) -> None: ...

    async def wait_closed(self) -> None: ...


@dataclass(eq=False)
class Lease:
    """A connection handed to one task, with its session slot."""

    connection: Any
    sessions: asyncio.Semaphore
    users: int = 0
    transient: bool = False
    fresh: bool = True
    broken: bool = False


async def _close(connection: Connection) -> None:
    try:
        connection.close()
        await asyncio.wait_for(connection.wait_closed(), 5)
    except Exception:
        log.debug("closing an SSH connection failed", exc_info=True)


class ConnectionPool:
    """Connections of one event loop, by key."""

    def __init__(self, max_connections: int, max_sessions: int) -> None:
        self.max_connections = max_connections
        self.max_sessions = max_sessions
        self._entries: OrderedDict[Hashable, Lease] = OrderedDict()
        self._locks: dict[Hashable, asyncio.Lock] = {}

    def __len__(self) -> int:
        return len(self._entries)

    async def _get(self, key: Hashable, opener: Callable[[], Awaitable[Any]]) -> Lease:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            entry = self._entries.get(key)
            if entry is not None and not entry.broken and not entry.connection.is_closed():
                self._entries.move_to_end(key)
                entry.fresh = False
                return entry
            if entry is not None:
                self._entries.pop(key, None)
                await _close(entry.connection)
            connection = await opener()
            entry = Lease(connection, asyncio.Semaphore(self.max_sessions))
            await self._make_room()
            if len(self._entries) < self.max_connections:
                self._entries[key] = entry
            else:
                entry.transient = True
            return entry

    async def _make_room(self) -> None:
        while len(self._entries) >= self.max_connections:
            idle = next((k for k, e in self._entries.items() if e.users == 0), None)
            if idle is None:
                return
            await _close(self._entries.pop(idle).connection)

    @contextlib.asynccontextmanager
    async def lease(
        self, key: Hashable, opener: Callable[[], Awaitable[Any]]
    ) -> AsyncIterator[Lease]:
        """A connection for ``key`` (opened with ``opener()`` when none is usable), holding
        one of its session slots until the block ends."""
        entry = await self._get(key, opener)
        entry.users += 1
        try:
            async with entry.sessions:
                yield entry
        finally:
            entry.users -= 1
            if entry.broken and self._entries.get(key) is entry:
                self._entries.pop(key, None)
            if entry.users == 0 and (entry.transient or entry.broken):
                await _close(entry.connection)

    async def aclose(self) -> None:
        """Close every connection."""
        entries = list(self._entries.values())
        self._entries.clear()
        for entry in entries:
            await _close(entry.connection)
