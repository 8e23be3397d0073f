"""One event stream per engine: every task transition and progress report, and a final event."""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

__all__ = ["EventBus", "EventKind", "StreamingCallbacks", "Subscription", "TaskEvent"]

log = logging.getLogger("aipartnerupflow.events")


class EventKind(StrEnum):
    """What an event reports."""

    TREE_STARTED = "tree_started"
    TASK_STATUS = "task_status"
    TASK_PROGRESS = "task_progress"
    TREE_FINISHED = "tree_finished"


@dataclass(slots=True, frozen=True)
class TaskEvent:
    """An event of a tree run. ``tree_finished`` is always the last event of a run."""

    kind: str
    root_id: str
    task_id: str
    name: str
    status: str
    seq: int
    timestamp: float
    progress: float = 0.0
    message: str | None = None
    result: Any = None
    error: str | None = None

    @property
    def final(self) -> bool:
        """True for the run's last event."""
        return self.kind == EventKind.TREE_FINISHED

    def to_dict(self) -> dict[str, Any]:
        """The event as a JSON-ready dict."""
        return asdict(self)


class Subscription:
    """Events of one root (or of all roots), as an async iterator.

    A subscription to a root ends after that root's ``tree_finished`` event.
    """

    def __init__(self, bus: EventBus, root_id: str | None) -> None:
        self._bus = bus
        self.root_id = root_id
        self._queue: asyncio.Queue[TaskEvent | None] = asyncio.Queue()
        self._done = False

    def _offer(self, event: TaskEvent) -> None:
        if self.root_id is None or event.root_id == self.root_id:
            self._queue.put_nowait(event)

    def close(self) -> None:
        """Stop the iteration and detach from the bus."""
        self._bus._subscribers.discard(self)
        self._queue.put_nowait(None)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __aiter__(self) -> AsyncIterator[TaskEvent]:
        return self

    async def __anext__(self) -> TaskEvent:
        if self._done:
            raise StopAsyncIteration
        event = await self._queue.get()
        if event is None:
            self._done = True
            raise StopAsyncIteration
        if event.final and self.root_id is not None:
            self._done = True
            self.close()
        return event


class EventBus:
    """Fans events out to subscriptions and listeners, in publication order."""

    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()
        self._listeners: list[Callable[[TaskEvent], Any]] = []
        self._seq = itertools.count(1)
        self._pending: set[asyncio.Future[Any]] = set()
        self._failures: dict[int, int] = {}

    def subscribe(self, root_id: str | None = None) -> Subscription:
        """A new subscription; it sees events published from now on."""
        sub = Subscription(self, root_id)
        self._subscribers.add(sub)
        return sub

    def add_listener(self, listener: Callable[[TaskEvent], Any]) -> None:
        """Call ``listener(event)`` (sync or async) for every event."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[TaskEvent], Any]) -> None:
        """Stop calling a listener."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    @property
    def active(self) -> bool:
        """True when anybody listens (events are skipped otherwise)."""
        return bool(self._subscribers or self._listeners)

    def publish(
        self, kind: str, root_id: str, task_id: str, name: str, status: str, **extra: Any
    ) -> None:
        """Publish one event."""
        if not (self._subscribers or self._listeners):
            next(self._seq)
            return
        event = TaskEvent(
            kind=kind,
            root_id=root_id,
            task_id=task_id,
            name=name,
            status=status,
            seq=next(self._seq),
            timestamp=time.time(),
            **extra,
        )
        for sub in list(self._subscribers):
            sub._offer(event)
        for listener in list(self._listeners):
            try:
                value = listener(event)
                if inspect.isawaitable(value):
                    future = asyncio.ensure_future(value)
                    self._pending.add(future)
                    future.add_done_callback(functools.partial(self._settled, who=listener))
            except Exception as exc:
                self._failed(listener, exc)

    def _settled(self, future: asyncio.Future[Any], who: Callable[..., Any]) -> None:
        self._pending.discard(future)
        if not future.cancelled() and future.exception() is not None:
            self._failed(who, future.exception())

    def _failed(self, listener: Callable[..., Any], exc: BaseException | None) -> None:
        """Log a listener's first failure with its name; later ones are only counted."""
        key = id(listener)
        count = self._failures.get(key, 0)
        self._failures[key] = count + 1
        if count == 0:
            name = getattr(listener, "__qualname__", None) or type(listener).__qualname__
            log.error(
                "event listener %s failed (later failures of it are not logged): %s",
                name,
                exc,
                exc_info=exc,
            )


class StreamingCallbacks:
    """Callback-style adapter over the event stream (the original project's interface)."""

    def __init__(
        self,
        on_task_status: Callable[[TaskEvent], Any] | None = None,
        on_progress: Callable[[TaskEvent], Any] | None = None,
        on_final: Callable[[TaskEvent], Any] | None = None,
    ) -> None:
        self.on_task_status = on_task_status
        self.on_progress = on_progress
        self.on_final = on_final

    def __call__(self, event: TaskEvent) -> Any:
        handler = {
            EventKind.TASK_STATUS: self.on_task_status,
            EventKind.TASK_PROGRESS: self.on_progress,
            EventKind.TREE_FINISHED: self.on_final,
        }.get(EventKind(event.kind))
        return handler(event) if handler is not None else None
