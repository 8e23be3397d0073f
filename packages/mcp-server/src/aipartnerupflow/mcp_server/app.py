"""Running the MCP server: the streamable HTTP application and the stdio loop."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from aipartnerupflow.mcp_server.server import FlowMcpServer
from aipartnerupflow.mcp_server.settings import McpServerSettings
from aipartnerupflow.mcp_server.strict_json import StrictJsonLines, StrictJsonMiddleware

if TYPE_CHECKING:
    from aipartnerupflow.core.manager import TaskManager

__all__ = ["create_http_app", "jwt_settings", "open_manager", "run_stdio"]


def jwt_settings(**options: Any) -> Any:
    """The A2A server's settings, read for their ``AIPARTNERUPFLOW_JWT_*`` fields only."""
    from aipartnerupflow.api.config import ServerSettings

    jwt_options = {k: v for k, v in options.items() if k.startswith("jwt_")}
    return ServerSettings.from_env(**jwt_options)


@contextlib.asynccontextmanager
async def open_manager(
    database_url: str | None, settings: McpServerSettings
) -> AsyncIterator[TaskManager]:
    """A task manager on ``database_url`` (default: the core's database), closed at the end."""
    from aipartnerupflow.core.manager import TaskManager
    from aipartnerupflow.core.storage import create_session

    manager = TaskManager(create_session(database_url), max_concurrency=settings.max_concurrency)
    try:
        yield manager
    finally:
        await manager.close()


class _Endpoint:
    """The ASGI endpoint of the streamable HTTP transport (set once the app has started)."""

    def __init__(self) -> None:
        self.handle: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.handle is None:
            raise RuntimeError("the MCP server has not started (run the app's lifespan)")
        await self.handle(scope, receive, send)


def create_http_app(
    settings: McpServerSettings | None = None,
    *,
    database_url: str | None = None,
    task_manager: TaskManager | None = None,
    **options: Any,
) -> ASGIApp:
    """The streamable HTTP application (run its lifespan: it starts the session manager).

    JWT auth comes from ``AIPARTNERUPFLOW_JWT_*`` (or ``jwt_*`` options), exactly as for the
    A2A server; with it every request needs a bearer token and sees only its user's tasks.
    """
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

    from aipartnerupflow.api.security import AuthMiddleware, JwtVerifier

    settings = settings or McpServerSettings.from_env()
    auth = jwt_settings(**options)
    endpoint = _Endpoint()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            manager = task_manager
            if manager is None:
                manager = await stack.enter_async_context(open_manager(database_url, settings))
            flow = FlowMcpServer(manager, max_tasks=settings.max_tasks_per_request)
            stack.push_async_callback(flow.aclose)
            sessions = StreamableHTTPSessionManager(app=flow.server)
            await stack.enter_async_context(sessions.run())
            endpoint.handle = sessions.handle_request
            app.state.mcp = flow
            try:
                yield
            finally:
                endpoint.handle = None

    app = Starlette(routes=[Route(settings.path, endpoint=endpoint)], lifespan=lifespan)
    guarded: ASGIApp = StrictJsonMiddleware(app, max_bytes=settings.max_body_bytes)
    if auth.auth_enabled:
        return AuthMiddleware(guarded, JwtVerifier(auth))
    return guarded


async def run_stdio(database_url: str | None = None) -> None:
    """Serve one MCP session on stdin/stdout until the client closes it."""
    import sys
    from io import TextIOWrapper

    import anyio
    from mcp.server.stdio import stdio_server

    stdin = anyio.wrap_file(TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace"))
    settings = McpServerSettings.from_env()
    async with open_manager(database_url, settings) as manager:
        flow = FlowMcpServer(manager, max_tasks=settings.max_tasks_per_request)
        try:
            async with stdio_server(StrictJsonLines(stdin)) as (read, write):  # type: ignore[arg-type]
                await flow.server.run(read, write, flow.initialization_options())
        finally:
            await flow.aclose()
