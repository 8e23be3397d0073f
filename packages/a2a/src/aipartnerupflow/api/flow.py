"""The agent: an A2A message with task JSON becomes a task tree run by the engine.

Mapping (the seed's architecture document): the tree's root TaskModel id is the A2A context id,
each run of it is one A2A task, task statuses become task states, every task's result is an
artifact (artifact id = TaskModel id), errors go in the status message, and the authenticated
user owns both the tree and the A2A record.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types import Message, Part, Role, Task, TaskState, TaskStatus
from a2a.utils.errors import (
    InternalError,
    InvalidParamsError,
    TaskNotFoundError,
    UnsupportedOperationError,
)
from google.protobuf.json_format import MessageToDict

from aipartnerupflow.api.convert import EVENT_KEY, data_part
from aipartnerupflow.core.errors import (
    ExecutorNotFoundError,
    TaskAlreadyExistsError,
    TaskTreeValidationError,
    ValidationError,
)
from aipartnerupflow.core.limits import TaskLimits
from aipartnerupflow.core.service import TaskCaller, TaskService

if TYPE_CHECKING:
    from aipartnerupflow.core.events import TaskEvent
    from aipartnerupflow.core.manager import TaskManager
    from aipartnerupflow.core.results import TreeResult

__all__ = ["EVENT_KEY", "META_KEY", "FlowAgentExecutor", "FlowService", "PreparedRun"]

log = logging.getLogger("aipartnerupflow.api.flow")

#: Key of our entry in A2A task metadata (``root_task_id``, ``task_count``).
META_KEY = "aipartnerupflow"


@dataclass(slots=True)
class PreparedRun:
    """A tree created for a message, waiting for the executor to run it."""

    tree: Any
    root_id: str
    user_id: str | None
    task_count: int
    #: Set to run a stored tree again (``none``/``all``/``failed``) instead of ``tree``.
    rerun: str | None = None


@dataclass(slots=True)
class RunState:
    """A tree run that belongs to one A2A task of this process."""

    root_id: str
    updater: TaskUpdater
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    cancel_requested: bool = False


class FlowService:
    """What the request handler and the agent executor share: the engine and live runs."""

    def __init__(
        self, manager: TaskManager, *, max_tasks: int = 1000, cancel_grace_seconds: float = 30.0
    ) -> None:
        self.manager = manager
        self.max_tasks = max_tasks
        self.cancel_grace_seconds = cancel_grace_seconds
        self.prepared: dict[str, PreparedRun] = {}
        self.runs: dict[str, RunState] = {}
        self.background: set[asyncio.Task[Any]] = set()
        #: Cluster mode: trees go to the PostgreSQL queue, run by any replica's worker.
        self.queued = False

    async def prepare(
        self, context_id: str, tasks: list[dict[str, Any]], user_id: str | None
    ) -> PreparedRun:
        """Validate and store a tree whose root id is ``context_id``; protocol errors if invalid.

        Every task is owned by ``user_id``; a task naming another user is refused.
        """
        tasks = [dict(t) if isinstance(t, dict) else t for t in tasks]
        roots = [t for t in tasks if isinstance(t, dict) and not t.get("parent_id")]
        if len(roots) == 1:
            root = roots[0]
            given = root.get("id")
            if given is not None and given != context_id:
                raise InvalidParamsError(
                    message=f"the root task's id {given!r} differs from the message's contextId "
                    f"{context_id!r}: the root TaskModel id is the A2A context id; leave one out"
                )
            if given is None:
                root["id"] = context_id
        service = TaskService(
            self.manager,
            TaskCaller(user_id=user_id, is_admin=False),
            limits=TaskLimits(max_tasks=self.max_tasks),
        )
        try:
            created = await service.create(
                {"tasks": tasks, "id_conflict": "fail", "queue": self.queued}
            )
            tree = created.tree
        except TaskTreeValidationError as exc:
            raise InvalidParamsError(message=str(exc), data={"problems": exc.problems}) from None
        except ExecutorNotFoundError as exc:
            raise InvalidParamsError(
                message=str(exc), data={"executor_id": exc.executor_id}
            ) from None
        except TaskAlreadyExistsError:
            raise InvalidParamsError(
                message=f"a task tree with id {context_id!r} already exists: send the message "
                "without contextId (or with a new one) to run a new tree"
            ) from None
        except ValidationError as exc:
            raise InvalidParamsError(message=str(exc)) from None
        root_task = getattr(tree, "task", None)
        root_id = getattr(root_task, "id", None) or context_id
        if root_id != context_id:  # several roots are refused by the engine; be safe anyway
            raise InternalError(message="the created tree's root does not match the context")
        run = PreparedRun(tree, root_id, user_id, len(tasks))
        self.prepared[context_id] = run
        return run

    async def prepare_rerun(
        self, context_id: str, mode: str, caller_id: str | None, admin: bool
    ) -> PreparedRun:
        """Prepare another run of the stored tree whose root id is ``context_id``."""
        if self.queued:
            raise UnsupportedOperationError(
                message="'rerun' is not available when several replicas share the database "
                "(AIPARTNERUPFLOW_A2A_CLUSTER): send the tree's tasks again as a new tree"
            )
        root = await self.manager.task_repository.get_task_by_id(context_id)
        visible = root is not None and (admin or caller_id is None or root.user_id == caller_id)
        if root is None or not visible or root.parent_id:
            raise TaskNotFoundError(message=f"no task tree with root id {context_id!r}")
        tasks = await self.manager.task_repository.get_all_tasks_in_tree(context_id)
        if any(t.status == "in_progress" for t in tasks):
            raise InvalidParamsError(message=f"the tree {context_id!r} is running already")
        run = PreparedRun(None, context_id, root.user_id, len(tasks), rerun=mode)
        self.prepared[context_id] = run
        return run

    async def discard(self, context_id: str) -> None:
        """Forget (and delete) a new tree whose request failed before the executor took it."""
        run = self.prepared.pop(context_id, None)
        if run is not None and run.rerun is None:
            try:
                await self.manager.task_repository.delete_task(run.root_id)
            except Exception as exc:  # the request already failed; do not hide its error
                log.warning("could not delete the unused tree %s: %s", run.root_id, exc)

    def keep(self, task: asyncio.Task[Any]) -> None:
        """Hold a background task until it ends (and log its failure)."""
        self.background.add(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self.background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background run failed: %s", task.exception())


def _agent_message(
    context_id: str, task_id: str, text: str, data: dict[str, Any] | None = None
) -> Message:
    parts = [Part(text=text)]
    if data is not None:
        parts.append(data_part(data))
    return Message(
        message_id=str(uuid.uuid4()),
        role=Role.ROLE_AGENT,
        parts=parts,
        context_id=context_id,
        task_id=task_id,
    )


class FlowAgentExecutor(AgentExecutor):
    """Runs the tree prepared for a message and publishes its events as A2A task events."""

    def __init__(self, service: FlowService) -> None:
        self.service = service

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task_id = context.task_id or ""
        context_id = context.context_id or ""
        run = self.service.prepared.pop(context_id, None)
        if run is None:
            raise InvalidParamsError(
                message="no task tree was prepared for this message: send one data part "
                '{"tasks": [...]} without a taskId'
            )
        now = datetime.now(UTC)
        task = Task(
            id=task_id,
            context_id=context_id,
            status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
            metadata={META_KEY: {"root_task_id": run.root_id, "task_count": run.task_count}},
        )
        task.status.timestamp.FromDatetime(now)
        if context.message is not None:
            task.history.append(context.message)
        await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task_id, context_id)
        state = RunState(run.root_id, updater)
        self.service.runs[task_id] = state
        try:
            await self._run(run, state)
        finally:
            state.finished.set()
            self.service.runs.pop(task_id, None)

    async def _run(self, run: PreparedRun, state: RunState) -> None:
        if self.service.queued:
            await self._follow_queued(run, state)
            return
        manager = self.service.manager
        updater = state.updater
        artifacts: set[str] = set()
        finished: TaskEvent | None = None
        async with manager.subscribe(run.root_id) as events:
            work = (
                manager.execute_tree(run.root_id, rerun=run.rerun)  # type: ignore[arg-type]
                if run.rerun is not None
                else manager.distribute_task_tree(run.tree)
            )
            runner = asyncio.create_task(work, name=f"tree:{run.root_id}")
            self.service.keep(runner)

            def stop_on_crash(done: asyncio.Task[Any]) -> None:
                if done.cancelled() or done.exception() is not None:
                    events.close()

            runner.add_done_callback(stop_on_crash)
            async for event in events:
                if event.kind == "tree_finished":
                    finished = event
                    break
                await self._publish(updater, event, artifacts)
        result: TreeResult | None = None
        crash: BaseException | None = None
        try:
            result = await asyncio.shield(runner)
        except asyncio.CancelledError:
            if not runner.done():
                raise
            crash = RuntimeError("the engine cancelled the run")
        except Exception as exc:
            crash = exc
            result = await _stored_result(manager, run.root_id)
        if result is not None:
            for outcome in result.tasks:
                if outcome.status == "completed" and outcome.id not in artifacts:
                    await self._artifact(updater, outcome.id, outcome.name, outcome.result)
        await self._finish(updater, run.root_id, result, finished, crash)

    async def _follow_queued(self, run: PreparedRun, state: RunState) -> None:
        """Cluster mode: the tree runs on the workers (of any replica); relay its events."""
        manager = self.service.manager
        artifacts: set[str] = set()
        finished: TaskEvent | None = None
        crash: BaseException | None = None
        # Queued now (a worker may have started it already: its first events can come before
        # this replica listens), so the A2A task is WORKING from here on.
        await state.updater.start_work()
        try:
            async for event in manager.stream(run.root_id):
                if event.kind == "tree_finished":
                    finished = event
                    break
                if event.kind == "task_status" and event.status == "completed":
                    stored = await manager.storage.get_task(event.task_id)  # not in NOTIFY
                    event = dataclasses.replace(
                        event, result=stored.result if stored is not None else None
                    )
                await self._publish(state.updater, event, artifacts)
        except Exception as exc:  # the database went away: report what is stored
            crash = exc
            log.warning("lost the events of tree %s: %s", run.root_id, type(exc).__name__)
        result = await _stored_result(manager, run.root_id)
        if result is not None:
            for outcome in result.tasks:
                if outcome.status == "completed" and outcome.id not in artifacts:
                    await self._artifact(state.updater, outcome.id, outcome.name, outcome.result)
        await self._finish(state.updater, run.root_id, result, finished, crash)

    async def _publish(self, updater: TaskUpdater, event: TaskEvent, artifacts: set[str]) -> None:
        info: dict[str, Any] = {
            "event": event.kind,
            "task_id": event.task_id,
            "name": event.name,
            "status": event.status,
            "progress": event.progress,
            "seq": event.seq,
        }
        if event.message:
            info["message"] = event.message
        if event.error:
            info["error"] = event.error
        if event.kind == "task_status" and event.status == "completed":
            await self._artifact(updater, event.task_id, event.name, event.result)
            artifacts.add(event.task_id)
        await updater.update_status(TaskState.TASK_STATE_WORKING, metadata={EVENT_KEY: info})

    async def _artifact(self, updater: TaskUpdater, task_id: str, name: str, result: Any) -> None:
        await updater.add_artifact(
            [data_part(result)],
            artifact_id=task_id,
            name=name,
            metadata={META_KEY: {"task_id": task_id, "status": "completed"}},
        )

    async def _finish(
        self,
        updater: TaskUpdater,
        root_id: str,
        result: TreeResult | None,
        finished: TaskEvent | None,
        crash: BaseException | None,
    ) -> None:
        status = (
            result.status
            if result is not None
            else (finished.status if finished is not None else "failed")
        )
        summary: dict[str, Any] = {
            "event": "tree_finished",
            "root_task_id": root_id,
            "status": status,
        }
        if result is not None:
            summary["tasks"] = [
                {"id": t.id, "name": t.name, "status": t.status, "error": t.error}
                for t in result.tasks
            ]
        context_id, task_id = updater.context_id, updater.task_id
        if crash is not None and result is None:
            text = f"the task tree could not run: {type(crash).__name__}: {crash}"
            summary["error"] = text
            await updater.failed(_agent_message(context_id, task_id, text, summary))
            return
        if status == "completed":
            text = f"task tree {root_id} completed"
            await updater.complete(_agent_message(context_id, task_id, text, summary))
        elif status == "cancelled":
            text = f"task tree {root_id} was cancelled"
            await updater.cancel(_agent_message(context_id, task_id, text, summary))
        else:
            errors = [
                f"{t.name}: {t.error}"
                for t in (result.tasks if result else [])
                if t.status == "failed" and t.error
            ]
            reason = "; ".join(errors[:5]) or (finished.error if finished else None) or "failed"
            text = f"task tree {root_id} failed: {reason}"
            summary["error"] = reason
            await updater.failed(_agent_message(context_id, task_id, text, summary))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        task_id = context.task_id or ""
        state = self.service.runs.get(task_id)
        if state is None:
            root_id = _root_of(context.current_task)
            if root_id:
                await self.service.manager.cancel_tree(root_id)
            await TaskUpdater(event_queue, task_id, context.context_id or "").cancel()
            return
        state.cancel_requested = True
        await self.service.manager.cancel_tree(state.root_id)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.finished.wait(), self.service.cancel_grace_seconds)
        if not state.finished.is_set():
            with contextlib.suppress(RuntimeError):  # the run published its end meanwhile
                await state.updater.cancel(
                    _agent_message(
                        state.updater.context_id,
                        task_id,
                        f"task tree {state.root_id} was cancelled (its tasks did not stop within "
                        f"{self.service.cancel_grace_seconds:g}s)",
                    )
                )


async def _stored_result(manager: Any, root_id: str) -> TreeResult | None:
    """The tree's outcome as stored, when the run raised (a database blip) but every task
    ended anyway; None when it cannot be read or is unfinished. Tried a few times."""
    from aipartnerupflow.core.results import TreeResult
    from aipartnerupflow.core.status import TaskStatus as CoreStatus

    for delay in (0.0, 0.2, 0.5, 1.0, 2.0):
        await asyncio.sleep(delay)
        try:
            tasks = await manager.storage.get_tree(root_id)
        except Exception as exc:
            log.warning("could not read tree %s after its run failed: %s", root_id, exc)
            continue
        if tasks and all(CoreStatus.is_terminal(t.status) for t in tasks):
            return TreeResult.of(root_id, tasks)
        return None
    return None


def _root_of(task: Task | None) -> str | None:
    if task is None or META_KEY not in task.metadata:
        return None
    value = MessageToDict(task.metadata).get(META_KEY)
    root = value.get("root_task_id") if isinstance(value, dict) else None
    return str(root) if root else None
