"""Running and following trees on the daemon that holds the database.

A run goes through ``tasks.execute`` with ``use_streaming``: the server answers with
server-sent events (a start frame, then every engine event until ``tree_finished``), which feed
the same live display as a local run. Ctrl-C (or SIGTERM) cancels the tree on the server and
waits until every task has ended; a second Ctrl-C stops waiting.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from aipartnerupflow.cli._common import CliError
from aipartnerupflow.cli._remote import (
    NOT_FOUND,
    Remote,
    RemoteError,
    Unreachable,
    daemon_refuses,
    flatten,
    model,
)
from aipartnerupflow.cli.commands.run import RunOutcome, renew_ids, result_from_tasks

if TYPE_CHECKING:
    from aipartnerupflow.cli._display import Display
    from aipartnerupflow.core.events import TaskEvent
    from aipartnerupflow.core.models import TaskModel

__all__ = ["follow_on_server", "poll_tree", "run_on_server", "sigterm_as_interrupt"]

#: Seconds between polls while waiting for a cancelled tree to end.
CANCEL_POLL_SECONDS = 0.2
#: Seconds to wait for a daemon that stopped answering during a run to come back (a restart).
RECONNECT_SECONDS = 20.0
#: Seconds without any daemon process recorded before giving up early (a stop, not a restart).
GONE_SECONDS = 1.5


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C while a remote run is followed (main thread only)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _event(frame: Any) -> TaskEvent | None:
    """An engine event from a stream frame (None for anything else)."""
    import dataclasses

    from aipartnerupflow.core.events import TaskEvent

    if not isinstance(frame, dict) or "kind" not in frame:
        return None
    names = {f.name for f in dataclasses.fields(TaskEvent)}
    try:
        return TaskEvent(**{k: v for k, v in frame.items() if k in names})
    except TypeError:
        return None


def _tree(server: Remote, root_id: str) -> list[TaskModel]:
    return [model(d) for d in flatten(server.call("tasks.tree", {"task_id": root_id}))]


def _start_display(server: Remote, root_id: str, display: Display) -> None:
    from aipartnerupflow.cli._remote import tree_from_nested

    display.start(tree_from_nested(server.call("tasks.tree", {"task_id": root_id})))


def _wait_for_daemon(server: Remote, root_id: str, display: Display, exc: Unreachable) -> None:
    """The daemon stopped answering while a tree ran: wait for it to come back (``daemon
    restart``; ``server`` follows a new port), or raise a one-line error once it is gone."""
    from aipartnerupflow.cli._daemon import read_running_state

    display.note("The daemon stopped answering; waiting for it to come back...")
    deadline = time.monotonic() + RECONNECT_SECONDS
    gone_since: float | None = None
    while True:
        now = time.monotonic()
        daemon = read_running_state()
        if daemon is None:
            gone_since = now if gone_since is None else gone_since
        else:
            gone_since = None
            if daemon.protocol == "a2a" and daemon.url != server.url:
                server.url = daemon.url
        if now >= deadline or (gone_since is not None and now - gone_since >= GONE_SECONDS):
            raise CliError(
                f"the daemon at {server.url} stopped before tree {root_id} ended (a stopped "
                "daemon cancels the trees it runs; after a crash `apflow tasks resume` runs "
                f"them again); see `apflow tasks tree {root_id}`",
                exit_code=1,
            ) from exc
        if daemon is not None:
            try:
                server.health()
                return
            except Unreachable:
                pass
        time.sleep(CANCEL_POLL_SECONDS)


def poll_tree(
    server: Remote, root_id: str, display: Display, interval: float, *, started: bool = True
) -> list[TaskModel]:
    """Show the stored state of a tree until every task has ended; its tasks.

    A daemon that stops answering is waited for while it restarts (see ``_wait_for_daemon``).
    """
    from aipartnerupflow.core.status import TaskStatus

    while True:
        try:
            if not started:
                _start_display(server, root_id, display)
                started = True
            tasks = _tree(server, root_id)
        except Unreachable as exc:
            _wait_for_daemon(server, root_id, display, exc)
            continue
        for task in tasks:
            display.task(task)
        if all(TaskStatus.is_terminal(t.status) for t in tasks):
            return tasks
        time.sleep(interval)


def _cancel(server: Remote, root_id: str) -> bool:
    """Cancel the tree; False when the server never created it."""
    deadline = time.monotonic() + 2
    while True:
        try:
            server.call("tasks.cancel", {"task_id": root_id})
            return True
        except RemoteError as exc:
            if exc.code != NOT_FOUND or time.monotonic() > deadline:
                if exc.code == NOT_FOUND:
                    return False
                raise
        time.sleep(CANCEL_POLL_SECONDS)


def _cancel_and_wait(
    server: Remote, root_id: str, display: Display, started: bool
) -> list[TaskModel]:
    display.note("Cancelling the tree on the daemon... (press Ctrl-C again to stop waiting)")
    if not _cancel(server, root_id):
        raise KeyboardInterrupt  # the tree was never created: nothing to report
    try:
        return poll_tree(server, root_id, display, CANCEL_POLL_SECONDS, started=started)
    except KeyboardInterrupt:
        return _tree(server, root_id)


def follow_on_server(
    server: Remote, params: dict[str, Any], display: Display, root_id: str | None = None
) -> RunOutcome:
    """Run ``tasks.execute`` (``params``) on the server, streaming its events to ``display``.

    ``root_id``, when known before the call, lets an early Ctrl-C cancel the tree.
    """
    began = time.monotonic()
    started = finished = False
    try:
        with sigterm_as_interrupt():
            try:
                frames = server.stream("tasks.execute", params)
                try:
                    first = next(frames, None)
                    if not isinstance(first, dict) or not first.get("root_task_id"):
                        raise CliError(
                            f"the daemon at {server.url} did not start the run "
                            f"(it answered {str(first)[:80]})"
                        )
                    root_id = str(first["root_task_id"])
                    _start_display(server, root_id, display)
                    started = True
                    try:
                        for frame in frames:
                            event = _event(frame)
                            if event is not None:
                                display.event(event)
                                if event.final:
                                    finished = True
                                    break
                    except Unreachable:
                        pass  # the stream broke: follow the tree by polling below
                finally:
                    frames.close()
                tasks = (
                    _tree(server, root_id)
                    if finished
                    else poll_tree(server, root_id, display, CANCEL_POLL_SECONDS)
                )
            except KeyboardInterrupt:
                if root_id is None:
                    raise
                tasks = _cancel_and_wait(server, root_id, display, started)
                return RunOutcome(result_from_tasks(root_id, tasks), True, time.monotonic() - began)
    finally:
        display.stop()
    return RunOutcome(result_from_tasks(root_id, tasks), False, time.monotonic() - began)


def _root_of(items: list[Any]) -> str | None:
    roots = [t["id"] for t in items if isinstance(t, dict) and not t.get("parent_id")]
    return str(roots[0]) if len(roots) == 1 else None


def run_on_server(
    server: Remote,
    tasks: list[dict[str, Any]],
    user_id: str | None,
    keep_ids: bool,
    concurrency: int | None,
    display: Display,
) -> RunOutcome:
    """Create and run a tree on the daemon, shown live; fresh ids when the given ones are taken."""
    if user_id is not None:
        raise daemon_refuses("--user-id", "run the tree")
    if concurrency is not None:
        raise daemon_refuses("--concurrency", "run the tree")
    items: list[Any] = [dict(t) if isinstance(t, dict) else t for t in tasks]
    for item in items:  # ids chosen here, so the root is known if Ctrl-C comes early
        if isinstance(item, dict) and not item.get("id"):
            item["id"] = str(uuid.uuid4())
    sys.stderr.write(
        f"Note: the daemon holds the database; running the tree on it at {server.url}.\n"
    )
    try:
        return follow_on_server(
            server, {"tasks": items, "id_conflict": "fail"}, display, _root_of(items)
        )
    except RemoteError as exc:
        if keep_ids or "already exist" not in exc.message:
            raise
        items = renew_ids(items)
        sys.stderr.write(
            f"Note: {exc.message.split('.')[0]}; this run uses fresh ids (root "
            f"{_root_of(items)}). Pass --keep-ids to make this an error.\n"
        )
    return follow_on_server(server, {"tasks": items}, display, _root_of(items))
