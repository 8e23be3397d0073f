"""Per-event-loop resources (client pools, channels, connections) with one close path.

Connections belong to the event loop that opened them, so executors keep shared clients per
loop: ``await loop_resource(key, factory, close)`` returns the running loop's resource for
``key``, creating it on first use. :func:`aclose_loop_resources` closes every resource of the
running loop; ``TaskManager.close()`` and worker shutdown call it, and a loop run by
``asyncio.run`` closes them at its end even when nobody did.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable
from typing import Any, TypeVar

__all__ = ["aclose_loop_resources", "forget_loop_resource", "loop_resource", "loop_resources"]

log = logging.getLogger("aipartnerupflow.executors")

T = TypeVar("T")
_Close = Callable[[Any], Awaitable[None] | None]


class _Pool:
    __slots__ = ("guard", "items", "lock")

    def __init__(self) -> None:
        self.items: dict[Hashable, tuple[Any, _Close]] = {}
        self.guard: AsyncGenerator[None, None] | None = None
        self.lock = asyncio.Lock()


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool] = weakref.WeakKeyDictionary()


async def _close_items(pool: _Pool) -> None:
    items = list(pool.items.items())
    pool.items.clear()
    for key, (value, close) in reversed(items):
        try:
            outcome = close(value)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            log.warning("closing the shared resource %r failed", key, exc_info=True)


async def _guard(pool: _Pool) -> AsyncGenerator[None, None]:
    # asyncio.run() finalises async generators before closing its loop (shutdown_asyncgens).
    try:
        yield
    finally:
        await _close_items(pool)


async def loop_resource(
    key: Hashable,
    factory: Callable[[], T | Awaitable[T]],
    close: Callable[[T], Awaitable[None] | None],
) -> T:
    """The running loop's resource for ``key``; ``factory()`` makes it on first use.

    ``close(resource)`` (sync or async) is called once, by :func:`aclose_loop_resources` or
    at the loop's end. Concurrent first uses share one creation.
    """
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None:
        pool = _pools[loop] = _Pool()
        guard = _guard(pool)
        await guard.__anext__()  # runs to its yield: the loop now tracks it
        pool.guard = guard
    found = pool.items.get(key)
    if found is not None:
        value: T = found[0]
        return value
    async with pool.lock:
        found = pool.items.get(key)
        if found is not None:
            return found[0]  # type: ignore[no-any-return]
        made = factory()
        created: T = await made if inspect.isawaitable(made) else made
        pool.items[key] = (created, close)
        return created


def loop_resources() -> dict[Hashable, Any]:
    """The resources of the running event loop, by key (for inspection and tests)."""
    pool = _pools.get(asyncio.get_running_loop())
    return {k: v for k, (v, _) in pool.items.items()} if pool else {}


async def forget_loop_resource(key: Hashable) -> None:
    """Close and drop one resource of the running loop (e.g. a client found broken)."""
    pool = _pools.get(asyncio.get_running_loop())
    if pool is None or key not in pool.items:
        return
    value, close = pool.items.pop(key)
    outcome = close(value)
    if inspect.isawaitable(outcome):
        await outcome


async def aclose_loop_resources() -> None:
    """Close every shared resource of the running event loop (call before the loop ends)."""
    pool = _pools.pop(asyncio.get_running_loop(), None)
    if pool is None:
        return
    guard, pool.guard = pool.guard, None
    if guard is not None:
        await guard.aclose()  # runs its finally: closes the items
    else:
        await _close_items(pool)
