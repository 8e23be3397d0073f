"""The A2A request handler: a2a-sdk's default handler plus tree preparation and cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any

from a2a.server.cluster import ConcurrentTaskModificationError, StoredTask, TaskVersion
from a2a.server.context import ServerCallContext
from a2a.server.events import Event
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.types import (
    Artifact,
    CancelTaskRequest,
    GetTaskRequest,
    Message,
    Part,
    Role,
    SendMessageRequest,
    SubscribeToTaskRequest,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)
from a2a.utils.errors import TaskNotFoundError, UnsupportedOperationError

from aipartnerupflow.api.cluster import ClusterTaskStore
from aipartnerupflow.api.convert import STATE_OF_STATUS, data_part, parse_request
from aipartnerupflow.api.flow import META_KEY, FlowService, _root_of
from aipartnerupflow.api.security import caller_of
from aipartnerupflow.api.store import SqlTaskStore, guarded
from aipartnerupflow.core.tree import aggregate_status

__all__ = ["FlowRequestHandler", "TaskContextHandler"]

_TERMINAL = {
    TaskState.TASK_STATE_COMPLETED,
    TaskState.TASK_STATE_CANCELED,
    TaskState.TASK_STATE_FAILED,
    TaskState.TASK_STATE_REJECTED,
}


class TaskContextHandler(DefaultRequestHandler):
    """a2a-sdk's default handler, but a follow-up naming a task without ``contextId`` joins
    that task's context (the SDK would invent a new context id for it)."""

    async def _follow_task_context(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> None:
        message = params.message
        if message.task_id and not message.context_id:
            found = await self.task_store.get(message.task_id, context)
            task = found.task if isinstance(found, StoredTask) else found
            if task is not None:
                message.context_id = task.context_id

    async def on_message_send(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> Message | Task:
        await self._follow_task_context(params, context)
        result: Message | Task = await super().on_message_send(params, context)
        return result

    async def on_message_send_stream(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event, None]:
        await self._follow_task_context(params, context)
        async for event in super().on_message_send_stream(params, context):
            yield event


class FlowRequestHandler(DefaultRequestHandler):
    """Validates and creates the task tree before a2a-sdk starts the A2A task.

    A bad message is answered with a protocol error and leaves no A2A task behind. The tree's
    owner is the authenticated caller, never anything taken from the message.
    """

    def __init__(
        self,
        *,
        service: FlowService,
        store: SqlTaskStore,
        versioned: ClusterTaskStore | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(task_store=versioned or store, **kwargs)
        self.service = service
        self.store = store
        #: Cluster mode's versioned store (None: this process is the only server).
        self.versioned = versioned
        #: How often a replica streaming another replica's task checks whether its tree ended.
        self.adopt_poll_seconds = 1.0

    async def _prepare(self, params: SendMessageRequest, context: ServerCallContext) -> str:
        message = params.message
        if message.task_id:
            stored = await self.store.get(message.task_id, context)
            if stored is None:
                raise TaskNotFoundError(message=f"task {message.task_id} not found")
            raise UnsupportedOperationError(
                message=f"task {message.task_id} is {TaskState.Name(stored.status.state)} and "
                "takes no follow-up messages: send a new message without taskId to run a tree"
            )
        request = parse_request(message, self.service.max_tasks)
        caller = caller_of(context)
        if "rerun" in request:
            await self.service.prepare_rerun(
                message.context_id,
                request["rerun"],
                caller.user_id if caller is not None else None,
                caller is None or caller.is_admin,
            )
            return message.context_id
        tasks = request["tasks"]
        if not message.context_id:
            root = [t for t in tasks if not t.get("parent_id")]
            given = root[0].get("id") if len(root) == 1 else None
            message.context_id = given if isinstance(given, str) and given else str(uuid.uuid4())
        await self.service.prepare(
            message.context_id, tasks, caller.user_id if caller is not None else None
        )
        return message.context_id

    async def on_message_send(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> Message | Task:
        context_id = await guarded(self._prepare(params, context))
        try:
            result: Message | Task = await super().on_message_send(params, context)
            return result
        finally:
            await self.service.discard(context_id)

    async def on_message_send_stream(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event, None]:
        context_id = await guarded(self._prepare(params, context))
        try:
            async for event in super().on_message_send_stream(params, context):
                yield event
        finally:
            await self.service.discard(context_id)

    async def on_cancel_task(
        self, params: CancelTaskRequest, context: ServerCallContext
    ) -> Task | None:
        """Cancel the tree behind an A2A task; cancelling a cancelled task returns it again."""
        stored = await self.store.get(params.id, context)
        if stored is None:
            raise TaskNotFoundError
        if stored.status.state == TaskState.TASK_STATE_CANCELED:
            return stored
        if stored.status.state not in _TERMINAL and params.id not in self.service.runs:
            # Not running in this process (e.g. after a restart): stop the tree itself.
            root_id = _root_of(stored)
            if root_id:
                await guarded(self.service.manager.cancel_tree(root_id))
        cancelled: Task | None = await super().on_cancel_task(params, context)
        return cancelled

    async def on_get_task(self, params: GetTaskRequest, context: ServerCallContext) -> Task | None:
        """The stored task, brought up to date first if its run ended outside this process."""
        stored = await self.store.get(params.id, context)
        if (
            stored is not None
            and stored.status.state not in _TERMINAL
            and params.id not in self.service.runs
            and await self._active_task_registry.get(params.id) is None
        ):
            if self.versioned is None:
                await guarded(self._reconcile(stored, context))
            else:
                current = await self.versioned.get(params.id, context)
                if current is not None:
                    await guarded(self._reconcile(current.task, context, current.version))
        task: Task | None = await super().on_get_task(params, context)
        return task

    async def on_subscribe_to_task(
        self, params: SubscribeToTaskRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event, None]:
        """In cluster mode, a stream of a task another replica runs also watches its tree: if
        that replica died, the end it can no longer record is written here (and streamed)."""
        watcher = None
        if self.versioned is not None and await self._active_task_registry.get(params.id) is None:
            watcher = asyncio.create_task(self._adopt_when_ended(params.id, context))
        try:
            async for event in super().on_subscribe_to_task(params, context):
                yield event
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await watcher

    async def _adopt_when_ended(self, task_id: str, context: ServerCallContext) -> None:
        while True:
            await asyncio.sleep(self.adopt_poll_seconds)
            if self.versioned is None:
                return
            stored = await self.versioned.get(task_id, context)
            if stored is None or stored.task.status.state in _TERMINAL:
                return
            if await self._tree_status(stored.task) is None:
                continue
            await asyncio.sleep(self.adopt_poll_seconds)  # the running replica's turn first
            again = await self.versioned.get(task_id, context)
            if again is not None and again.version == stored.version:
                await guarded(self._reconcile(again.task, context, again.version))
                return

    async def _tree_status(self, task: Task) -> str | None:
        """The ended status of the task's tree, or None while it runs (or has no tree)."""
        root_id = _root_of(task)
        if not root_id:
            return None
        try:
            tasks = await self.service.manager.task_repository.get_all_tasks_in_tree(root_id)
        except LookupError:
            return "failed"
        status = aggregate_status([t.status for t in tasks]) if tasks else "failed"
        return status if status in {"completed", "failed", "cancelled"} else None

    async def _reconcile(
        self, task: Task, context: ServerCallContext, version: TaskVersion | None = None
    ) -> None:
        """Record the end of a tree whose run this process did not see (e.g. after a restart,
        or in cluster mode a replica that died). With ``version`` (cluster mode) each missing
        artifact and the end are written as events, checked against ``version``; a replica
        that wrote first wins and this one stops."""
        root_id = _root_of(task)
        if not root_id:
            return
        repo = self.service.manager.task_repository
        try:
            tasks = await repo.get_all_tasks_in_tree(root_id)
        except LookupError:
            tasks = []
        status = aggregate_status([t.status for t in tasks]) if tasks else "failed"
        if status not in {"completed", "failed", "cancelled"}:
            return
        known = {a.artifact_id for a in task.artifacts}
        missing = [
            Artifact(
                artifact_id=t.id,
                name=t.name,
                parts=[data_part(t.result)],
                metadata={META_KEY: {"task_id": t.id, "status": "completed"}},
            )
            for t in tasks
            if t.status == "completed" and t.id not in known
        ]
        before = Task()
        before.CopyFrom(task)
        task.artifacts.extend(missing)
        errors = [f"{t.name}: {t.error}" for t in tasks if t.status == "failed" and t.error]
        text = (
            f"task tree {root_id} {status}" + (f": {'; '.join(errors[:5])}" if errors else "")
            if tasks
            else f"task tree {root_id} no longer exists"
        )
        if task.status.HasField("message"):
            task.history.append(task.status.message)
        task.status.state = (
            STATE_OF_STATUS[status]
            if tasks  # type: ignore[assignment]
            else TaskState.TASK_STATE_FAILED
        )
        task.status.message.CopyFrom(
            Message(
                message_id=str(uuid.uuid4()),
                role=Role.ROLE_AGENT,
                context_id=task.context_id,
                task_id=task.id,
                parts=[Part(text=text)],
            )
        )
        task.status.timestamp.FromDatetime(datetime.now(UTC))
        if version is None or self.versioned is None:
            await self.store.save(task, context)
            return
        await self._record_end(before, missing, task.status, context, version)

    async def _record_end(
        self,
        task: Task,
        artifacts: list[Artifact],
        status: TaskStatus,
        context: ServerCallContext,
        version: TaskVersion,
    ) -> None:
        """Write each artifact, then the end, as versioned events (cluster mode)."""
        assert self.versioned is not None
        events: list[TaskArtifactUpdateEvent | TaskStatusUpdateEvent] = [
            TaskArtifactUpdateEvent(task_id=task.id, context_id=task.context_id, artifact=a)
            for a in artifacts
        ]
        events.append(
            TaskStatusUpdateEvent(task_id=task.id, context_id=task.context_id, status=status)
        )
        current = task
        for event in events:
            after = Task()
            after.CopyFrom(current)
            if isinstance(event, TaskArtifactUpdateEvent):
                after.artifacts.append(event.artifact)
            else:
                if after.status.HasField("message"):
                    after.history.append(after.status.message)
                after.status.CopyFrom(event.status)
            try:
                version = await self.versioned.save(
                    after, event=event, prev=current, prev_version=version, context=context
                )
            except ConcurrentTaskModificationError:
                return  # another replica recorded it meanwhile
            current = after
