"""``TaskService``: every operation on stored tasks, checked once for every surface.

The CLI (locally and through the daemon), the A2A ``/tasks`` API and the MCP server are thin
adapters over this class. A service is bound to one caller: every read and write is scoped
to the caller's tasks (admins see all), and another owner's task is answered exactly like a
task that does not exist.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from aipartnerupflow.core.errors import (
    TaskAlreadyExistsError,
    TaskConflictError,
    TaskNotFoundError,
    ValidationError,
)
from aipartnerupflow.core.hooks import get_task_tree_hooks, run_hook
from aipartnerupflow.core.limits import DEFAULT_LIMITS, TaskLimits
from aipartnerupflow.core.models import TaskModel
from aipartnerupflow.core.results import TreeResult
from aipartnerupflow.core.service.caller import TaskCaller
from aipartnerupflow.core.service.ids import given_ids, renew_ids
from aipartnerupflow.core.service.params import (
    CancelParams,
    CopyParams,
    CountParams,
    CreateParams,
    DeleteParams,
    ExecuteParams,
    ListParams,
    TaskRef,
    UpdateParams,
    parse_params,
)
from aipartnerupflow.core.service.updates import (
    check_edit_allowed,
    check_transition,
    validated_changes,
)
from aipartnerupflow.core.status import TaskStatus
from aipartnerupflow.core.storage.base import TaskQuery, TaskStorage
from aipartnerupflow.core.tree import TaskTreeNode, subtree_ids
from aipartnerupflow.core.validation import check_raw_tasks

if TYPE_CHECKING:
    from aipartnerupflow.core.manager import TaskManager

__all__ = [
    "CancelOutcome",
    "CreatedTree",
    "PreparedRun",
    "RunState",
    "TaskPage",
    "TaskService",
    "not_found",
]

log = logging.getLogger("aipartnerupflow.service")


def not_found(task_id: str) -> TaskNotFoundError:
    """The one answer for a task that does not exist or is not the caller's."""
    return TaskNotFoundError(f"no task with id {task_id!r}")


@dataclass(slots=True)
class CreatedTree:
    """A stored tree; ``renamed`` maps given ids that were taken to the fresh ids used."""

    tree: TaskTreeNode
    renamed: dict[str, str] = field(default_factory=dict)

    @property
    def root_id(self) -> str:
        """The id of the tree's root task."""
        return self.tree.task.id


@dataclass(slots=True)
class TaskPage:
    """One page of a listing; ``next_cursor`` fetches the next one (None at the end)."""

    tasks: list[TaskModel]
    next_cursor: str | None


@dataclass(slots=True)
class CancelOutcome:
    """What cancelling one id did: ``status`` is ``not_found`` for an unknown id."""

    task_id: str
    status: str
    cancelled: list[str]


@dataclass(slots=True)
class PreparedRun:
    """A run ready to start: its root id, its tree, and the coroutine that runs it."""

    root_id: str
    tree: TaskTreeNode
    start: Callable[[], Coroutine[Any, Any, TreeResult]]


@dataclass(slots=True)
class RunState:
    """Whether anyone runs a tree: ``finished``, ``running``, ``queued`` (waiting for a
    worker), ``interrupted`` (its runner died) or ``pending`` (nobody has started it)."""

    root_id: str
    state: Literal["finished", "running", "queued", "interrupted", "pending"]
    hint: str | None = None


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        offset = data["o"]
        if isinstance(offset, int) and not isinstance(offset, bool) and offset >= 0:
            return offset
    except (binascii.Error, ValueError, KeyError, TypeError):
        pass
    raise ValidationError(
        "cursor: not a cursor this service issued; pass 'next_cursor' from the previous "
        "page unchanged, or leave it out to start at the first page"
    )


class TaskService:
    """Caller-scoped management of stored task trees over a :class:`TaskManager`.

    ``allow_force_delete`` lets ``delete(force=True)`` remove running tasks (only the local
    operator, who owns the database, should get it).
    """

    def __init__(
        self,
        manager: TaskManager,
        caller: TaskCaller | None = None,
        *,
        limits: TaskLimits = DEFAULT_LIMITS,
        allow_force_delete: bool = False,
    ) -> None:
        self.manager = manager
        self.caller = caller or TaskCaller.system()
        self.limits = limits
        self.allow_force_delete = allow_force_delete

    @property
    def storage(self) -> TaskStorage:
        """The manager's store."""
        return self.manager.storage

    def for_caller(self, caller: TaskCaller) -> TaskService:
        """The same service for another caller."""
        return TaskService(
            self.manager,
            caller,
            limits=self.limits,
            allow_force_delete=self.allow_force_delete,
        )

    # -- scoping ------------------------------------------------------------------------

    async def require(self, task_id: str) -> TaskModel:
        """The caller's task with this id; the same error whether it is missing or not
        theirs."""
        if not isinstance(task_id, str) or not task_id:
            raise ValidationError("task_id must be a non-empty string")
        task = await self.storage.get_task(task_id)
        if task is None or not self.caller.may_see(task):
            raise not_found(task_id)
        return task

    def _owner(self, requested: str | None) -> str | None:
        if self.caller.is_admin:
            return requested if requested is not None else self.caller.user_id
        if requested is not None and requested != self.caller.user_id:
            raise ValidationError(
                f"user_id {requested!r}: tasks are owned by the authenticated user; leave "
                "user_id out"
            )
        return self.caller.user_id

    def _owned_tasks(self, raw: list[Any], owner: str | None) -> list[Any]:
        tasks = check_raw_tasks(raw, self.limits)
        out = []
        for task in tasks:
            copy = dict(task)
            given = copy.get("user_id")
            if given is not None and not self.caller.is_admin and given != self.caller.user_id:
                raise ValidationError(
                    "a task's user_id must be the authenticated user (or be left out); "
                    f"got {given!r}"
                )
            if not self.caller.is_admin or given is None:
                copy.pop("user_id", None)
            out.append(copy)
        return out

    # -- creating -----------------------------------------------------------------------

    async def create(self, params: CreateParams | dict[str, Any]) -> CreatedTree:
        """Validate and store a tree (and enqueue it for workers with ``queue``); fires
        ``on_tree_created``. Given ids that are taken get fresh ids (``renamed``), unless
        ``id_conflict`` is ``fail``; either way the answer is the same whoever holds them."""
        p = parse_params(CreateParams, params, "create")
        owner = self._owner(p.user_id)
        tasks = self._owned_tasks(p.tasks, owner)
        renamed: dict[str, str] = {}
        for attempt in range(2):
            taken = {t.id for t in await self.storage.get_tasks(given_ids(tasks))}
            if taken and p.id_conflict == "fail":
                raise TaskAlreadyExistsError(
                    "task id(s) already exist in the store: "
                    + ", ".join(sorted(taken))
                    + ". Leave out 'id' to get fresh ids, or pick ids that are not used."
                )
            if taken:
                tasks, more = renew_ids(tasks, taken)
                renamed.update(more)
            try:
                if p.queue:
                    tree = await self.manager.submit(tasks, user_id=owner, limits=self.limits)
                else:
                    tree = await self.manager.create_task_tree_from_array(
                        tasks, user_id=owner, limits=self.limits
                    )
            except TaskAlreadyExistsError:
                if attempt or p.id_conflict == "fail":
                    raise
                continue  # someone took an id since we looked: look again
            return CreatedTree(tree, renamed)
        raise AssertionError("unreachable")  # pragma: no cover

    async def copy(self, params: CopyParams | dict[str, Any]) -> TaskTreeNode:
        """Copy the tree holding ``task_id`` with fresh ids, every task pending."""
        p = parse_params(CopyParams, params, "copy")
        task = await self.require(p.task_id)
        owner = (
            self._owner(p.user_id) if p.user_id is not None or not self.caller.is_admin else None
        )
        repo = self.manager.task_repository
        new_root = await repo.copy_task_tree(task.root_id or task.id, user_id=owner)
        tree = await repo.build_task_tree(new_root.id)
        for hook in get_task_tree_hooks("on_tree_created"):
            await run_hook(hook, tree.task, tree)
        return tree

    # -- reading ------------------------------------------------------------------------

    async def get(self, params: TaskRef | dict[str, Any]) -> TaskModel:
        """One task."""
        return await self.require(parse_params(TaskRef, params, "get").task_id)

    async def list_tasks(self, params: ListParams | dict[str, Any] | None = None) -> TaskPage:
        """Tasks matching the filters, newest first, one page."""
        p = parse_params(ListParams, params or {}, "list")
        offset = _decode_cursor(p.cursor) if p.cursor is not None else p.offset
        root_only = p.root_only
        if root_only is None:
            root_only = p.root_id is None and p.parent_id is None
        tasks = await self.storage.list_tasks(
            TaskQuery(
                user_id=self.caller.owner_filter(p.user_id),
                status=p.status,
                root_id=p.root_id,
                parent_id="" if root_only else p.parent_id,
                name=p.name,
                search=p.search,
                limit=p.limit,
                offset=offset,
                newest_first=p.order == "newest",
            )
        )
        more = len(tasks) == p.limit
        return TaskPage(tasks, _encode_cursor(offset + len(tasks)) if more else None)

    async def count(self, params: CountParams | dict[str, Any] | None = None) -> dict[str, int]:
        """Counts per status and ``total``."""
        p = parse_params(CountParams, params or {}, "count")
        counts: dict[str, int] = await self.storage.count_tasks(
            TaskQuery(
                user_id=self.caller.owner_filter(p.user_id),
                status=p.status,
                root_id=p.root_id,
                parent_id="" if p.root_only else None,
                search=p.search,
            )
        )
        counts["total"] = sum(counts.values())
        return counts

    async def tree(self, params: TaskRef | dict[str, Any]) -> TaskTreeNode:
        """The whole tree holding ``task_id``."""
        task = await self.require(parse_params(TaskRef, params, "tree").task_id)
        return await self.manager.task_repository.build_task_tree(task.root_id or task.id)

    async def children(self, params: TaskRef | dict[str, Any]) -> list[TaskModel]:
        """Direct children of ``task_id``."""
        task = await self.require(parse_params(TaskRef, params, "children").task_id)
        children: list[TaskModel] = await self.storage.get_children(task.id)
        return children

    async def run_state(self, params: TaskRef | dict[str, Any]) -> RunState:
        """Whether anyone runs the tree holding ``task_id``, with what to do if nobody does."""
        task = await self.require(parse_params(TaskRef, params, "tree").task_id)
        root_id = task.root_id or task.id
        tasks: list[TaskModel] = await self.storage.get_tree(root_id)
        if all(TaskStatus.is_terminal(t.status) for t in tasks):
            return RunState(root_id, "finished")
        now = datetime.now(UTC)
        running = [t for t in tasks if t.status == TaskStatus.IN_PROGRESS]
        if running:
            expired = [
                t
                for t in running
                if t.lease_expires_at is not None and _aware(t.lease_expires_at) < now
            ]
            if expired and len(expired) == len(running):
                return RunState(
                    root_id,
                    "interrupted",
                    "the process running it stopped; run it again with: apflow tasks resume",
                )
            return RunState(root_id, "running")
        if any(t.dispatch == "queue" for t in tasks):
            return RunState(
                root_id, "queued", "waiting for a worker; start one with: apflow worker"
            )
        fresh = all(t.status == TaskStatus.PENDING and not t.attempts for t in tasks)
        if fresh:
            return RunState(
                root_id,
                "pending",
                f"nobody is running it; start it with: apflow tasks execute {root_id}",
            )
        return RunState(root_id, "running")

    # -- changing -----------------------------------------------------------------------

    async def update(self, params: UpdateParams | dict[str, Any]) -> TaskModel:
        """Edit a task (validated as at creation, on the whole tree) or change its status
        along an allowed transition."""
        if isinstance(params, dict) and "parent_id" in params:
            raise ValidationError(
                "parent_id cannot be changed; moving a task to another parent is not "
                "supported. Copy the tree (tasks copy) and edit the copy, or create the tree "
                "again with the new structure"
            )
        p = parse_params(UpdateParams, params, "update")
        task = await self.require(p.task_id)
        changes = p.changes()
        if not changes and p.status is None:
            raise ValidationError(
                "update: nothing to change; give status or one of the editable fields"
            )
        if p.status is not None:
            check_transition(task, p.status)
        fields: dict[str, Any] = {}
        if changes:
            check_edit_allowed(task, p.status)
            fields.update(
                await validated_changes(
                    self.storage, self.manager.registry, task, changes, limits=self.limits
                )
            )
        if p.status is not None and p.status != task.status:
            fields["status"] = p.status
            if p.status == "pending":
                fields.update(error=None, result=None, progress=0.0, completed_at=None)
        if fields:
            await self.storage.update_task(task.id, fields)
        return await self.require(task.id)

    async def delete(self, params: DeleteParams | dict[str, Any]) -> int:
        """Delete a task and its subtree; returns how many tasks were removed.

        Refused while any of them runs or a task outside the subtree depends on one of them,
        unless ``force`` (only where ``allow_force_delete``).
        """
        p = parse_params(DeleteParams, params, "delete")
        task = await self.require(p.task_id)
        if p.force and not self.allow_force_delete:
            raise ValidationError(
                "force is not available here: the server may be running these tasks. Cancel "
                "them first (tasks cancel), then delete without force"
            )
        tree: list[TaskModel] = await self.storage.get_tree(task.root_id or task.id)
        doomed = subtree_ids(tree, task.id)
        if not p.force:
            running = [t for t in tree if t.id in doomed and t.status == TaskStatus.IN_PROGRESS]
            if running:
                raise TaskConflictError(
                    f"{len(running)} task(s) to delete are in progress (e.g. {running[0].id} "
                    f"{running[0].name!r}); cancel them first (tasks cancel {task.id})"
                )
            outside = [
                t
                for t in tree
                if t.id not in doomed and any(d in doomed for d in t.dependency_ids())
            ]
            if outside:
                raise TaskConflictError(
                    f"task {outside[0].id} ({outside[0].name!r}) depends on a task being "
                    "deleted; delete the whole tree, or remove that dependency first"
                )
        deleted: int = await self.storage.delete_tasks(sorted(doomed))
        return deleted

    async def cancel(self, params: CancelParams | dict[str, Any]) -> list[CancelOutcome]:
        """Cancel tasks with their descendants and required dependents (finished tasks stay
        as they are); unknown ids answer ``not_found``."""
        p = parse_params(CancelParams, params, "cancel")
        out: list[CancelOutcome] = []
        for task_id in p.ids():
            try:
                task = await self.require(task_id)
            except TaskNotFoundError:
                out.append(CancelOutcome(task_id, "not_found", []))
                continue
            cancelled = await self.manager.cancel_task(task.id)
            after = await self.storage.get_task(task.id)
            out.append(CancelOutcome(task.id, after.status if after else "unknown", cancelled))
        return out

    # -- running ------------------------------------------------------------------------

    async def prepare_execute(self, params: ExecuteParams | dict[str, Any]) -> PreparedRun:
        """Check and prepare a run (a stored tree, or a new one, created now)."""
        p = parse_params(ExecuteParams, params, "execute")
        if p.tasks is not None:
            created = await self.create({"tasks": p.tasks, "id_conflict": p.id_conflict})
            root_id = created.root_id
            tree = created.tree
        else:
            task = await self.require(str(p.task_id))
            root_id = task.root_id or task.id
            tree = await self.manager.task_repository.build_task_tree(root_id)
        rerun = p.rerun
        return PreparedRun(root_id, tree, lambda: self.manager.execute_tree(root_id, rerun=rerun))

    async def execute(self, params: ExecuteParams | dict[str, Any]) -> TreeResult:
        """Run a tree in this process to its end."""
        run = await self.prepare_execute(params)
        return await run.start()

    async def resume(self, params: dict[str, Any] | None = None) -> list[TreeResult]:
        """Run again the caller's trees whose runner died (trees this manager runs are not
        touched)."""
        from aipartnerupflow.core.service.params import ResumeParams

        parse_params(ResumeParams, params or {}, "resume")
        results = []
        for root_id in await self.storage.interrupted_roots([self.manager.owner_id]):
            try:
                root = await self.storage.get_task(root_id)
                if root is None or not self.caller.may_see(root):
                    continue
                results.append(await self.manager.execute_tree(root_id))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one tree that cannot be resumed must not stop the rest
                reason = f"{type(exc).__name__}: {exc}"
                self.manager.resume_errors[root_id] = reason
                log.error("could not resume the tree %s: %s", root_id, reason)
        return results


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
