"""Task management for UIs and scripts: JSON-RPC at ``/tasks``, SSE, WebSocket, OpenAPI.

Every read and write is scoped to the authenticated caller (admins see everything; without
auth there is one anonymous user). Another user's task is reported as not found. Errors are
JSON-RPC errors with distinct codes (invalid params -32602, not found -32001, conflict
-32002), never a bare 500.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

from jsonrpc.exceptions import JSONRPCInvalidRequestException
from jsonrpc.jsonrpc2 import JSONRPC20Request, JSONRPC20Response
from sse_starlette.sse import EventSourceResponse
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from aipartnerupflow.api.flow import FlowService
from aipartnerupflow.api.security import Caller
from aipartnerupflow.api.store import SqlTaskStore
from aipartnerupflow.core.errors import (
    AipartnerupflowError,
    ExecutorNotFoundError,
    TaskNotFoundError,
    ValidationError,
)
from aipartnerupflow.core.models import TaskModel
from aipartnerupflow.core.status import TaskStatus

__all__ = ["METHODS", "RpcError", "TasksApi", "create_tasks_routes"]

log = logging.getLogger("aipartnerupflow.api.tasks")

NOT_FOUND = -32001
CONFLICT = -32002
INVALID_PARAMS = -32602
MAX_LIMIT = 1000

#: Manual status changes ``tasks.update`` accepts (running tasks change only by running).
ALLOWED_TRANSITIONS: dict[str, set[str]] = {
    "pending": {"cancelled"},
    "failed": {"pending"},
    "cancelled": {"pending"},
    "completed": {"pending"},
    "in_progress": set(),
}
_EDITABLE = {
    "name",
    "priority",
    "inputs",
    "params",
    "schemas",
    "dependencies",
    "retry",
    "timeout_seconds",
}


class RpcError(Exception):
    """A JSON-RPC error answer."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def _param(params: dict[str, Any], *names: str, required: bool = True) -> Any:
    for name in names:
        value = params.get(name)
        if value not in (None, ""):
            return value
    if required:
        raise RpcError(INVALID_PARAMS, f"missing parameter {' or '.join(repr(n) for n in names)}")
    return None


def _int(params: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RpcError(INVALID_PARAMS, f"{name!r} must be an integer from {low} to {high}")
    return value


def _nest(tasks: list[TaskModel], root_id: str) -> dict[str, Any]:
    """A stored tree as nested dicts (``children`` lists), from ``root_id`` down."""
    nodes = {t.id: {**t.to_dict(), "children": []} for t in tasks}
    for task in tasks:
        if task.parent_id in nodes and task.id != root_id:
            nodes[task.parent_id]["children"].append(nodes[task.id])
    return nodes[root_id]


class TasksApi:
    """The ``/tasks`` JSON-RPC methods over the engine of a :class:`FlowService`."""

    def __init__(self, service: FlowService, task_store: SqlTaskStore) -> None:
        self.service = service
        self.manager = service.manager
        self.repo = service.manager.task_repository
        self.task_store = task_store
        self.methods: dict[str, Callable[[dict[str, Any], Caller | None], Awaitable[Any]]] = {
            "tasks.create": self.create,
            "tasks.get": self.get,
            "tasks.detail": self.get,
            "tasks.list": self.list_tasks,
            "tasks.count": self.count,
            "tasks.tree": self.tree,
            "tasks.children": self.children,
            "tasks.update": self.update,
            "tasks.delete": self.delete,
            "tasks.cancel": self.cancel,
            "tasks.copy": self.copy,
            "tasks.execute": self.execute,
            "tasks.resume": self.resume,
        }

    # -- scoping -------------------------------------------------------------------------

    @staticmethod
    def _user(caller: Caller | None) -> str | None:
        return caller.user_id if caller is not None else None

    @staticmethod
    def _scope(caller: Caller | None, params: dict[str, Any]) -> str | None:
        """The user filter for listing: the caller, or (admins) any user or everyone."""
        if caller is None or caller.is_admin:
            value = params.get("user_id")
            return str(value) if value else None
        return caller.user_id

    async def _task(self, task_id: Any, caller: Caller | None) -> TaskModel:
        if not isinstance(task_id, str):
            raise RpcError(INVALID_PARAMS, "task_id must be a string")
        task = await self.repo.get_task_by_id(task_id)
        if task is None or not (
            caller is None or caller.is_admin or task.user_id == caller.user_id
        ):
            raise RpcError(NOT_FOUND, f"task {task_id!r} not found")
        return task

    # -- methods -------------------------------------------------------------------------

    async def create(self, params: Any, caller: Caller | None) -> dict[str, Any]:
        tasks = params if isinstance(params, list) else _param(params, "tasks")
        if isinstance(tasks, dict):
            tasks = [tasks]
        tasks = self._owned(tasks, caller)
        tree = await self.manager.create_task_tree_from_array(tasks, user_id=self._user(caller))
        stored = await self.repo.get_all_tasks_in_tree(tree.task.id)
        return _nest(stored, tree.task.id)

    def _owned(self, tasks: Any, caller: Caller | None) -> list[dict[str, Any]]:
        if not isinstance(tasks, list) or not tasks:
            raise RpcError(INVALID_PARAMS, "'tasks' must be a non-empty array of task objects")
        if len(tasks) > self.service.max_tasks:
            raise RpcError(
                INVALID_PARAMS, f"too many tasks: {len(tasks)} (at most {self.service.max_tasks})"
            )
        owned = []
        for task in tasks:
            if not isinstance(task, dict):
                raise RpcError(INVALID_PARAMS, "every entry of 'tasks' must be an object")
            task = dict(task)
            given = task.pop("user_id", None)
            if given is not None and given != self._user(caller):
                raise RpcError(
                    INVALID_PARAMS,
                    "a task's user_id must be the authenticated "
                    f"user (or be left out); got {given!r}",
                )
            owned.append(task)
        return owned

    async def get(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        task = await self._task(_param(params, "task_id", "id"), caller)
        return task.to_dict()

    async def list_tasks(
        self, params: dict[str, Any], caller: Caller | None
    ) -> list[dict[str, Any]]:
        root_only = params.get("root_only", True)
        tasks = await self.repo.query_tasks(
            user_id=self._scope(caller, params),
            status=params.get("status"),
            parent_id="" if root_only else params.get("parent_id"),
            limit=_int(params, "limit", 100, 1, MAX_LIMIT),
            offset=_int(params, "offset", 0, 0, 10**9),
        )
        return [t.to_dict() for t in tasks]

    async def count(self, params: dict[str, Any], caller: Caller | None) -> dict[str, int]:
        counts: dict[str, int] = await self.repo.count_tasks(
            user_id=self._scope(caller, params),
            status=params.get("status"),
            root_id=params.get("root_id"),
            parent_id="" if params.get("root_only") else None,
        )
        return counts

    async def tree(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        task = await self._task(_param(params, "task_id", "root_id"), caller)
        root_id = task.root_id or task.id
        return _nest(await self.repo.get_all_tasks_in_tree(root_id), root_id)

    async def children(self, params: dict[str, Any], caller: Caller | None) -> list[dict[str, Any]]:
        parent = await self._task(_param(params, "parent_id", "task_id"), caller)
        return [t.to_dict() for t in await self.repo.get_child_tasks_by_parent_id(parent.id)]

    async def update(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        task = await self._task(_param(params, "task_id", "id"), caller)
        changes = {k: v for k, v in params.items() if k not in {"task_id", "id"}}
        refused = sorted(set(changes) - _EDITABLE - {"status"})
        if refused:
            raise RpcError(
                INVALID_PARAMS,
                f"field(s) {', '.join(refused)} cannot be updated; "
                f"editable: status, {', '.join(sorted(_EDITABLE))}",
            )
        if not changes:
            raise RpcError(INVALID_PARAMS, "nothing to update")
        status = changes.pop("status", None)
        if status is not None and status != task.status:
            allowed = ALLOWED_TRANSITIONS.get(task.status, set())
            if status not in allowed:
                raise RpcError(
                    CONFLICT,
                    f"status cannot change from {task.status!r} to "
                    f"{status!r}; allowed: {sorted(allowed) or 'none'}",
                )
        if changes and task.status == TaskStatus.IN_PROGRESS:
            raise RpcError(CONFLICT, "a running task cannot be edited; cancel it first")
        fields = dict(changes)
        if status is not None:
            fields["status"] = status
            if status == "pending":
                fields.update(error=None, result=None, progress=0.0, completed_at=None)
        await self.repo.update_task(task.id, **fields)
        updated = await self.repo.get_task_by_id(task.id)
        assert updated is not None
        return updated.to_dict()

    async def delete(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        task = await self._task(_param(params, "task_id", "id"), caller)
        tree = await self.repo.get_all_tasks_in_tree(task.root_id or task.id)
        doomed = _subtree(tree, task.id)
        running = sorted(t.name for t in doomed if t.status == TaskStatus.IN_PROGRESS)
        if running:
            raise RpcError(CONFLICT, "cannot delete while tasks run: " + ", ".join(running))
        ids = {t.id for t in doomed}
        dependents = sorted(
            t.name for t in tree if t.id not in ids and ids & set(t.dependency_ids())
        )
        if dependents:
            raise RpcError(CONFLICT, "other tasks depend on it: " + ", ".join(dependents))
        deleted = await self.repo.delete_task(task.id, with_descendants=True)
        return {"success": True, "task_id": task.id, "deleted_count": deleted}

    async def cancel(self, params: dict[str, Any], caller: Caller | None) -> list[dict[str, Any]]:
        ids = params.get("task_ids") or [_param(params, "task_id", "id")]
        if isinstance(ids, str):
            ids = [i.strip() for i in ids.split(",") if i.strip()]
        out = []
        for task_id in ids:
            task = await self._task(task_id, caller)
            cancelled = await self.manager.cancel_task(task.id)
            out.append({"task_id": task.id, "cancelled": cancelled})
        return out

    async def copy(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        task = await self._task(_param(params, "task_id", "id"), caller)
        root_id = task.root_id or task.id
        copy = await self.repo.copy_task_tree(root_id, user_id=self._user(caller))
        return _nest(await self.repo.get_all_tasks_in_tree(copy.id), copy.id)

    async def _start(
        self, params: dict[str, Any], caller: Caller | None
    ) -> tuple[str, Callable[[], Coroutine[Any, Any, Any]]]:
        rerun = params.get("rerun", "none")
        if rerun not in {"none", "all", "failed"}:
            raise RpcError(INVALID_PARAMS, "'rerun' must be none, all or failed")
        if params.get("tasks") is not None:
            tree = await self.manager.create_task_tree_from_array(
                self._owned(params["tasks"], caller), user_id=self._user(caller)
            )
            return tree.task.id, lambda: self.manager.distribute_task_tree(tree)
        task = await self._task(_param(params, "task_id", "root_id"), caller)
        root_id = task.root_id or task.id
        return root_id, lambda: self.manager.execute_tree(root_id, rerun=rerun)

    async def execute(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        root_id, run = await self._start(params, caller)
        result = await run()
        data: dict[str, Any] = result.to_dict()
        data["root_task_id"] = root_id
        return data

    async def resume(self, params: dict[str, Any], caller: Caller | None) -> list[dict[str, Any]]:
        """Run again the caller's trees a crashed process left unfinished; their results.

        Trees this server is running are not interrupted (their tasks are leased by it).
        """
        results = []
        for root_id in await self.manager.storage.interrupted_roots([self.manager.owner_id]):
            try:
                await self._task(root_id, caller)
            except RpcError:
                continue  # another user's tree
            try:
                results.append((await self.manager.execute_tree(root_id)).to_dict())
            except Exception as exc:  # one bad tree must not stop the others
                results.append(
                    {"root_id": root_id, "status": "failed", "error": f"not resumed: {exc}"}
                )
        return results

    async def stream(
        self, request_id: Any, params: dict[str, Any], caller: Caller | None
    ) -> AsyncIterator[dict[str, Any]]:
        """``tasks.execute`` with ``use_streaming``: a start frame, every event, then the end."""
        root_id, run = await self._start(params, caller)

        async def frames() -> AsyncIterator[dict[str, Any]]:
            async with self.manager.subscribe(root_id) as events:
                runner: asyncio.Task[Any] = asyncio.create_task(run())
                self.service.keep(runner)
                runner.add_done_callback(
                    lambda t: events.close() if t.cancelled() or t.exception() else None
                )
                yield _reply(
                    request_id, {"root_task_id": root_id, "status": "started", "streaming": True}
                )
                async for event in events:
                    yield _reply(request_id, event.to_dict())
            if runner.done() and not runner.cancelled() and runner.exception() is not None:
                yield _error(request_id, RpcError(-32603, f"the run failed: {runner.exception()}"))

        return frames()


def _subtree(tasks: list[TaskModel], top: str) -> list[TaskModel]:
    children: dict[str | None, list[TaskModel]] = {}
    for task in tasks:
        children.setdefault(task.parent_id, []).append(task)
    out, stack = [], [t for t in tasks if t.id == top]
    while stack:
        task = stack.pop()
        out.append(task)
        stack.extend(children.get(task.id, []))
    return out


def _reply(request_id: Any, result: Any) -> dict[str, Any]:
    data: dict[str, Any] = JSONRPC20Response(result=result, _id=request_id).data
    return data


def _error(request_id: Any, error: RpcError) -> dict[str, Any]:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.data is not None:
        body["data"] = error.data
    data: dict[str, Any] = JSONRPC20Response(error=body, _id=request_id).data
    return data


def _caller(conn: HTTPConnection) -> Caller | None:
    user = conn.scope.get("user")
    return user if isinstance(user, Caller) else None


def _translate(exc: Exception) -> RpcError:
    if isinstance(exc, RpcError):
        return exc
    if isinstance(exc, TaskNotFoundError):
        return RpcError(NOT_FOUND, str(exc))
    if isinstance(exc, ValidationError | ExecutorNotFoundError):
        return RpcError(INVALID_PARAMS, str(exc), getattr(exc, "problems", None))
    if isinstance(exc, AipartnerupflowError):
        return RpcError(CONFLICT, str(exc))
    log.exception("tasks API method failed")
    return RpcError(-32603, "internal error")


def create_tasks_routes(service: FlowService, task_store: SqlTaskStore) -> list[BaseRoute]:
    """``POST /tasks`` (JSON-RPC), ``WS /ws/trees/{root_id}``, ``GET /openapi.json``."""
    api = TasksApi(service, task_store)

    async def rpc(request: Request) -> Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return JSONResponse(_error(None, RpcError(-32700, "parse error")))
        request_id = body.get("id") if isinstance(body, dict) else None
        try:
            call = JSONRPC20Request.from_data(body)
        except (JSONRPCInvalidRequestException, ValueError, TypeError) as exc:
            return JSONResponse(_error(request_id, RpcError(-32600, f"invalid request: {exc}")))
        if not isinstance(call, JSONRPC20Request):
            return JSONResponse(_error(None, RpcError(-32600, "batch requests are not supported")))
        method = api.methods.get(call.method)
        if method is None:
            return JSONResponse(
                _error(
                    call._id,
                    RpcError(
                        -32601,
                        f"method {call.method!r} not found; methods: "
                        + ", ".join(sorted(api.methods)),
                    ),
                )
            )
        params = call.params if call.params is not None else {}
        caller = _caller(request)
        try:
            if not isinstance(params, dict | list):
                raise RpcError(INVALID_PARAMS, "params must be an object or an array")
            if isinstance(params, list) and call.method != "tasks.create":
                params = {"tasks": params} if call.method == "tasks.execute" else {}
            if (
                call.method == "tasks.execute"
                and isinstance(params, dict)
                and params.get("use_streaming")
            ):
                frames = await api.stream(call._id, dict(params), caller)
                return EventSourceResponse(
                    ({"data": json.dumps(frame)} async for frame in frames), ping=15
                )
            result = await method(params, caller)  # type: ignore[arg-type]
        except Exception as exc:
            return JSONResponse(_error(call._id, _translate(exc)))
        return JSONResponse(_reply(call._id, result))

    async def tree_events(websocket: WebSocket) -> None:
        root_id = websocket.path_params["root_id"]
        try:
            task = await api._task(root_id, _caller(websocket))
        except RpcError:
            await websocket.close(code=4404, reason="task not found")
            return
        await websocket.accept()
        root = task.root_id or task.id
        try:
            async with service.manager.subscribe(root) as events:
                current = await api.repo.get_task_by_id(root)
                if current is not None and TaskStatus.is_terminal(current.status):
                    await websocket.send_json(
                        {
                            "kind": "tree_finished",
                            "root_id": root,
                            "status": current.status,
                            "final": True,
                        }
                    )
                else:
                    async for event in events:
                        await websocket.send_json({**event.to_dict(), "final": event.final})
            await websocket.close()
        except WebSocketDisconnect:
            return

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(openapi_document(sorted(api.methods)))

    return [
        Route("/tasks", rpc, methods=["POST"]),
        WebSocketRoute("/ws/trees/{root_id}", tree_events),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]


METHODS = {
    "tasks.create": "Create a task tree from {tasks: [...]} (or a bare array); returns it nested.",
    "tasks.get": "One task by task_id.",
    "tasks.detail": "Same as tasks.get.",
    "tasks.list": "Tasks of the caller: status, root_only (true), limit (100), offset (0).",
    "tasks.count": "Counts per status (and total): status, root_id, root_only.",
    "tasks.tree": "The whole tree containing task_id, nested.",
    "tasks.children": "Direct children of parent_id.",
    "tasks.update": "Edit a task that is not running; status only along allowed transitions.",
    "tasks.delete": "Delete a task and its subtree (none running, nothing else depends on it).",
    "tasks.cancel": "Cancel task_id (or task_ids) and its descendants; idempotent.",
    "tasks.copy": "Copy the tree of task_id with fresh ids, all pending.",
    "tasks.execute": "Run task_id's tree (rerun: none|all|failed) or new tasks; "
    "use_streaming: true answers with server-sent events.",
    "tasks.resume": "Run again the caller's trees a crashed process left unfinished; "
    "returns their results.",
}


def openapi_document(methods: list[str]) -> dict[str, Any]:
    """OpenAPI 3.1 description of the management endpoints."""
    rpc_body = {
        "type": "object",
        "required": ["jsonrpc", "method", "id"],
        "properties": {
            "jsonrpc": {"const": "2.0"},
            "id": {"type": ["string", "integer"]},
            "method": {"enum": methods},
            "params": {"type": ["object", "array"]},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "aipartnerupflow task management",
            "version": "1.0",
            "description": "JSON-RPC methods at POST /tasks:\n"
            + "\n".join(f"- `{m}`: {METHODS.get(m, '')}" for m in methods),
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            }
        },
        "security": [{"bearer": []}],
        "paths": {
            "/tasks": {
                "post": {
                    "summary": "Task-management JSON-RPC",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": rpc_body}},
                    },
                    "responses": {
                        "200": {
                            "description": "JSON-RPC result or error (text/event-stream for "
                            "tasks.execute with use_streaming)"
                        },
                        "401": {"description": "missing or invalid bearer token"},
                    },
                }
            },
            "/ws/trees/{root_id}": {
                "get": {
                    "summary": "WebSocket: the events of a tree until it finishes",
                    "parameters": [
                        {
                            "name": "root_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {"101": {"description": "switching to WebSocket"}},
                }
            },
            "/system/health": {
                "get": {
                    "summary": "Liveness, version, and the schema revision "
                    "the server migrated its database to",
                    "security": [],
                    "responses": {"200": {"description": "healthy"}},
                }
            },
            "/.well-known/agent-card.json": {
                "get": {
                    "summary": "A2A agent card",
                    "security": [],
                    "responses": {"200": {"description": "the card"}},
                }
            },
        },
    }
