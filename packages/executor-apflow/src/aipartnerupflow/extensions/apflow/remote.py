"""One remote run over a2a-sdk's client: submit (or find) it, follow it, cancel it.

Imports a2a-sdk and httpx, so only :mod:`~aipartnerupflow.extensions.apflow.executor`'s
``execute`` imports this module. Every connection goes through the outbound policy
(:func:`~aipartnerupflow.core.executors.http_transport.policy_client`, handed to the SDK's
client factory, so its connections are checked and pinned too).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from a2a.client import Client, ClientConfig, create_client
from a2a.client.errors import A2AClientError, A2AClientTimeoutError
from a2a.types import (
    AgentCard,
    Artifact,
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    StreamResponse,
    SubscribeToTaskRequest,
    Task,
    TaskState,
)
from a2a.utils import errors as a2a_errors
from a2a.utils.errors import A2AError
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from google.protobuf.struct_pb2 import Value

from aipartnerupflow.core.errors import ExecutorError, PermanentError, RetryableError
from aipartnerupflow.core.executors.http_transport import policy_client
from aipartnerupflow.core.executors.policy import OutboundPolicy
from aipartnerupflow.extensions.apflow.errors import RemoteRunError
from aipartnerupflow.extensions.apflow.request import RemoteRequest, run_key

__all__ = ["RemoteRun", "open_client"]

#: Our server's key in task metadata and status-update metadata (aipartnerupflow.api.flow).
_META_KEY = "aipartnerupflow"
_EVENT_KEY = "aipartnerupflow_event"
_TERMINAL = {
    TaskState.TASK_STATE_COMPLETED,
    TaskState.TASK_STATE_FAILED,
    TaskState.TASK_STATE_CANCELED,
    TaskState.TASK_STATE_REJECTED,
}
#: States in which the remote side waits for something this executor cannot give.
_STUCK = {TaskState.TASK_STATE_INPUT_REQUIRED, TaskState.TASK_STATE_AUTH_REQUIRED}
_MAX_BACKOFF = 30.0
#: How many earlier attempts, and runs per attempt, re-attaching looks at.
_LOOKBACK = 10
_MAX_GENERATIONS = 50
_CANCEL_LOOKUPS = 50
#: A2A errors no retry fixes (bad request, unknown method, unsupported, bad version...).
_PERMANENT_A2A: tuple[type[A2AError], ...] = (
    a2a_errors.InvalidParamsError,
    a2a_errors.InvalidRequestError,
    a2a_errors.MethodNotFoundError,
    a2a_errors.UnsupportedOperationError,
    a2a_errors.ContentTypeNotSupportedError,
    a2a_errors.VersionNotSupportedError,
    a2a_errors.ExtensionSupportRequiredError,
    a2a_errors.TaskNotFoundError,
    a2a_errors.JSONParseError,
)


def _raise_if_cancelling() -> None:
    """Re-raise a cancellation an SDK or httpx layer turned into an ordinary error.

    A cancelled (or timed-out) follow must end, and cancel the remote run, never fall back to
    polling as if the stream had merely broken.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _problem(exc: BaseException, what: str) -> ExecutorError:
    """An SDK or transport error as a project error (permanent when no retry can help)."""
    if isinstance(exc, ExecutorError):
        return exc
    if isinstance(exc.__cause__, ExecutorError):  # e.g. the outbound policy, inside the SDK
        return exc.__cause__
    if isinstance(exc, httpx.HTTPStatusError):
        code = exc.response.status_code
        text = f"{what}: the remote side answered HTTP {code}"
        if code in {401, 403}:
            return PermanentError(f"{text} (check auth_token: it was refused)")
        return RetryableError(text) if code >= 500 or code == 429 else PermanentError(text)
    if isinstance(exc, A2AClientTimeoutError | httpx.TimeoutException):
        return RetryableError(f"{what}: the remote side did not answer in time")
    if isinstance(exc, httpx.TransportError):
        return RetryableError(f"{what}: {type(exc).__name__}: {exc}")
    if isinstance(exc.__cause__, httpx.HTTPError):  # the SDK wraps httpx's errors
        return _problem(exc.__cause__, what)
    text = str(exc) or type(exc).__name__
    if isinstance(exc, _PERMANENT_A2A):
        return PermanentError(f"{what}: {text}")
    if isinstance(exc, A2AError | A2AClientError):
        return RetryableError(f"{what}: {text}")
    return RetryableError(f"{what}: {type(exc).__name__}: {text}")


def _same_origin(card: AgentCard, card_url: str) -> AgentCard:
    """The card with only the interfaces on the card's own scheme, host and port.

    Credentials go with every request, so a card must not send them to another host; an agent
    whose interfaces live elsewhere is called through its card URL there instead.
    """
    origin = httpx.URL(card_url)
    kept = []
    for interface in card.supported_interfaces:
        try:
            url = httpx.URL(interface.url)
        except httpx.InvalidURL:
            continue
        if (url.scheme, url.host, url.port) == (origin.scheme, origin.host, origin.port):
            kept.append(interface)
    if not kept:
        raise PermanentError(
            f"the agent card at {card_url} names interfaces on other hosts only; credentials "
            "are not sent there: give the card URL of the host the agent is served on"
        )
    copy = AgentCard()
    copy.CopyFrom(card)
    del copy.supported_interfaces[:]
    copy.supported_interfaces.extend(kept)
    return copy


async def _fetch_card(http: httpx.AsyncClient, url: str) -> AgentCard:
    try:
        response = await http.get(url)
        response.raise_for_status()
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        if isinstance(exc, ValueError) and not isinstance(exc, httpx.HTTPError):
            raise PermanentError(f"the agent card at {url} is not JSON") from None
        raise _problem(exc, f"fetching the agent card at {url}") from None
    if not isinstance(body, dict):
        raise PermanentError(f"the agent card at {url} is not a JSON object")
    try:
        card: AgentCard = ParseDict(body, AgentCard(), ignore_unknown_fields=True)
    except ParseError as exc:
        raise PermanentError(f"the agent card at {url} is not an A2A 1.0 card: {exc}") from None
    if not card.supported_interfaces:
        raise PermanentError(
            f"the agent card at {url} names no interface (supportedInterfaces): is this an "
            "A2A 1.0 agent?"
        )
    return card


@contextlib.asynccontextmanager
async def open_client(
    request: RemoteRequest, policy: OutboundPolicy, request_timeout: float
) -> AsyncIterator[tuple[Client, AgentCard]]:
    """An a2a-sdk client for the agent at ``request.card_url``, on a policy-checked httpx."""
    http = policy_client(
        policy,
        headers=request.headers,
        timeout=httpx.Timeout(request_timeout, read=None),
    )
    client: Client | None = None
    try:
        card = await _fetch_card(http, request.card_url)
        if request.headers:
            card = _same_origin(card, request.card_url)
        config = ClientConfig(
            httpx_client=http,
            streaming=request.streaming,
            supported_protocol_bindings=["JSONRPC", "HTTP+JSON"],
        )
        try:
            client = await create_client(card, client_config=config)
        except Exception as exc:
            raise _problem(exc, "connecting to the agent") from None
        yield client, card
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()
        await http.aclose()


def _value(part: Part) -> dict[str, Any]:
    out: dict[str, Any] = {}
    kind = part.WhichOneof("content")
    if kind == "text":
        out["text"] = part.text
    elif kind == "data":
        out["data"] = MessageToDict(part.data)
    elif kind == "url":
        out["url"] = part.url
    elif kind == "raw":
        out["raw_bytes"] = len(part.raw)
    if part.media_type:
        out["media_type"] = part.media_type
    if part.filename:
        out["filename"] = part.filename
    return out


def _message_text(message: Message) -> str:
    return "\n".join(p.text for p in message.parts if p.WhichOneof("content") == "text")


def _message_data(message: Message) -> list[Any]:
    return [MessageToDict(p.data) for p in message.parts if p.WhichOneof("content") == "data"]


def _meta(task: Task) -> dict[str, Any]:
    if _META_KEY not in task.metadata:
        return {}
    value = MessageToDict(task.metadata).get(_META_KEY)
    return value if isinstance(value, dict) else {}


@dataclass(slots=True)
class RemoteRun:
    """What is known of one remote A2A task, fed with events and snapshots."""

    request: RemoteRequest
    key: str
    on_progress: Callable[[float, str | None], None]
    task_id: str | None = None
    state: int = TaskState.TASK_STATE_UNSPECIFIED
    task: Task | None = None
    reply: Message | None = None
    reattached: bool = False
    #: The message was (being) sent: a cancel must look for the remote task.
    submitted: bool = False
    finished_tasks: set[str] = field(default_factory=set)
    task_count: int = 0
    _progress: float = 0.0

    # -- wire ------------------------------------------------------------------------------

    def message(self) -> Message:
        parts: list[Part] = []
        if self.request.tasks is not None:
            parts.append(Part(data=ParseDict({"tasks": self.request.tasks}, Value())))
        if self.request.text is not None:
            parts.append(Part(text=self.request.text))
        if self.request.data is not None:
            parts.append(Part(data=ParseDict(self.request.data, Value())))
        return Message(role=Role.ROLE_USER, message_id=self.key, context_id=self.key, parts=parts)

    @property
    def terminal(self) -> bool:
        return self.reply is not None or self.state in _TERMINAL

    # -- following -------------------------------------------------------------------------

    def snapshot(self, task: Task) -> None:
        self.task, self.task_id, self.state = task, task.id, task.status.state
        count = _meta(task).get("task_count")
        if isinstance(count, int | float) and count > 0:
            self.task_count = int(count)
        for artifact in task.artifacts:
            self.finished_tasks.add(artifact.artifact_id)
        self._report(None)

    def event(self, event: StreamResponse) -> None:
        kind = event.WhichOneof("payload")
        if kind == "task":
            self.snapshot(event.task)
        elif kind == "message":
            self.reply = event.message
        elif kind == "status_update":
            update = event.status_update
            self.task_id = update.task_id or self.task_id
            self.state = update.status.state
            info: Any = None
            if _EVENT_KEY in update.metadata:
                info = MessageToDict(update.metadata).get(_EVENT_KEY)
            if isinstance(info, dict):
                name, status = info.get("name"), info.get("status")
                if status in {"completed", "failed", "cancelled"} and info.get("task_id"):
                    self.finished_tasks.add(str(info["task_id"]))
                text = info.get("message") or (f"{name}: {status}" if name and status else None)
                self._report(str(text) if text else None)
        elif kind == "artifact_update":
            self.task_id = event.artifact_update.task_id or self.task_id
            self.finished_tasks.add(event.artifact_update.artifact.artifact_id)
            self._report(f"result of {event.artifact_update.artifact.name or 'a task'}")

    def _report(self, message: str | None) -> None:
        total = self.task_count or (len(self.request.tasks) if self.request.tasks else 0)
        if not total:
            return
        progress = min(1.0, len(self.finished_tasks) / total)
        if progress > self._progress or message:
            self._progress = max(self._progress, progress)
            self.on_progress(self._progress, message)

    # -- calls -----------------------------------------------------------------------------

    async def lookup(self, client: Client, key: str) -> Task | None:
        """The remote task of context ``key``, if the agent has one (and can list tasks)."""
        try:
            found = await client.list_tasks(ListTasksRequest(context_id=key, page_size=10))
        except Exception:  # not every agent lists tasks: then there is nothing to find
            _raise_if_cancelling()
            return None
        tasks = [t for t in found.tasks if t.context_id == key]
        return tasks[0] if tasks else None

    async def locate(
        self,
        client: Client,
        task_id: str | None,
        attempt: int,
        interrupted: int | None = None,
    ) -> bool:
        """Re-attach to a run an earlier try submitted; else choose the key of a new run. True
        when re-attached.

        The newest run of the newest attempt that has one is the candidate. It is re-attached
        while it is still going, and also once it has ended when it belongs to ``interrupted``,
        the attempt a dead process left without an end (the engine resumes it as a new attempt):
        its outcome is that attempt's, so the remote tree never runs twice for it. Other ended
        runs are not re-attached (a retry or a rerun wants a new run).
        """
        if not task_id:
            return False
        latest: Task | None = None
        latest_key = ""
        latest_attempt = 0
        next_key = self.key
        for number in range(attempt, max(0, attempt - _LOOKBACK), -1):
            generation = 0
            while generation < _MAX_GENERATIONS:
                key = run_key(task_id, number, generation)
                found = await self.lookup(client, key)
                if found is None:
                    break
                latest, latest_key, latest_attempt = found, key, number
                generation += 1
            if number == attempt:
                next_key = run_key(task_id, number, generation)
            if latest is not None:
                break
        if latest is not None and (
            latest.status.state not in _TERMINAL
            or (interrupted is not None and latest_attempt == interrupted)
        ):
            self.use_key(latest_key)
            self.snapshot(latest)
            self.reattached = True
            return True
        self.use_key(next_key)
        return False

    def use_key(self, key: str) -> None:
        self.key = key
        self.request.use_key(key)

    async def submit(self, client: Client, *, follow: bool) -> None:
        """Send the message; with ``follow`` (streaming), consume its events to the end."""
        config = SendMessageConfiguration(return_immediately=not follow)
        self.submitted = True
        stream = client.send_message(
            SendMessageRequest(message=self.message(), configuration=config)
        )
        try:
            async for event in stream:
                self.event(event)
                if self.terminal or (not follow and self.task_id):
                    break
        except Exception as exc:
            _raise_if_cancelling()
            if self.task_id is None and "already exists" in str(exc):
                found = await self.lookup(client, self.key)
                if found is not None:  # submitted by a try whose task record was not there yet
                    self.snapshot(found)
                    self.reattached = True
                    return
            if self.task_id is None:
                raise _problem(exc, "submitting to the agent") from None
            # the stream broke after the task was created: follow it by polling instead
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()  # type: ignore[attr-defined]
        if self.task_id is None and self.reply is None:
            raise PermanentError("the agent answered without a task or a message")

    async def subscribe(self, client: Client) -> None:
        """Follow a re-attached run's events (falls back to polling if the agent can't)."""
        assert self.task_id is not None
        stream = client.subscribe(SubscribeToTaskRequest(id=self.task_id))
        try:
            async for event in stream:
                self.event(event)
                if self.terminal:
                    break
        except Exception:
            _raise_if_cancelling()
            return  # e.g. subscriptions unsupported, or the task ended meanwhile: poll
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()  # type: ignore[attr-defined]

    async def poll(self, client: Client) -> None:
        """Get the task until it ends: ``poll_interval`` apart, doubling up to 30 s."""
        delay = self.request.poll_interval
        failures = 0
        while True:
            try:
                await self.refresh(client)
                failures = 0
            except RetryableError:
                failures += 1
                if failures >= 10:
                    raise
            if self.terminal:
                return
            if self.state in _STUCK:
                raise PermanentError(
                    f"the remote task {self.task_id} is {TaskState.Name(self.state)}: it waits for "
                    "input or credentials this executor cannot give"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF)

    async def refresh(self, client: Client) -> None:
        if self.task_id is None:
            return
        try:
            task = await client.get_task(GetTaskRequest(id=self.task_id))
        except Exception as exc:
            _raise_if_cancelling()
            raise _problem(exc, f"getting remote task {self.task_id}") from None
        self.snapshot(task)

    async def cancel(self, client: Client) -> None:
        """Ask the remote side to cancel this run (found by context id if not yet known).

        Cancelled while the submit was in flight, the task id is unknown and the remote task
        record may be written a moment after its run starts: look a few times (the caller
        bounds the whole by ``cancel_timeout``).
        """
        ids = [self.task_id] if self.task_id else []
        for _ in range(_CANCEL_LOOKUPS):
            if ids or not self.submitted:
                break
            try:
                found = await client.list_tasks(ListTasksRequest(context_id=self.key))
            except Exception:
                break
            ids = [
                t.id
                for t in found.tasks
                if t.context_id == self.key and t.status.state not in _TERMINAL
            ]
            if not ids:
                await asyncio.sleep(0.1)
        for task_id in ids:
            with contextlib.suppress(Exception):
                await client.cancel_task(CancelTaskRequest(id=task_id))

    # -- outcome ---------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"context_id": self.key}
        if self.task_id:
            out["task_id"] = self.task_id
        if self.state != TaskState.TASK_STATE_UNSPECIFIED:
            out["state"] = TaskState.Name(self.state)
        root = _meta(self.task).get("root_task_id") if self.task is not None else None
        if root:
            out["root_task_id"] = root
        if self.reattached:
            out["reattached"] = True
        return out

    def error_text(self) -> str:
        task = self.task
        if task is not None and task.status.HasField("message"):
            text = _message_text(task.status.message)
            if text:
                return text
        return f"the remote task ended {TaskState.Name(self.state)}"

    def outcome(self, limit: int) -> dict[str, Any]:
        """The result of a finished run, or a :class:`RemoteRunError` for a failed one."""
        if self.reply is not None:
            budget = _Budget(limit)
            parts = [budget.keep(_value(p)) for p in self.reply.parts]
            return budget.mark(
                {
                    "success": True,
                    "remote": self.summary(),
                    "text": _message_text(self.reply),
                    "parts": parts,
                }
            )
        if self.state != TaskState.TASK_STATE_COMPLETED:
            tasks = self._task_statuses()
            raise RemoteRunError(
                f"the remote run failed: {self.error_text()}"
                if self.state != TaskState.TASK_STATE_CANCELED
                else f"the remote run was cancelled on the remote side: {self.error_text()}",
                {"remote": self.summary(), "tasks": tasks},
            )
        assert self.task is not None
        budget = _Budget(limit)
        out: dict[str, Any] = {"success": True, "remote": self.summary()}
        if self.request.tasks is not None:
            out["results"] = {
                self.request.original_ids.get(a.artifact_id, a.artifact_id): budget.keep(
                    _artifact_value(a)
                )
                for a in self.task.artifacts
            }
            out["tasks"] = self._task_statuses()
        else:
            out["artifacts"] = [
                {
                    "artifact_id": a.artifact_id,
                    "name": a.name,
                    "parts": [budget.keep(_value(p)) for p in a.parts],
                }
                for a in self.task.artifacts
            ]
            out["text"] = "\n".join(
                p.text
                for a in self.task.artifacts
                for p in a.parts
                if p.WhichOneof("content") == "text"
            )
        return budget.mark(out)

    def _task_statuses(self) -> list[dict[str, Any]]:
        """Per-task statuses from our server's final status message (empty for others)."""
        task = self.task
        if task is None or not task.status.HasField("message"):
            return []
        for data in _message_data(task.status.message):
            if isinstance(data, dict) and isinstance(data.get("tasks"), list):
                out = []
                for item in data["tasks"]:
                    if isinstance(item, dict):
                        ident = str(item.get("id"))
                        out.append({**item, "id": self.request.original_ids.get(ident, ident)})
                return out
        return []


def _artifact_value(artifact: Artifact) -> Any:
    """One task's result: the single data part our server sends, else the parts."""
    if len(artifact.parts) == 1 and artifact.parts[0].WhichOneof("content") == "data":
        return MessageToDict(artifact.parts[0].data)
    return [_value(p) for p in artifact.parts]


class _Budget:
    """Keeps values while their JSON fits in ``limit`` bytes; notes the rest as truncated."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.truncated = 0

    def keep(self, value: Any) -> Any:
        size = len(json.dumps(value, default=_non_json).encode())
        if size <= self.left:
            self.left -= size
            return value
        self.truncated += 1
        return {"truncated": True, "bytes": size}

    def mark(self, out: dict[str, Any]) -> dict[str, Any]:
        if self.truncated:
            out["truncated"] = True
            out["truncated_values"] = self.truncated
        return out


def _non_json(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)
