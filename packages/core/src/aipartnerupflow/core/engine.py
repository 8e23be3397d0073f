"""The event-driven run engine.

A run keeps its tree in memory: each task knows its dependents and how many of its
dependencies are still open. When a task ends, only its dependents are looked at; ready tasks
wait in one priority queue per engine (priority, then submission order) and start while fewer
than ``max_concurrency`` tasks run. The start of every attempt is durable before its executor
is called (write-ahead: the starts of tasks that become ready together are one commit); ends
and progress go to the store as write-behind (group commit), in order, so an end is durable
before any dependent starts.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aipartnerupflow.core.context import _set_current
from aipartnerupflow.core.events import EventKind
from aipartnerupflow.core.executor import ExecutableTask
from aipartnerupflow.core.hooks import get_post_hooks, run_hook
from aipartnerupflow.core.invoke import (
    CANCEL_GRACE_SECONDS,
    attempt_limit,
    backoff_delay,
    invoke,
)
from aipartnerupflow.core.invoke import FinalFailure as _Final
from aipartnerupflow.core.invoke import RetryableFailure as _Retry
from aipartnerupflow.core.models import TaskModel
from aipartnerupflow.core.status import TaskStatus
from aipartnerupflow.core.storable import storable_text
from aipartnerupflow.core.validation import resolve_method

if TYPE_CHECKING:
    from aipartnerupflow.core.manager import TaskManager
    from aipartnerupflow.core.storage.base import TaskStorage

__all__ = ["LEASE_SECONDS", "Scheduler", "TreeRun"]

log = logging.getLogger("aipartnerupflow.engine")

LEASE_SECONDS = 300.0
_PENDING, _WAITING, _READY, _RUNNING, _DONE = range(5)
_COMPLETED = TaskStatus.COMPLETED.value
_FAILED = TaskStatus.FAILED.value
_CANCELLED = TaskStatus.CANCELLED.value
_IN_PROGRESS = TaskStatus.IN_PROGRESS.value


@dataclass(slots=True, eq=False)
class _Node:
    task: TaskModel
    dependents: list[_Node] = field(default_factory=list)
    deps: list[tuple[_Node, bool]] = field(default_factory=list)
    open_deps: int = 0
    state: int = _PENDING
    runs: bool = True
    cancel_requested: bool = False
    job: asyncio.Task[None] | None = None
    start: asyncio.Future[dict[str, str]] | None = None
    unstarted: bool = False  # an attempt was counted but its executor not yet called
    executor: ExecutableTask | None = None
    method: str | None = None
    in_attempt: bool = False
    finishing: bool = False
    inputs: dict[str, Any] | None = None
    #: The attempt a process left without a stored end (it died or lost its database); told
    #: to the next attempt's executor, then cleared.
    interrupted: int | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _state(task: TaskModel) -> dict[str, Any]:
    """The run-state columns of a task as one change set. Starts and ends write the same
    columns, so a group-commit batch of both is one statement."""
    return {
        "status": task.status,
        "attempts": task.attempts,
        "error": task.error,
        "result": task.result,
        "progress": task.progress,
        "started_at": task.started_at,
        "completed_at": task.completed_at,
        "updated_at": task.updated_at,
        "lease_owner": task.lease_owner,
        "lease_expires_at": task.lease_expires_at,
    }


def _lost(attempts: int, max_attempts: int) -> str:
    return (
        f"the process running attempt {attempts} of {max_attempts} ended before the attempt did "
        f"(lost {attempts} time{'s' if attempts != 1 else ''}); max_attempts is used up"
    )


def _short(text: str | None, limit: int = 300) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 3] + "..."


class TreeRun:
    """One execution of a task tree."""

    def __init__(
        self,
        manager: TaskManager,
        tasks: Sequence[TaskModel],
        root: TaskModel,
        to_run: set[str],
        run_seq: int,
    ) -> None:
        self.manager = manager
        self.store = manager.storage
        self.bus = manager.events
        self.root = root
        self.run_seq = run_seq
        self.nodes: dict[str, _Node] = {t.id: _Node(t) for t in tasks}
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.open = 0
        registry = manager.registry
        for node in self.nodes.values():
            node.runs = node.task.id in to_run
            if node.runs:
                self.open += 1
                # Not ended and already counted: the last attempt's end was never stored
                # (reruns of ended tasks and attempts cancelled before they began reset it).
                if node.task.attempts > 0 and not TaskStatus.is_terminal(node.task.status):
                    node.interrupted = node.task.attempts
                node.method = resolve_method(node.task, registry)
        for node in self.nodes.values():
            for dep in node.task.dependencies:
                dep_node = self.nodes[dep["id"]]
                node.deps.append((dep_node, bool(dep.get("required", True))))
                if node.runs:
                    dep_node.dependents.append(node)
                    if dep_node.runs:
                        node.open_deps += 1

    # -- bookkeeping -----------------------------------------------------------------------

    def start(self) -> None:
        """Queue every runnable task whose dependencies are all done already."""
        if self.open == 0:
            if not self.done.done():
                self.done.set_result(None)
            return
        live = [n for n in self.nodes.values() if n.runs and n.state != _DONE]
        for node in live:
            if node.open_deps:
                node.state = _WAITING
        self._settle([n for n in live if n.open_deps == 0])

    def _settle(self, nodes: Sequence[_Node]) -> None:
        """Decide every node whose dependencies are all done: run it, or end it at once."""
        work = deque(nodes)
        while work:
            node = work.popleft()
            if node.state == _DONE:
                continue
            if node.cancel_requested:
                work.extend(self._end(node, _CANCELLED, None, "cancelled"))
                continue
            reason = self._blocked_reason(node)
            if reason is not None:
                work.extend(self._end(node, reason[0], None, reason[1]))
                continue
            if node.method is None:
                work.extend(self._end(node, _COMPLETED, node.task.result, None))
                continue
            node.state = _READY
            self.manager.scheduler.push(self, node)
        self.manager.scheduler.pump()

    def _blocked_reason(self, node: _Node) -> tuple[str, str] | None:
        for dep, required in node.deps:
            status = dep.task.status
            if required and status != _COMPLETED:
                verb = "was cancelled" if status == _CANCELLED else "failed"
                detail = (
                    f": {_short(dep.task.error, 200)}"
                    if dep.task.error and (status == _FAILED)
                    else ""
                )
                return (
                    _CANCELLED if status == _CANCELLED else _FAILED,
                    f"dependency {dep.task.name!r} ({dep.task.id}) {verb}{detail}",
                )
        return None

    def _end(self, node: _Node, status: str, result: Any, error: str | None) -> list[_Node]:
        """Record a node's end; returns the dependents that became ready to decide."""
        if node.state == _DONE:
            return []
        node.state = _DONE
        task = node.task
        now = _now()
        error = storable_text(error)
        task.status = status
        task.error = error
        if status == _COMPLETED:
            task.result = result
            task.progress = 1.0
        task.completed_at = now
        task.updated_at = now
        task.lease_owner = None
        task.lease_expires_at = None
        self.store.write_behind(task.id, _state(task))
        self.bus.publish(
            EventKind.TASK_STATUS,
            self.root.id,
            task.id,
            task.name,
            status,
            progress=task.progress,
            result=task.result if status == _COMPLETED else None,
            error=error,
        )
        self.open -= 1
        if self.open == 0 and not self.done.done():
            self.done.set_result(None)
        ready: list[_Node] = []
        for dependent in node.dependents:
            dependent.open_deps -= 1
            if dependent.open_deps == 0 and dependent.state == _WAITING:
                ready.append(dependent)
        return ready

    def finish(self, node: _Node, status: str, result: Any, error: str | None) -> None:
        """End a running node and decide the dependents it releases."""
        self.manager.scheduler.release()
        try:
            self._settle(self._end(node, status, result, error))
        except Exception:  # the store is closed, a listener broke...: the run must still end
            log.exception("task %s: could not record its end", node.task.id)
            if node.state != _DONE:
                node.state = _DONE
                self.open -= 1
            if self.open <= 0 and not self.done.done():
                self.done.set_result(None)

    # -- cancellation ----------------------------------------------------------------------

    async def cancel(self, task_ids: set[str]) -> list[str]:
        """Cancel these tasks (descendants are the caller's job); dependents follow.

        Returns the ids it cancelled; a task already finishing (post-hooks) is left alone.
        """
        to_settle: list[_Node] = []
        running: list[_Node] = []
        cancelled: list[str] = []
        for task_id in task_ids:
            node = self.nodes.get(task_id)
            if node is None or not node.runs or node.state == _DONE or node.finishing:
                continue
            node.cancel_requested = True
            cancelled.append(task_id)
            if node.state == _RUNNING:
                running.append(node)
            elif node.state == _READY:
                self.manager.scheduler.discard(node)
                to_settle.append(node)
            else:
                to_settle.append(node)
        for node in to_settle:
            self._settle(self._end(node, _CANCELLED, None, "cancelled"))
        for node in running:
            await self._interrupt(node)
        return sorted(cancelled)

    async def _interrupt(self, node: _Node) -> None:
        executor = node.executor
        if executor is not None:
            try:
                await asyncio.wait_for(executor.cancel(), CANCEL_GRACE_SECONDS)
            except Exception:
                log.warning("cancel() of task %s failed", node.task.id, exc_info=True)
        if node.in_attempt and node.job is not None and not node.job.done():
            node.job.cancel()

    # -- execution -------------------------------------------------------------------------

    async def execute(self, node: _Node) -> None:
        """Run one task to its end, with retries and timeout; the end is always recorded.

        Whatever goes wrong in here (a bad retry setting, a result that cannot be stored, a
        bug) fails this task with the reason and frees its slot; it never hangs the tree.
        """
        task = node.task
        status, result, error = _FAILED, None, None
        node.in_attempt = True
        try:
            try:
                status, result, error = await self._attempts(node)
            except asyncio.CancelledError:
                node.cancel_requested = True  # engine shutdown or an explicit cancel
            except Exception as exc:
                log.exception("task %s: unexpected error in the engine", task.id)
                status, result = _FAILED, None
                error = f"the engine failed while running the task: {type(exc).__name__}: {exc}"
            finally:
                node.in_attempt = False
                node.executor = None
                _set_current(None)
            if node.unstarted:  # cancelled before the executor saw this attempt: not one
                node.unstarted = False
                task.attempts -= 1
            if node.cancel_requested:  # whatever the executor did once it was told to stop
                status, result, error = _CANCELLED, None, "cancelled"
            elif task.attempts > 1 and status == _FAILED:
                error = f"{error} (after {task.attempts} attempts)"
            node.finishing = True  # from here on, a cancel request no longer applies
            task.status, task.error = status, error
            try:
                for hook in get_post_hooks():
                    await run_hook(
                        hook, task, node.inputs if node.inputs is not None else task.inputs, result
                    )
            except asyncio.CancelledError:
                log.warning("post-hooks of task %s were interrupted", task.id)
        finally:
            self.finish(node, status, result, error)

    async def _attempts(self, node: _Node) -> tuple[str, Any, str | None]:
        task = node.task
        try:
            max_attempts = attempt_limit(task.retry)
        except _Final as exc:
            node.start = None
            return _FAILED, None, str(exc)
        retry = task.retry or {}
        while True:
            if node.cancel_requested:
                raise asyncio.CancelledError
            if node.start is None:
                if task.attempts >= max_attempts:  # the process running the last one died
                    return _FAILED, None, _lost(task.attempts, max_attempts)
                node.start = self.manager.scheduler.record_starts(
                    self.store, {task.id: self._mark_started(node)}
                )
            start, node.start = node.start, None
            if start.done():  # the usual case: the job began once its start was durable
                failed = start.result().get(task.id)
            else:
                failed = (await asyncio.shield(start)).get(task.id)
            if failed is not None:
                return (
                    _FAILED,
                    None,
                    f"the start of attempt {task.attempts} was not stored: {failed}",
                )
            try:
                return _COMPLETED, await self._attempt(node), None
            except _Retry as exc:
                error = str(exc)
                if task.attempts >= max_attempts or node.cancel_requested:
                    return _FAILED, None, error
                delay = backoff_delay(retry, task.attempts, exc.retry_after)
                log.info(
                    "task %s attempt %d failed (%s); retrying in %.2fs",
                    task.id,
                    task.attempts,
                    error,
                    delay,
                )
                await asyncio.sleep(delay)
            except _Final as exc:
                return _FAILED, None, str(exc)

    def may_start(self, node: _Node) -> bool:
        """False when the node must end without a new attempt (its limit is used up, or its
        retry setting is invalid): :meth:`execute` then ends it with the reason."""
        try:
            return node.task.attempts < attempt_limit(node.task.retry)
        except _Final:
            return False

    def _mark_started(self, node: _Node) -> dict[str, Any]:
        """A new attempt in memory; returns the row changes that make it durable."""
        task = node.task
        now = _now()
        task.attempts += 1
        node.unstarted = True
        task.status = _IN_PROGRESS
        task.started_at = now
        task.updated_at = now
        task.lease_owner = self.manager.owner_id
        task.lease_expires_at = now + timedelta(seconds=LEASE_SECONDS)
        self.bus.publish(
            EventKind.TASK_STATUS,
            self.root.id,
            task.id,
            task.name,
            _IN_PROGRESS,
            progress=task.progress,
            message=f"attempt {task.attempts}",
        )
        task.error = None
        task.completed_at = None
        return _state(task)

    async def _attempt(self, node: _Node) -> Any:
        assert node.method is not None
        node.unstarted = False
        interrupted, node.interrupted = node.interrupted, None
        dep_results = {
            dep.task.id: dep.task.result for dep, _ in node.deps if dep.task.status == _COMPLETED
        }
        return await invoke(
            self.manager.registry,
            node.task,
            node.method,
            self.root.id,
            dep_results,
            on_executor=lambda executor: setattr(node, "executor", executor),
            on_inputs=lambda inputs: setattr(node, "inputs", inputs),
            on_progress=lambda p, m: self._progress(node, p, m),
            cancel_requested=lambda: node.cancel_requested,
            interrupted_attempt=interrupted,
            save_inputs=lambda inputs: self.store.write_behind(
                node.task.id, {"inputs": dict(inputs)}
            ),
        )

    def _progress(self, node: _Node, progress: float, message: str | None) -> None:
        if node.state == _DONE or node.finishing:
            return
        task = node.task
        task.progress = progress
        self.store.write_behind(task.id, {"progress": progress})
        self.bus.publish(
            EventKind.TASK_PROGRESS,
            self.root.id,
            task.id,
            task.name,
            task.status,
            progress=progress,
            message=message,
        )


class Scheduler:
    """Ready tasks of every run of one engine, started by priority within a concurrency bound."""

    def __init__(self, max_concurrency: int, *, write_ahead: bool = True) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.max_concurrency = max_concurrency
        self.write_ahead = write_ahead
        self.running = 0
        self._heap: list[tuple[int, int, int, int, TreeRun, _Node]] = []
        self._tie = itertools.count()
        self._jobs: set[asyncio.Task[None]] = set()
        #: Started nodes whose jobs wait for their starts to be durable (see :meth:`pump`).
        self._launching: dict[int, list[tuple[TreeRun, _Node]]] = {}

    def push(self, run: TreeRun, node: _Node) -> None:
        task = node.task
        heapq.heappush(
            self._heap, (task.priority, run.run_seq, task.position, next(self._tie), run, node)
        )

    def discard(self, node: _Node) -> None:
        node.state = _PENDING  # skipped when popped

    def release(self) -> None:
        self.running -= 1

    def pump(self) -> None:
        """Start ready tasks while slots are free; their starts are committed as one batch
        (write-ahead) before any of their executors is called."""
        heap = self._heap
        starting: list[tuple[TreeRun, _Node]] = []
        while heap and self.running < self.max_concurrency:
            *_, run, node = heapq.heappop(heap)
            if node.state != _READY:
                continue
            node.state = _RUNNING
            self.running += 1
            starting.append((run, node))
        if not starting:
            return
        loop = asyncio.get_running_loop()
        changes: dict[str, dict[str, Any]] = {}
        for run, node in starting:
            if run.may_start(node):
                changes[node.task.id] = run._mark_started(node)
        start = self.record_starts(starting[0][0].store, changes) if changes else None
        for _, node in starting:
            if node.task.id in changes:
                node.start = start
        if start is None or start.done():
            self._launch(loop, starting)
            return
        # The jobs begin once the starts are durable: their first step then calls the
        # executor, instead of each job waiting for the batch (a wake-up per task).
        key = next(self._tie)
        self._launching[key] = starting
        start.add_done_callback(lambda _: self._launch_waiting(loop, key))

    def _launch_waiting(self, loop: asyncio.AbstractEventLoop, key: int) -> None:
        starting = self._launching.pop(key, None)
        if starting is not None:  # else launched already (engine shutdown)
            self._launch(loop, starting)

    def _launch(
        self, loop: asyncio.AbstractEventLoop, starting: list[tuple[TreeRun, _Node]]
    ) -> None:
        for run, node in starting:
            job = loop.create_task(run.execute(node))
            node.job = job
            self._jobs.add(job)
            job.add_done_callback(self._jobs.discard)

    def record_starts(
        self, store: TaskStorage, changes: dict[str, dict[str, Any]]
    ) -> asyncio.Future[dict[str, str]]:
        """Queue attempt starts; the future resolves once they are durable (write-ahead), or at
        once when write-ahead is off. Its value maps the ids that could not be stored to why."""
        loop = asyncio.get_running_loop()
        try:
            if self.write_ahead:
                return asyncio.ensure_future(store.write_ahead(changes))
            for task_id, fields in changes.items():
                store.write_behind(task_id, fields)
            failed: dict[str, str] = {}
        except Exception as exc:  # the store is closed: these attempts cannot begin
            failed = {i: f"{type(exc).__name__}: {exc}" for i in changes}
        done: asyncio.Future[dict[str, str]] = loop.create_future()
        done.set_result(failed)
        return done

    async def cancel_all(self) -> None:
        """Stop everything (engine shutdown)."""
        self._heap.clear()
        loop = asyncio.get_running_loop()
        for key in list(self._launching):
            self._launch_waiting(loop, key)  # to be cancelled with the others
        for job in list(self._jobs):
            job.cancel()
        if self._jobs:
            await asyncio.gather(*self._jobs, return_exceptions=True)
