"""Conformance mode (``--agent tck``): a sample agent driven by the A2A TCK's messageId prefixes.

The official TCK (a2aproject/a2a-tck) tells its system under test what to do through the
``messageId`` of each message (``tck-complete-task``, ``tck-input-required``...). This agent
implements those scenarios over the same server stack (stores, auth, push, routes), so the TCK
can be run against this server:

    aipartnerupflow-server --agent tck --port 9999
    ./run_tck.py --sut-host http://localhost:9999
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar

from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentSkill,
    Message,
    Part,
    Role,
    Task,
    TaskState,
    TaskStatus,
)
from a2a.utils.errors import UnsupportedOperationError
from google.protobuf.json_format import ParseDict
from google.protobuf.struct_pb2 import Value

from aipartnerupflow.api.card import build_agent_card
from aipartnerupflow.api.config import ServerSettings

__all__ = [
    "INPUT_REQUIRED_PREFIX",
    "SCENARIOS",
    "ConformanceAgentExecutor",
    "conformance_card",
    "streaming_timeout",
]

#: messageId prefix of the TCK's input-required scenario; a follow-up with it stays waiting.
INPUT_REQUIRED_PREFIX = "tck-input-required"

Scenario = Callable[[TaskUpdater, RequestContext], Awaitable[None]]
_TERMINAL = {
    TaskState.TASK_STATE_COMPLETED,
    TaskState.TASK_STATE_FAILED,
    TaskState.TASK_STATE_CANCELED,
    TaskState.TASK_STATE_REJECTED,
}


#: The running agent's streaming timeout (set per request from the server's settings).
_TIMEOUT: ContextVar[float] = ContextVar("tck_streaming_timeout", default=2.0)


def streaming_timeout() -> float:
    """The TCK's streaming timeout: ``TCK_STREAMING_TIMEOUT`` as read at start (default 2 s)."""
    return _TIMEOUT.get()


def _text(updater: TaskUpdater, text: str) -> Message:
    return updater.new_agent_message([Part(text=text)])


def _file() -> Part:
    return Part(raw=b"TCK file content", media_type="text/plain", filename="output.txt")


async def _complete(updater: TaskUpdater, _: RequestContext) -> None:
    await updater.complete(_text(updater, "Hello from TCK"))


async def _delayed(updater: TaskUpdater, _: RequestContext) -> None:
    await updater.start_work()
    await asyncio.sleep(streaming_timeout())
    await updater.complete(_text(updater, "Done after delay"))


def _artifact_then_complete(*parts: Part, working: bool = False) -> Scenario:
    async def run(updater: TaskUpdater, _: RequestContext) -> None:
        if working:
            await updater.start_work()
        await updater.add_artifact(list(parts))
        await updater.complete()

    return run


async def _chunked(updater: TaskUpdater, _: RequestContext) -> None:
    await updater.start_work()
    artifact_id = str(uuid.uuid4())
    await updater.add_artifact([Part(text="chunk-1 ")], artifact_id=artifact_id, append=False)
    await updater.add_artifact(
        [Part(text="chunk-2")], artifact_id=artifact_id, append=True, last_chunk=True
    )
    await updater.complete()


async def _input_required(updater: TaskUpdater, _: RequestContext) -> None:
    await updater.requires_input(_text(updater, "Input required"))


async def _reject(updater: TaskUpdater, _: RequestContext) -> None:
    await updater.reject(_text(updater, "rejected"))


async def _long_running(updater: TaskUpdater, _: RequestContext) -> None:
    await updater.start_work()
    await asyncio.sleep(2 * streaming_timeout())
    await updater.complete()


#: messageId prefix -> behaviour; longest prefixes first so the most specific one wins.
SCENARIOS: dict[str, Scenario] = {
    "tck-stream-artifact-chunked": _chunked,
    "tck-stream-artifact-text": _artifact_then_complete(
        Part(text="Streamed text content"), working=True
    ),
    "tck-stream-artifact-file": _artifact_then_complete(_file(), working=True),
    "tck-stream-ordering-001": _artifact_then_complete(Part(text="Ordered output"), working=True),
    "test-resubscribe-message-id": _long_running,
    "tck-artifact-file-url": _artifact_then_complete(
        Part(url="https://example.com/output.txt", media_type="text/plain", filename="output.txt")
    ),
    "tck-delayed-complete": _delayed,
    INPUT_REQUIRED_PREFIX: _input_required,
    "tck-complete-task": _complete,
    "tck-artifact-text": _artifact_then_complete(Part(text="Generated text content")),
    "tck-artifact-file": _artifact_then_complete(_file()),
    "tck-artifact-data": _artifact_then_complete(
        Part(data=ParseDict({"key": "value", "count": 42}, Value()), media_type="application/json")
    ),
    "tck-reject-task": _reject,
    "tck-stream-001": _artifact_then_complete(Part(text="Stream hello from TCK"), working=True),
    "tck-stream-003": _artifact_then_complete(Part(text="Stream task lifecycle"), working=True),
}


class ConformanceAgentExecutor(AgentExecutor):
    """Runs the TCK scenario named by the message's ``messageId`` prefix.

    ``streaming_timeout`` is what the delayed scenarios wait (ServerSettings'
    ``tck_streaming_timeout``, read once when the server starts).
    """

    def __init__(self, streaming_timeout: float = 2.0) -> None:
        self.streaming_timeout = streaming_timeout

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        _TIMEOUT.set(self.streaming_timeout)
        message = context.message
        message_id = message.message_id if message is not None else ""
        task_id, context_id = context.task_id or "", context.context_id or ""
        message_only = ("tck-message-response", "tck-stream-002")
        if message_id.startswith(message_only) and context.current_task is None:
            await event_queue.enqueue_event(
                Message(
                    message_id=str(uuid.uuid4()),
                    role=Role.ROLE_AGENT,
                    context_id=context_id,
                    parts=[Part(text="Direct message response")],
                )
            )
            return
        current = context.current_task
        if current is not None and current.status.state in _TERMINAL:
            raise UnsupportedOperationError(
                message=f"task {current.id} is {TaskState.Name(current.status.state)}"
            )
        if current is None:
            task = Task(
                id=task_id,
                context_id=context_id,
                status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
            )
            if message is not None:
                task.history.append(message)
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task_id, context_id)
        if current is not None:  # a follow-up (e.g. the input a task asked for)
            if message_id.startswith(INPUT_REQUIRED_PREFIX):  # the TCK asks to stay waiting
                await updater.requires_input(_text(updater, "Input still required"))
            else:
                await updater.complete(_text(updater, "Input received"))
            return
        scenario = next(
            (run for prefix, run in SCENARIOS.items() if message_id.startswith(prefix)), None
        )
        if scenario is None:
            text = context.get_user_input() or "Hello from aipartnerupflow"
            await updater.complete(_text(updater, text))
            return
        await scenario(updater, context)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        await TaskUpdater(event_queue, context.task_id or "", context.context_id or "").cancel()


def conformance_card(settings: ServerSettings) -> AgentCard:
    """The card of the conformance agent (text and JSON in, streaming and push on)."""
    skill = AgentSkill(
        id="tck",
        name="A2A TCK scenarios",
        description="Behaves as the A2A TCK asks through messageId prefixes.",
        tags=["conformance"],
        examples=["tck-complete-task"],
        input_modes=["text/plain", "application/json"],
        output_modes=["text/plain", "application/json"],
    )
    card = build_agent_card(
        settings, skills=[skill], description="aipartnerupflow in A2A conformance (TCK) mode."
    )
    del card.default_input_modes[:]
    card.default_input_modes.extend(["text/plain", "application/json"])
    del card.default_output_modes[:]
    card.default_output_modes.extend(["text/plain", "application/json"])
    card.capabilities.CopyFrom(
        AgentCapabilities(streaming=True, push_notifications=True, extended_agent_card=False)
    )
    return card
