"""``TaskManager``: create task trees, run them, cancel them, stream their events."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from aipartnerupflow.core.compat.hooks import track_manager, untrack_manager
from aipartnerupflow.core.engine import Scheduler, TreeRun
from aipartnerupflow.core.errors import AipartnerupflowError, TaskNotFoundError
from aipartnerupflow.core.events import EventBus, EventKind, Subscription, TaskEvent
from aipartnerupflow.core.executors.resources import aclose_loop_resources
from aipartnerupflow.core.hooks import get_task_tree_hooks, run_hook
from aipartnerupflow.core.limits import DEFAULT_LIMITS, TaskLimits
from aipartnerupflow.core.models import TaskModel
from aipartnerupflow.core.registry import ExecutorRegistry, get_executor_registry
from aipartnerupflow.core.repository import TaskRepository
from aipartnerupflow.core.results import TreeResult
from aipartnerupflow.core.status import TaskStatus
from aipartnerupflow.core.storage import TaskStorage, get_default_session
from aipartnerupflow.core.tree import TaskTreeNode, subtree_ids
from aipartnerupflow.core.validation import tasks_from_array, validate_tasks

__all__ = ["DEFAULT_MAX_CONCURRENCY", "Rerun", "TaskManager", "announce_created"]

log = logging.getLogger("aipartnerupflow.manager")
DEFAULT_MAX_CONCURRENCY = 64
Rerun = Literal["none", "all", "failed"]

#: Roots being run by a live TaskManager of this process, with the owner running each.
_running_roots: dict[str, str] = {}
_live_owners: set[str] = set()
#: Roots whose ``on_tree_created`` hooks ran in this process and that have not run yet.
_announced: set[str] = set()
_run_counter = itertools.count()


class TaskManager:
    """Runs task trees stored in a :class:`TaskStorage`.

    ``TaskManager(create_session())`` as in the original project; ``max_concurrency`` bounds
    how many tasks run at once across every tree this manager runs. ``write_ahead=False``
    trades the write-ahead attempt start (committed before the executor is called) for speed:
    starts are then written behind, so after a crash an attempt number may be handed out
    again and a task that just started may be found ``pending``.
    """

    def __init__(
        self,
        session: TaskStorage | None = None,
        *,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        registry: ExecutorRegistry | None = None,
        write_ahead: bool = True,
        **legacy: Any,
    ) -> None:
        if legacy:  # aipartnerupflow 0.9's constructor arguments
            from aipartnerupflow.core.compat.task_json import check_manager_options

            check_manager_options(legacy)
        self.storage = session if session is not None else get_default_session()
        self.registry = registry or get_executor_registry()
        self.task_repository = TaskRepository(self.storage, self.registry)
        self.events = EventBus()
        self.scheduler = Scheduler(max_concurrency, write_ahead=write_ahead)
        self.owner_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._runs: dict[str, TreeRun] = {}
        self.resume_errors: dict[str, str] = {}
        _live_owners.add(self.owner_id)
        track_manager(self)  # for 0.9's get_hook_repository()

    @property
    def db(self) -> TaskStorage:
        """The store (the original project called it the session)."""
        return self.storage

    # -- creating ----------------------------------------------------------------------------

    async def create_task_tree_from_array(
        self,
        tasks: list[dict[str, Any]],
        *,
        user_id: str | None = None,
        limits: TaskLimits = DEFAULT_LIMITS,
    ) -> TaskTreeNode:
        """Validate task JSON (a flat array) and store it in one transaction."""
        models = tasks_from_array(tasks, user_id=user_id, limits=limits)
        root = validate_tasks(models, self.registry, limits=limits)
        await self.storage.insert_tasks(models)
        tree = TaskTreeNode.from_tasks(models)
        await announce_created(root, tree)
        return tree

    async def run_tasks(
        self, tasks: list[dict[str, Any]], *, user_id: str | None = None
    ) -> TreeResult:
        """Create a tree from task JSON and run it to its end."""
        tree = await self.create_task_tree_from_array(tasks, user_id=user_id)
        return await self._run(tree.tasks(), tree.task, "none")  # validated and stored just now

    # -- running -----------------------------------------------------------------------------

    async def distribute_task_tree_with_streaming(
        self, tree: TaskTreeNode, use_callback: bool = True
    ) -> TreeResult:
        """0.9's streaming variant: the same as :meth:`distribute_task_tree` (every run
        publishes its events; subscribe with :meth:`subscribe` or :meth:`add_listener`)."""
        return await self.distribute_task_tree(tree)

    async def distribute_task_tree(
        self, tree: TaskTreeNode, use_callback: bool = True
    ) -> TreeResult:
        """Run a tree built with ``TaskTreeNode``; stores tasks not stored yet.

        An unfinished tree runs its unfinished tasks; a finished tree runs again in full.
        ``use_callback`` is 0.9's argument, accepted and unused (as it was there).
        """
        tasks = tree.tasks()
        problems = [
            f"task {node.task.name!r} ({node.task.id}) is a child of {parent.task.id!r} in the "
            f"TaskTreeNode but its parent_id is {node.task.parent_id!r}"
            for parent in tree.walk()
            for node in parent.children
            if node.task.parent_id not in (None, parent.task.id)
        ]
        if problems:
            from aipartnerupflow.core.errors import TaskTreeValidationError

            raise TaskTreeValidationError(problems)
        for parent in tree.walk():
            for node in parent.children:
                node.task.parent_id = parent.task.id
        root = validate_tasks(tasks, self.registry)
        stored = {t.id for t in await self.storage.get_tasks([t.id for t in tasks])}
        missing = [t for t in tasks if t.id not in stored]
        if missing:
            await self.storage.insert_tasks(missing)
        fresh = all(t.status == TaskStatus.PENDING and not t.attempts for t in tasks)
        if fresh and root.id not in _announced:
            await announce_created(root, tree)  # built with create_task/TaskTreeNode: created now
        _announced.discard(root.id)
        finished = all(TaskStatus.is_terminal(t.status) for t in tasks)
        return await self._run(tasks, root, "all" if finished else "none")

    async def execute_tree(self, root_id: str, *, rerun: Rerun = "none") -> TreeResult:
        """Run a stored tree: its unfinished tasks (``none``), all of them (``all``), or its
        failed/cancelled tasks and what depends on them (``failed``)."""
        tasks = await self.storage.get_tree(root_id)
        top = next((t for t in tasks if t.id == root_id), None)
        if top is None:
            raise TaskNotFoundError(f"no root task with id {root_id!r}")
        if top.root_id:
            raise TaskNotFoundError(
                f"task {root_id!r} is not a root task; run its tree's root {top.root_id!r}"
            )
        root = validate_tasks(tasks, self.registry, check_static_inputs=False)
        return await self._run(tasks, root, rerun)

    async def _run(self, tasks: Sequence[TaskModel], root: TaskModel, rerun: Rerun) -> TreeResult:
        if root.id in _running_roots:
            raise AipartnerupflowError(
                f"the tree {root.id} is already running in this process; wait for it or cancel it"
            )
        to_run = self._select(tasks, rerun)
        _running_roots[root.id] = self.owner_id
        run = TreeRun(self, tasks, root, to_run, next(_run_counter))
        self._runs[root.id] = run
        interrupted = False
        self.events.publish(
            EventKind.TREE_STARTED, root.id, root.id, root.name, TaskStatus.IN_PROGRESS.value
        )
        if root.started_at is None and to_run:  # marks the run as begun, for resume
            root.started_at = datetime.now(UTC)
            self.storage.write_behind(root.id, {"started_at": root.started_at})
        try:
            try:
                for hook in get_task_tree_hooks("on_tree_started"):
                    await run_hook(hook, root)
                run.start()
                await asyncio.shield(run.done)
            except asyncio.CancelledError:  # the caller gave up: cancel the tree, record it
                interrupted = True
                await run.cancel(
                    {i for i, n in run.nodes.items() if not TaskStatus.is_terminal(n.task.status)}
                )
                if not run.done.done():
                    run.start()
                await asyncio.shield(run.done)
            await self.storage.flush()
        finally:
            self._runs.pop(root.id, None)
            _running_roots.pop(root.id, None)
            _announced.discard(root.id)
            result = TreeResult.of(root.id, tasks)
            self.events.publish(
                EventKind.TREE_FINISHED,
                root.id,
                root.id,
                root.name,
                result.status,
                progress=sum(o.progress for o in result.tasks) / len(result.tasks),
                error=None if result.ok else _first_error(result),
            )
        for hook in get_task_tree_hooks("on_tree_completed" if result.ok else "on_tree_failed"):
            await run_hook(hook, root, result.status)
        if interrupted:
            raise asyncio.CancelledError
        return result

    def _select(self, tasks: Sequence[TaskModel], rerun: Rerun) -> set[str]:
        """The tasks to run, reset to pending (results stay until replaced)."""
        if rerun == "all":
            chosen = {t.id for t in tasks}
        elif rerun == "failed":
            chosen = {
                t.id
                for t in tasks
                if t.status in (TaskStatus.FAILED, TaskStatus.CANCELLED)
                or not TaskStatus.is_terminal(t.status)
            }
            dependents: dict[str, list[str]] = {}
            for t in tasks:
                for dep in t.dependency_ids():
                    dependents.setdefault(dep, []).append(t.id)
            stack = list(chosen)
            while stack:
                for dependent in dependents.get(stack.pop(), []):
                    if dependent not in chosen:
                        chosen.add(dependent)
                        stack.append(dependent)
        elif rerun == "none":
            chosen = {t.id for t in tasks if not TaskStatus.is_terminal(t.status)}
        else:
            raise ValueError(f"rerun must be 'none', 'all' or 'failed', not {rerun!r}")
        for t in tasks:
            if t.id not in chosen:
                continue
            if TaskStatus.is_terminal(t.status):
                t.attempts = 0
            elif t.status == TaskStatus.PENDING and t.error is None and not t.progress:
                continue
            t.status = TaskStatus.PENDING.value
            t.error = None
            t.progress = 0.0
            self.storage.write_behind(
                t.id,
                {
                    "status": t.status,
                    "error": None,
                    "progress": 0.0,
                    "attempts": t.attempts,
                    "completed_at": None,
                },
            )
        return chosen

    async def resume_interrupted(self) -> list[TreeResult]:
        """Run again the trees a crashed process left unfinished (interrupted attempts count).

        Every interrupted tree is found (also one whose run had begun but whose next tasks
        had not started), and each is resumed on its own: a tree that cannot be loaded or run
        is logged and skipped, the others still run. Their errors are in
        :attr:`resume_errors` afterwards (root id -> reason).
        """
        results: list[TreeResult] = []
        self.resume_errors = {}
        for root_id in await self.storage.interrupted_roots(sorted(_live_owners)):
            if root_id in _running_roots:
                continue
            try:
                results.append(await self.execute_tree(root_id))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
                self.resume_errors[root_id] = reason
                log.error("could not resume the tree %s: %s", root_id, reason)
        return results

    # -- queued trees (PostgreSQL workers) ---------------------------------------------------

    async def submit(
        self,
        tasks: list[dict[str, Any]],
        *,
        user_id: str | None = None,
        limits: TaskLimits = DEFAULT_LIMITS,
    ) -> TaskTreeNode:
        """Store a tree for PostgreSQL workers (``apflow worker``) and return at once."""
        from aipartnerupflow.core.queued import submit_tree

        tree = await submit_tree(self, tasks, user_id=user_id, limits=limits)
        for hook in get_task_tree_hooks("on_tree_created"):
            await run_hook(hook, tree.task, tree)
        return tree

    async def wait(self, root_id: str, *, timeout: float | None = None) -> TreeResult:  # noqa: ASYNC109
        """Wait for a queued tree to end (from any process) and return its result."""
        from aipartnerupflow.core.queued import wait_for_tree

        return await wait_for_tree(self, root_id, timeout=timeout)

    def stream(self, root_id: str) -> AsyncIterator[TaskEvent]:
        """Events of a queued tree as workers report them, ending with ``tree_finished``."""
        from aipartnerupflow.core.queued import stream_tree

        return stream_tree(self, root_id)

    # -- cancelling --------------------------------------------------------------------------

    async def cancel_task(self, task_id: str) -> list[str]:
        """Cancel a task and its descendants; required dependents end cancelled too.

        Reaches a running executor (``cancel()``, then asyncio cancellation). Cancelling a
        finished task does nothing. Returns the ids of the tasks it cancelled.
        """
        task = await self.storage.get_task(task_id)
        if task is None:
            raise TaskNotFoundError(f"no task with id {task_id!r}")
        root_id = task.root_id or task.id
        run = self._runs.get(root_id)
        if run is not None:
            ids = subtree_ids([n.task for n in run.nodes.values()], task_id)
            active = {i for i in ids if not TaskStatus.is_terminal(run.nodes[i].task.status)}
            return await run.cancel(active)
        tree = await self.storage.get_tree(root_id)
        ids = subtree_ids(tree, task_id)
        if root_id in _running_roots:
            raise AipartnerupflowError(
                f"the tree {root_id} is run by another TaskManager of this process; cancel it "
                "through that manager"
            )
        by_id = {t.id: t for t in tree}
        ids = _with_required_dependents(tree, ids)
        active = {i for i in ids if not TaskStatus.is_terminal(by_id[i].status)}
        if any(by_id[i].dispatch == "queue" for i in active):
            from aipartnerupflow.core.queued import cancel_queued

            return await cancel_queued(self, active)
        for i in active:
            self.storage.write_behind(
                i, {"status": TaskStatus.CANCELLED.value, "error": "cancelled", "lease_owner": None}
            )
        await self.storage.flush()
        return sorted(active)

    async def cancel_tree(self, root_id: str) -> list[str]:
        """Cancel every unfinished task of a tree."""
        return await self.cancel_task(root_id)

    # -- events ------------------------------------------------------------------------------

    def subscribe(self, root_id: str | None = None) -> Subscription:
        """Events of one tree (ending after its ``tree_finished``), or of every tree."""
        return self.events.subscribe(root_id)

    def add_listener(self, listener: Callable[[TaskEvent], Any]) -> None:
        """Call ``listener(event)`` for every event (``StreamingCallbacks`` fits here)."""
        self.events.add_listener(listener)

    # -- lifecycle ---------------------------------------------------------------------------

    async def close(self, *, close_storage: bool = True) -> None:
        """Cancel what still runs, flush, close the executors' shared resources of this event
        loop (:func:`~aipartnerupflow.core.executors.aclose_loop_resources`) and the store."""
        for run in list(self._runs.values()):
            await run.cancel(
                {i for i, n in run.nodes.items() if not TaskStatus.is_terminal(n.task.status)}
            )
        await self.scheduler.cancel_all()
        await aclose_loop_resources()
        _live_owners.discard(self.owner_id)
        untrack_manager(self)
        if close_storage:
            await self.storage.close()
        else:
            await self.storage.flush()

    async def __aenter__(self) -> TaskManager:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def announce_created(root: TaskModel, tree: TaskTreeNode) -> None:
    """Run the ``on_tree_created`` hooks once for a tree stored now."""
    _announced.add(root.id)
    for hook in get_task_tree_hooks("on_tree_created"):
        await run_hook(hook, root, tree)


def _with_required_dependents(tasks: Sequence[TaskModel], ids: set[str]) -> set[str]:
    """``ids`` plus every task that (transitively) requires one of them."""
    dependents: dict[str, list[str]] = {}
    for t in tasks:
        for dep in t.dependencies:
            if dep.get("required", True):
                dependents.setdefault(dep["id"], []).append(t.id)
    found = set(ids)
    stack = list(ids)
    while stack:
        for dependent in dependents.get(stack.pop(), []):
            if dependent not in found:
                found.add(dependent)
                stack.append(dependent)
    return found


def _first_error(result: TreeResult) -> str | None:
    for outcome in result.tasks:
        if outcome.status == TaskStatus.FAILED and outcome.error:
            return f"{outcome.name}: {outcome.error}"
    for outcome in result.tasks:
        if outcome.error:
            return f"{outcome.name}: {outcome.error}"
    return None
