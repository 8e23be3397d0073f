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
from collections.abc import AsyncIterator, Awaitable, Callable
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
from aipartnerupflow.core.limits import TaskLimits
from aipartnerupflow.core.models import TaskModel
from aipartnerupflow.core.service import (
    OPERATIONS,
    PreparedRun,
    TaskCaller,
    TaskService,
    not_found,
    params_schema,
)
from aipartnerupflow.core.status import TaskStatus
from aipartnerupflow.core.storage import is_database_error
from aipartnerupflow.core.tree import TaskTreeNode

__all__ = ["METHODS", "RpcError", "TasksApi", "create_tasks_routes", "nest", "task_caller"]

log = logging.getLogger("aipartnerupflow.api.tasks")

NOT_FOUND = -32001
CONFLICT = -32002
INVALID_PARAMS = -32602

#: Old parameter names the methods still accept, mapped to the service's names.
_ALIASES: dict[str, dict[str, str]] = {
    "get": {"id": "task_id"},
    "tree": {"root_id": "task_id"},
    "children": {"parent_id": "task_id"},
    "update": {"id": "task_id"},
    "delete": {"id": "task_id"},
    "cancel": {"id": "task_id"},
    "copy": {"id": "task_id"},
    "execute": {"root_id": "task_id"},
}


class RpcError(Exception):
    """A JSON-RPC error answer."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def _params(operation: str, params: Any) -> dict[str, Any]:
    """The params object with old names mapped (the service validates the rest)."""
    if not isinstance(params, dict):
        raise RpcError(INVALID_PARAMS, "params must be an object")
    out = dict(params)
    for old, new in _ALIASES.get(operation, {}).items():
        if old in out and new not in out:
            out[new] = out.pop(old)
    return out


def nest(node: TaskTreeNode) -> dict[str, Any]:
    """A tree as nested dicts (``children`` lists), iteratively."""
    top: dict[str, Any] = {**node.task.to_dict(), "children": []}
    stack = [(node, top)]
    while stack:
        current, data = stack.pop()
        for child in current.children:
            child_data = {**child.task.to_dict(), "children": []}
            data["children"].append(child_data)
            stack.append((child, child_data))
    return top


def task_caller(caller: Caller | None) -> TaskCaller:
    """The service's caller for an HTTP caller (no auth: the one local operator)."""
    if caller is None:
        return TaskCaller.system()
    return TaskCaller(user_id=caller.user_id, is_admin=caller.is_admin)


class TasksApi:
    """The ``/tasks`` JSON-RPC methods: a thin adapter over :class:`TaskService`."""

    def __init__(self, service: FlowService, task_store: SqlTaskStore) -> None:
        self.service = service
        self.manager = service.manager
        self.task_store = task_store
        self.tasks = TaskService(self.manager, limits=TaskLimits(max_tasks=service.max_tasks))
        self.methods: dict[str, Callable[[dict[str, Any], Caller | None], Awaitable[Any]]] = {
            "tasks.create": self.create,
            "tasks.get": self.get,
            "tasks.detail": self.get,
            "tasks.list": self.list_tasks,
            "tasks.page": self.page,
            "tasks.count": self.count,
            "tasks.tree": self.tree,
            "tasks.children": self.children,
            "tasks.state": self.state,
            "tasks.update": self.update,
            "tasks.delete": self.delete,
            "tasks.cancel": self.cancel,
            "tasks.copy": self.copy,
            "tasks.execute": self.execute,
            "tasks.resume": self.resume,
        }

    def scoped(self, caller: Caller | None) -> TaskService:
        """The task service for this caller."""
        return self.tasks.for_caller(task_caller(caller))

    async def _task(self, task_id: Any, caller: Caller | None) -> TaskModel:
        return await self.scoped(caller).require(task_id)

    # -- methods -------------------------------------------------------------------------

    async def create(self, params: Any, caller: Caller | None) -> dict[str, Any]:
        if isinstance(params, list):
            params = {"tasks": params}
        elif isinstance(params, dict) and isinstance(params.get("tasks"), dict):
            params = {**params, "tasks": [params["tasks"]]}
        created = await self.scoped(caller).create(_params("create", params))
        data = nest(created.tree)
        if created.renamed:
            data["renamed"] = created.renamed
        return data

    async def get(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        task = await self.scoped(caller).get(_params("get", params))
        return task.to_dict()

    async def list_tasks(
        self, params: dict[str, Any], caller: Caller | None
    ) -> list[dict[str, Any]]:
        page = await self.scoped(caller).list_tasks(_params("list", params))
        return [t.to_dict() for t in page.tasks]

    async def page(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        page = await self.scoped(caller).list_tasks(_params("list", params))
        return {"tasks": [t.to_dict() for t in page.tasks], "next_cursor": page.next_cursor}

    async def count(self, params: dict[str, Any], caller: Caller | None) -> dict[str, int]:
        return await self.scoped(caller).count(_params("count", params))

    async def tree(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        return nest(await self.scoped(caller).tree(_params("tree", params)))

    async def children(self, params: dict[str, Any], caller: Caller | None) -> list[dict[str, Any]]:
        found = await self.scoped(caller).children(_params("children", params))
        return [t.to_dict() for t in found]

    async def state(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        found = await self.scoped(caller).run_state(_params("state", params))
        return {"root_id": found.root_id, "state": found.state, "hint": found.hint}

    async def update(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        task = await self.scoped(caller).update(_params("update", params))
        return task.to_dict()

    async def delete(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        p = _params("delete", params)
        deleted = await self.scoped(caller).delete(p)
        return {"success": True, "task_id": p.get("task_id"), "deleted_count": deleted}

    async def cancel(self, params: dict[str, Any], caller: Caller | None) -> list[dict[str, Any]]:
        p = _params("cancel", params)
        if isinstance(p.get("task_ids"), str):
            p["task_ids"] = [i.strip() for i in p["task_ids"].split(",") if i.strip()]
        outcomes = await self.scoped(caller).cancel(p)
        missing = [o.task_id for o in outcomes if o.status == "not_found"]
        if missing:
            raise RpcError(NOT_FOUND, str(not_found(missing[0])))
        return [
            {"task_id": o.task_id, "status": o.status, "cancelled": o.cancelled} for o in outcomes
        ]

    async def copy(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        return nest(await self.scoped(caller).copy(_params("copy", params)))

    async def _start(self, params: dict[str, Any], caller: Caller | None) -> PreparedRun:
        p = _params("execute", params)
        p.pop("use_streaming", None)
        return await self.scoped(caller).prepare_execute(p)

    async def execute(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        run = await self._start(params, caller)
        result = await run.start()
        data: dict[str, Any] = result.to_dict()
        data["root_task_id"] = run.root_id
        return data

    async def resume(self, params: dict[str, Any], caller: Caller | None) -> list[dict[str, Any]]:
        """Run again the caller's trees a crashed process left unfinished; their results.

        Trees this server is running are not interrupted (their tasks are leased by it).
        """
        results = await self.scoped(caller).resume(_params("resume", params))
        return [r.to_dict() for r in results]

    async def stream(
        self, request_id: Any, params: dict[str, Any], caller: Caller | None
    ) -> AsyncIterator[dict[str, Any]]:
        """``tasks.execute`` with ``use_streaming``: a start frame, every event, then the end."""
        run = await self._start(params, caller)
        root_id = run.root_id

        async def frames() -> AsyncIterator[dict[str, Any]]:
            async with self.manager.subscribe(root_id) as events:
                runner: asyncio.Task[Any] = asyncio.create_task(run.start())
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


async def _until_disconnect(websocket: WebSocket, on_disconnect: Callable[[], None]) -> None:
    """Wait for the client to leave (what it sends is ignored), then call ``on_disconnect``."""
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass
    on_disconnect()


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
    if is_database_error(exc):
        return _storage_failure(exc)
    if isinstance(exc, AipartnerupflowError):
        return RpcError(CONFLICT, str(exc))
    log.exception("tasks API method failed")
    return RpcError(-32603, "internal error")


def _storage_failure(exc: BaseException) -> RpcError:
    """The generic storage error for clients; the masked detail for the log."""
    from aipartnerupflow.api.store import STORAGE_ERROR_MESSAGE
    from aipartnerupflow.core.storage import db_error_text

    log.error("tasks API: task database error (%s): %s", type(exc).__name__, db_error_text(exc))
    return RpcError(-32603, STORAGE_ERROR_MESSAGE)


def create_tasks_routes(service: FlowService, task_store: SqlTaskStore) -> list[BaseRoute]:
    """``POST /tasks`` (JSON-RPC), ``WS /ws/trees/{root_id}``, ``GET /openapi.json``."""
    api = TasksApi(service, task_store)

    async def rpc(request: Request) -> Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return JSONResponse(_error(None, RpcError(-32700, "parse error")))
        except RecursionError:
            return JSONResponse(
                _error(
                    None,
                    RpcError(
                        -32700,
                        "parse error: the body is nested too deeply (task JSON may nest at "
                        "most 32 levels)",
                    ),
                )
            )
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
        except (RpcError, AipartnerupflowError):
            await websocket.close(code=4404, reason="task not found")
            return
        await websocket.accept()
        root = task.root_id or task.id
        try:
            async with service.manager.subscribe(root) as events:
                current = await service.manager.storage.get_task(root)
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
                    # A client that leaves ends the subscription at once (a pending tree may
                    # send nothing for a long time).
                    gone = asyncio.create_task(_until_disconnect(websocket, events.close))
                    try:
                        async for event in events:
                            await websocket.send_json({**event.to_dict(), "final": event.final})
                    finally:
                        gone.cancel()
                    if gone.done() and not gone.cancelled():
                        return
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
    "tasks.list": "Tasks of the caller: status, root_only (true), search (name contains or id "
    "prefix), order (newest|oldest), limit (100), offset (0).",
    "tasks.page": "Like tasks.list, as {tasks, next_cursor}; pass cursor for the next page.",
    "tasks.count": "Counts per status (and total): status, root_id, root_only, search.",
    "tasks.tree": "The whole tree containing task_id, nested.",
    "tasks.children": "Direct children of parent_id.",
    "tasks.state": "Whether anyone runs the tree of task_id: finished, running, queued, "
    "interrupted or pending (nobody started it), with a hint.",
    "tasks.update": "Edit a task that is not running or completed (validated as at creation, "
    "on the whole tree); status only along allowed transitions.",
    "tasks.delete": "Delete a task and its subtree (none running, nothing else depends on it).",
    "tasks.cancel": "Cancel task_id (or task_ids) and its descendants; idempotent.",
    "tasks.copy": "Copy the tree of task_id with fresh ids, all pending.",
    "tasks.execute": "Run task_id's tree (rerun: none|all|failed) or new tasks; "
    "use_streaming: true answers with server-sent events.",
    "tasks.resume": "Run again the caller's trees a crashed process left unfinished; "
    "returns their results.",
}


_OPERATION_OF = {"tasks.detail": "get", "tasks.page": "list"}


def _param_schemas(methods: list[str]) -> dict[str, Any]:
    """JSON Schemas of every method's params, from the task service's pydantic models."""
    schemas: dict[str, Any] = {}
    for method in methods:
        operation = _OPERATION_OF.get(method, method.removeprefix("tasks."))
        if operation not in OPERATIONS:
            continue
        schema = dict(params_schema(operation))
        for name, sub in schema.pop("$defs", {}).items():
            schemas.setdefault(name, sub)
        schemas[f"{method}.params"] = schema
    rebased: dict[str, Any] = _rebase(schemas)
    return rebased


def _rebase(value: Any) -> Any:
    """Point pydantic's ``#/$defs/X`` references at ``#/components/schemas/X``."""
    if isinstance(value, dict):
        return {
            k: (
                v.replace("#/$defs/", "#/components/schemas/")
                if k == "$ref" and isinstance(v, str)
                else _rebase(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_rebase(v) for v in value]
    return value


def openapi_document(methods: list[str]) -> dict[str, Any]:
    """OpenAPI 3.1 description of the management endpoints; the params of each method are
    described by ``components.schemas["<method>.params"]``."""
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
            "schemas": _param_schemas(methods),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
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
