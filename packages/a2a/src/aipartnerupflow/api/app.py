"""``create_app()``: the Starlette application serving A2A (JSON-RPC and HTTP+JSON)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import httpx
from a2a.server.agent_execution import AgentExecutor
from a2a.server.routes import (
    create_agent_card_routes,
    create_jsonrpc_routes,
    create_rest_routes,
)
from a2a.types import AgentCard
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from aipartnerupflow.api.card import build_agent_card, card_cache_control, executor_skills
from aipartnerupflow.api.config import ServerSettings
from aipartnerupflow.api.flow import FlowAgentExecutor, FlowService
from aipartnerupflow.api.handler import FlowRequestHandler
from aipartnerupflow.api.push import QueuedPushSender, push_policy
from aipartnerupflow.api.security import (
    AuthMiddleware,
    BodySizeLimitMiddleware,
    JwtVerifier,
    LoopbackOnlyMiddleware,
)
from aipartnerupflow.api.store import SqlPushConfigStore, SqlTaskStore
from aipartnerupflow.core.registry import ExecutorRegistry, get_executor_registry
from aipartnerupflow.core.storage.schema import HEAD_REVISION

if TYPE_CHECKING:
    from aipartnerupflow.core.manager import TaskManager
    from aipartnerupflow.core.storage.base import TaskStorage

from aipartnerupflow.api.sdk_logs import install_sdk_log_redaction

__all__ = ["create_app"]

log = logging.getLogger("aipartnerupflow.api")


def create_app(
    settings: ServerSettings | None = None,
    *,
    storage: TaskStorage | None = None,
    task_manager: TaskManager | None = None,
    registry: ExecutorRegistry | None = None,
    push_client: httpx.AsyncClient | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    **options: Any,
) -> Starlette:
    """Build the A2A server application.

    ``settings`` default to :meth:`ServerSettings.from_env` with ``options`` as overrides
    (``host``, ``port``, ``database_url``, ``jwt_secret_key``, ...). Pass ``storage`` or
    ``task_manager`` to share an engine; otherwise one is created for ``database_url``.
    Runs with ``uvicorn 'aipartnerupflow.api.main:app'`` or any ASGI server.
    """
    if settings is None:
        settings = ServerSettings.from_env(**options)
    elif options:
        raise TypeError("pass either settings or keyword options, not both")
    settings.check_bind()  # a configured public host without auth; requests are checked too
    install_sdk_log_redaction()
    registry = registry or get_executor_registry()
    owns_storage = storage is None and task_manager is None
    owns_manager = task_manager is None
    if task_manager is None:
        from aipartnerupflow.core.manager import TaskManager
        from aipartnerupflow.core.storage import create_session

        if storage is None:
            storage = create_session(settings.database_url)
        task_manager = TaskManager(storage, max_concurrency=settings.max_concurrency)
    if storage is None:
        storage = task_manager.storage

    service = FlowService(task_manager, max_tasks=settings.max_tasks_per_request)
    task_store = SqlTaskStore(storage)
    cluster = _cluster_parts(settings, storage, task_store, service)
    push_store = SqlPushConfigStore(storage)
    policy = push_policy(
        allow_private=settings.push_allow_private, allowed_hosts=settings.push_allowed_hosts
    )
    push_sender = QueuedPushSender(
        push_store, policy, client=push_client, max_attempts=settings.push_max_attempts
    )
    validate_push_url = push_sender.validate_url

    executor: AgentExecutor
    if settings.agent == "tck":
        from aipartnerupflow.api.conformance import ConformanceAgentExecutor, conformance_card

        card = conformance_card(settings)
        executor = ConformanceAgentExecutor(settings.tck_streaming_timeout)
        handler: FlowRequestHandler | Any = _plain_handler(
            executor, task_store, card, push_store, push_sender, validate_push_url
        )
    else:
        card = build_agent_card(settings, registry)
        executor = FlowAgentExecutor(service)
        handler = FlowRequestHandler(
            agent_executor=executor,
            store=task_store,
            agent_card=card,
            push_config_store=push_store,
            push_sender=push_sender,
            push_url_validator=validate_push_url,
            service=service,
            versioned=cluster[0] if cluster else None,
            event_stream=cluster[1] if cluster else None,
        )

    known_ids = [tuple(registry.ids())]

    async def refresh_card(current: AgentCard) -> AgentCard:
        """Rebuild the skills when executors were registered after start-up."""
        ids = tuple(registry.ids())
        if settings.agent == "flow" and ids != known_ids[0]:
            known_ids[0] = ids
            del current.skills[1:]
            current.skills.extend(executor_skills(registry))
        return current

    started = time.time()

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "status": "healthy",
                "version": card.version,
                "uptime_seconds": round(time.time() - started, 3),
                "running_trees": len(service.runs),
                "schema_revision": HEAD_REVISION,
            }
        )

    routes: list[BaseRoute] = [
        *create_agent_card_routes(
            card, card_modifier=refresh_card, cache_control=card_cache_control(settings)
        ),
        *create_agent_card_routes(
            card,
            card_modifier=refresh_card,
            card_url="/.well-known/agent.json",
            cache_control=card_cache_control(settings),
        ),
        Route("/system/health", health, methods=["GET"]),
        *extra_routes,
    ]
    if settings.agent == "flow":
        from aipartnerupflow.api.tasks_api import create_tasks_routes

        routes.extend(create_tasks_routes(service, task_store))
    routes.extend(create_jsonrpc_routes(handler, rpc_url="/", enable_v0_3_compat=True))
    routes.extend(create_rest_routes(handler))

    middleware = []
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type", "A2A-Version", "A2A-Extensions"],
            )
        )
    middleware.append(Middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes))
    verifier = JwtVerifier(settings) if settings.auth_enabled else None  # one for both
    if settings.ui:  # the dashboard at /ui, outside auth: its data comes through the API below
        from aipartnerupflow.api.ui import UiGate

        middleware.append(Middleware(UiGate, verifier=verifier))
    if verifier is not None:
        middleware.append(Middleware(AuthMiddleware, verifier=verifier))
    elif not settings.insecure:
        middleware.insert(0, Middleware(LoopbackOnlyMiddleware))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await storage.initialize()
        worker = _start_worker(settings, storage, service) if cluster else None
        if settings.resume_interrupted and settings.agent == "flow":
            service.keep(
                asyncio.create_task(task_manager.resume_interrupted(), name="resume-interrupted")
            )
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            for task in list(service.background):
                task.cancel()
            await handler.aclose()
            await push_sender.aclose()
            await task_store.flush()
            if owns_manager:
                await task_manager.close(close_storage=owns_storage)
            elif owns_storage:
                await storage.close()

    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.settings = settings
    app.state.card = card
    app.state.service = service
    app.state.handler = handler
    app.state.task_store = task_store
    app.state.push_sender = push_sender
    app.state.task_manager = task_manager
    app.state.storage = storage
    return app


def _cluster_parts(
    settings: ServerSettings, storage: TaskStorage, task_store: SqlTaskStore, service: FlowService
) -> tuple[Any, Any] | None:
    """Cluster mode's versioned store and event stream (None when this is the only server)."""
    if not settings.cluster or settings.agent != "flow":
        return None
    from aipartnerupflow.api.cluster import (
        ClusterEventStream,
        ClusterTaskStore,
        check_cluster_storage,
    )

    check_cluster_storage(storage.url)
    service.queued = True
    versioned = ClusterTaskStore(task_store)
    return versioned, ClusterEventStream(versioned)


def _start_worker(settings: ServerSettings, storage: TaskStorage, service: FlowService) -> Any:
    """This replica's queue worker (the core's), run until the server stops."""
    from aipartnerupflow.core.settings import CoreSettings
    from aipartnerupflow.core.worker import Worker

    worker = Worker(
        storage.url,
        concurrency=settings.max_concurrency,
        lease_seconds=CoreSettings.get().lease_seconds,
    )
    service.keep(asyncio.create_task(worker.run(), name="a2a-cluster-worker"))
    return worker


def _plain_handler(
    executor: AgentExecutor,
    task_store: SqlTaskStore,
    card: AgentCard,
    push_store: SqlPushConfigStore,
    push_sender: QueuedPushSender,
    validate_push_url: Callable[[str], Awaitable[bool]],
) -> Any:
    from aipartnerupflow.api.handler import TaskContextHandler

    return TaskContextHandler(
        agent_executor=executor,
        task_store=task_store,
        agent_card=card,
        push_config_store=push_store,
        push_sender=push_sender,
        push_url_validator=validate_push_url,
        validate_input_modes=True,
    )
