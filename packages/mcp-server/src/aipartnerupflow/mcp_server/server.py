"""The MCP server: tools, task/tree resources, progress and resource-updated notifications.

Built on the SDK's low-level :class:`mcp.server.lowlevel.Server` so the tool schemas are the
task service's own (``params_schema``), and bad arguments answer a JSON-RPC error
(``-32602``) instead of a tool result. Over HTTP each request's caller comes from the JWT the
A2A server's :class:`~aipartnerupflow.api.security.AuthMiddleware` verified; over stdio the
caller is the local operator.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from typing import TYPE_CHECKING, Any

import anyio
from mcp import types
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.shared.exceptions import McpError
from pydantic import AnyUrl

from aipartnerupflow.core.errors import (
    AipartnerupflowError,
    ExecutorNotFoundError,
    TaskNotFoundError,
    ValidationError,
)
from aipartnerupflow.core.events import TaskEvent
from aipartnerupflow.core.limits import TaskLimits
from aipartnerupflow.core.service import PreparedRun, TaskCaller, TaskService
from aipartnerupflow.core.status import TaskStatus
from aipartnerupflow.mcp_server.strict_json import NON_JSON_TOOL, non_json_message
from aipartnerupflow.mcp_server.tools import RUN_TOOLS, SIMPLE_HANDLERS, TOOLS, tree_dict

if TYPE_CHECKING:
    from mcp.server.session import ServerSession

    from aipartnerupflow.core.manager import TaskManager

__all__ = ["NOT_FOUND", "SERVER_NAME", "TASK_URI", "TREE_URI", "FlowMcpServer"]

log = logging.getLogger("aipartnerupflow.mcp_server")

SERVER_NAME = "aipartnerupflow"
TASK_URI = "apflow://tasks/"
TREE_URI = "apflow://trees/"
#: JSON-RPC code of an unknown (or someone else's) task in resource reads.
NOT_FOUND = -32002


def _caller_of(server: Server[Any, Any]) -> TaskCaller:
    """The caller of the current request: the JWT's user over HTTP, else the operator."""
    from aipartnerupflow.api.security import Caller

    request = server.request_context.request
    user = getattr(request, "scope", {}).get("user") if request is not None else None
    if isinstance(user, Caller):
        return TaskCaller(user_id=user.user_id, is_admin=user.is_admin)
    return TaskCaller.system()


def _json_result(data: Any) -> types.ServerResult:
    return types.ServerResult(
        types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(data, default=str))],
            structuredContent=data,
            isError=False,
        )
    )


def _tool_error(message: str) -> types.ServerResult:
    return types.ServerResult(
        types.CallToolResult(content=[types.TextContent(type="text", text=message)], isError=True)
    )


class _SubscribableServer(Server[Any, Any]):
    """The low-level server, announcing resource subscriptions (the SDK never does)."""

    def get_capabilities(
        self,
        notification_options: NotificationOptions,
        experimental_capabilities: dict[str, dict[str, Any]],
    ) -> types.ServerCapabilities:
        caps = super().get_capabilities(notification_options, experimental_capabilities)
        if caps.resources is not None:
            caps.resources.subscribe = True
        return caps


class FlowMcpServer:
    """One MCP server over one :class:`TaskManager` (share it across sessions)."""

    def __init__(self, manager: TaskManager, *, max_tasks: int = 1000) -> None:
        self.manager = manager
        self.service = TaskService(manager, limits=TaskLimits(max_tasks=max_tasks))
        self.server: Server[Any, Any] = _SubscribableServer(SERVER_NAME, instructions=_INSTRUCTIONS)
        self._runs: set[asyncio.Task[Any]] = set()
        #: session -> (uri -> caller) it subscribed to (weak: a closed session drops out).
        self._subscriptions: weakref.WeakKeyDictionary[ServerSession, dict[str, TaskCaller]] = (
            weakref.WeakKeyDictionary()
        )
        self._listening = False
        handlers = self.server.request_handlers
        handlers[types.ListToolsRequest] = self._list_tools
        handlers[types.CallToolRequest] = self._call_tool
        handlers[types.ListResourcesRequest] = self._list_resources
        handlers[types.ListResourceTemplatesRequest] = self._list_templates
        handlers[types.ReadResourceRequest] = self._read_resource
        handlers[types.SubscribeRequest] = self._subscribe
        handlers[types.UnsubscribeRequest] = self._unsubscribe

    def initialization_options(self) -> InitializationOptions:
        """Capabilities: tools, resources with subscriptions."""
        return self.server.create_initialization_options(NotificationOptions())

    def scoped(self) -> TaskService:
        """The task service for the current request's caller."""
        return self.service.for_caller(_caller_of(self.server))

    async def aclose(self) -> None:
        """Cancel the runs this server started and wait for them to stop."""
        for run in list(self._runs):
            run.cancel()
        if self._runs:
            await asyncio.gather(*self._runs, return_exceptions=True)
        if self._listening:
            self.manager.events.remove_listener(self._on_event)
            self._listening = False

    # -- tools ---------------------------------------------------------------------------

    async def _list_tools(self, req: types.ListToolsRequest) -> types.ServerResult:
        tools = [
            types.Tool(name=t.name, description=t.description, inputSchema=t.input_schema())
            for t in TOOLS
        ]
        return types.ServerResult(types.ListToolsResult(tools=tools))

    async def _call_tool(self, req: types.CallToolRequest) -> types.ServerResult:
        name = req.params.name
        args = dict(req.params.arguments or {})
        if name == NON_JSON_TOOL:  # a stdio request StrictJsonLines refused
            literal = str(args.get("literal"))
            raise McpError(
                types.ErrorData(code=types.PARSE_ERROR, message=non_json_message(literal))
            )
        service = self.scoped()
        try:
            if name in RUN_TOOLS:
                run = await service.prepare_execute(args)
                if name == "tasks_run":
                    return _json_result(self._start_background(run))
                return _json_result(await self._run_and_wait(run, req))
            handler = SIMPLE_HANDLERS.get(name)
            if handler is None:
                raise McpError(
                    types.ErrorData(
                        code=types.INVALID_PARAMS,
                        message=f"unknown tool {name!r}; tools: "
                        + ", ".join(t.name for t in TOOLS),
                    )
                )
            return _json_result(await handler(service, args))
        except (ValidationError, ExecutorNotFoundError) as exc:
            problems = getattr(exc, "problems", None)
            raise McpError(
                types.ErrorData(
                    code=types.INVALID_PARAMS,
                    message=f"{name}: {exc}",
                    data={"problems": list(problems)} if problems else None,
                )
            ) from None
        except TaskNotFoundError as exc:
            return _tool_error(str(exc))
        except AipartnerupflowError as exc:
            return _tool_error(f"{name}: {exc}")

    def _start_background(self, run: PreparedRun) -> dict[str, Any]:
        self._watch_events()
        runner = asyncio.create_task(run.start())
        self._runs.add(runner)
        runner.add_done_callback(self._run_done)
        return {"root_task_id": run.root_id, "status": "started", **tree_dict(run.tree)}

    def _run_done(self, runner: asyncio.Task[Any]) -> None:
        self._runs.discard(runner)
        if not runner.cancelled() and runner.exception() is not None:
            log.error("a tree run failed: %s", runner.exception())

    async def _run_and_wait(self, run: PreparedRun, req: types.CallToolRequest) -> dict[str, Any]:
        self._watch_events()
        meta = req.params.meta
        token = meta.progressToken if meta is not None else None
        session = self.server.request_context.session
        total = float(len(run.tree.tasks()))
        finished: set[str] = set()
        async with self.manager.subscribe(run.root_id) as events:
            runner = asyncio.create_task(run.start())
            self._runs.add(runner)
            runner.add_done_callback(self._run_done)
            runner.add_done_callback(lambda _t: events.close())
            try:
                async for event in events:
                    if token is None:
                        continue
                    if event.kind == "task_status" and TaskStatus.is_terminal(event.status):
                        finished.add(event.task_id)
                    await session.send_progress_notification(
                        token,
                        float(len(finished)),
                        total,
                        message=_progress_message(event),
                        related_request_id=str(self.server.request_context.request_id),
                    )
                result = await runner
            except (asyncio.CancelledError, anyio.get_cancelled_exc_class()):
                # The client cancelled the request (notifications/cancelled): stop the tree.
                with anyio.CancelScope(shield=True):
                    await self.manager.cancel_task(run.root_id)
                raise
        data: dict[str, Any] = result.to_dict()
        data["root_task_id"] = run.root_id
        return data

    # -- resources -----------------------------------------------------------------------

    async def _list_resources(self, req: types.ListResourcesRequest) -> types.ServerResult:
        page = await self.scoped().list_tasks({"root_only": True, "limit": 100})
        resources = [
            types.Resource(
                uri=AnyUrl(f"{TREE_URI}{t.id}"),
                name=f"tree {t.name}",
                description=f"Task tree {t.id} ({t.status})",
                mimeType="application/json",
            )
            for t in page.tasks
        ]
        return types.ServerResult(types.ListResourcesResult(resources=resources))

    async def _list_templates(self, req: types.ListResourceTemplatesRequest) -> types.ServerResult:
        templates = [
            types.ResourceTemplate(
                uriTemplate=f"{TASK_URI}{{task_id}}",
                name="task",
                description="One task: status, progress, result, error",
                mimeType="application/json",
            ),
            types.ResourceTemplate(
                uriTemplate=f"{TREE_URI}{{task_id}}",
                name="tree",
                description="Every task of the tree holding task_id",
                mimeType="application/json",
            ),
        ]
        return types.ServerResult(types.ListResourceTemplatesResult(resourceTemplates=templates))

    async def _resource_data(self, uri: str, service: TaskService) -> Any:
        try:
            if uri.startswith(TASK_URI):
                return (await service.get({"task_id": uri.removeprefix(TASK_URI)})).to_dict()
            if uri.startswith(TREE_URI):
                return tree_dict(await service.tree({"task_id": uri.removeprefix(TREE_URI)}))
        except TaskNotFoundError as exc:
            raise McpError(types.ErrorData(code=NOT_FOUND, message=str(exc))) from None
        except ValidationError as exc:
            raise McpError(types.ErrorData(code=types.INVALID_PARAMS, message=str(exc))) from None
        raise McpError(
            types.ErrorData(
                code=types.INVALID_PARAMS,
                message=f"unknown resource {uri!r}: use {TASK_URI}<task id> or {TREE_URI}<task id>",
            )
        )

    async def _read_resource(self, req: types.ReadResourceRequest) -> types.ServerResult:
        uri = str(req.params.uri)
        data = await self._resource_data(uri, self.scoped())
        contents = types.TextResourceContents(
            uri=req.params.uri, mimeType="application/json", text=json.dumps(data, default=str)
        )
        return types.ServerResult(types.ReadResourceResult(contents=[contents]))

    async def _subscribe(self, req: types.SubscribeRequest) -> types.ServerResult:
        uri = str(req.params.uri)
        caller = _caller_of(self.server)
        await self._resource_data(uri, self.service.for_caller(caller))  # exists and is theirs
        self._watch_events()
        session = self.server.request_context.session
        self._subscriptions.setdefault(session, {})[uri] = caller
        return types.ServerResult(types.EmptyResult())

    async def _unsubscribe(self, req: types.UnsubscribeRequest) -> types.ServerResult:
        session = self.server.request_context.session
        self._subscriptions.get(session, {}).pop(str(req.params.uri), None)
        return types.ServerResult(types.EmptyResult())

    # -- notifications -------------------------------------------------------------------

    def _watch_events(self) -> None:
        if not self._listening:
            self.manager.events.add_listener(self._on_event)
            self._listening = True

    async def _on_event(self, event: TaskEvent) -> None:
        """Tell every subscribed session that a task or tree resource changed."""
        changed = {f"{TREE_URI}{event.root_id}", f"{TASK_URI}{event.task_id}"}
        for session, uris in list(self._subscriptions.items()):
            for uri in changed & set(uris):
                try:
                    await session.send_resource_updated(AnyUrl(uri))
                except Exception:  # a closed session: forget it
                    self._subscriptions.pop(session, None)
                    break


def _progress_message(event: TaskEvent) -> str:
    if event.kind == "task_progress":
        return f"{event.name}: {event.progress:.0%}" + (
            f" {event.message}" if event.message else ""
        )
    if event.kind == "tree_finished":
        return f"tree {event.root_id}: {event.status}"
    if event.kind == "tree_started":
        return f"tree {event.root_id}: started"
    return f"{event.name}: {event.status}"


_INSTRUCTIONS = (
    "aipartnerupflow runs task trees. Create and run one with tasks_run_and_wait (tasks: a "
    "flat array of task objects: id, name, parent_id, dependencies, schemas.method (an "
    "executor id from executors_list), inputs). tasks_run starts a tree and returns at once; "
    "watch it through apflow://trees/<root id>. tasks_cancel stops a run."
)
