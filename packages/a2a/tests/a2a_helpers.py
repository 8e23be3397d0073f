"""Test helpers: executors, an app on an in-memory DuckDB, in-process and loopback servers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
import uvicorn
from a2a.client import Client, ClientConfig, create_client
from a2a.types import (
    AgentCard,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    StreamResponse,
)
from google.protobuf.json_format import ParseDict
from google.protobuf.struct_pb2 import Value
from starlette.applications import Starlette

from aipartnerupflow import BaseTask, executor_register
from aipartnerupflow.api import ServerSettings, create_app, create_token
from aipartnerupflow.core.registry import get_executor_registry

SECRET = "test-secret-key-with-enough-bytes-for-hs256"


class Gates:
    """asyncio events the gate executor waits on, opened by the tests."""

    events: ClassVar[dict[str, asyncio.Event]] = {}
    started: ClassVar[dict[str, asyncio.Event]] = {}

    @classmethod
    def get(cls, name: str) -> asyncio.Event:
        return cls.events.setdefault(name, asyncio.Event())

    @classmethod
    def started_event(cls, name: str) -> asyncio.Event:
        return cls.started.setdefault(name, asyncio.Event())


class Echo(BaseTask):
    id = "a2a_test_echo"
    name = "Echo"
    description = "Returns its inputs."
    inputs_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"text": {"type": "string"}},
    }

    async def execute(self, inputs: dict[str, Any]) -> Any:
        self.report_progress(0.5, "half way")
        return {"echo": inputs}


class Fail(BaseTask):
    id = "a2a_test_fail"
    name = "Fail"
    description = "Always fails."

    async def execute(self, inputs: dict[str, Any]) -> Any:
        raise RuntimeError(inputs.get("message", "boom"))


class Gate(BaseTask):
    id = "a2a_test_gate"
    name = "Gate"
    description = "Waits until the test opens its gate."

    async def execute(self, inputs: dict[str, Any]) -> Any:
        gate = str(inputs["gate"])
        Gates.started_event(gate).set()
        await Gates.get(gate).wait()
        return {"gate": gate}


TEST_EXECUTORS = (Echo, Fail, Gate)


def register_executors() -> None:
    Gates.events, Gates.started = {}, {}
    for cls in TEST_EXECUTORS:
        executor_register(override=True)(cls)


def unregister_executors() -> None:
    registry = get_executor_registry()
    for cls in TEST_EXECUTORS:
        registry.unregister(cls.id)


def token(sub: str = "alice", **kw: Any) -> str:
    return create_token(sub, SECRET, **kw)


def tasks_message(
    tasks: list[dict[str, Any]] | Any, message_id: str = "m1", context_id: str = ""
) -> Message:
    data = tasks if not isinstance(tasks, list) else {"tasks": tasks}
    return Message(
        role=Role.ROLE_USER,
        message_id=message_id,
        context_id=context_id,
        parts=[Part(data=ParseDict(data, Value()))],
    )


def send_request(
    tasks: list[dict[str, Any]] | Any, *, return_immediately: bool = False, **kw: Any
) -> SendMessageRequest:
    return SendMessageRequest(
        message=tasks_message(tasks, **kw),
        configuration=SendMessageConfiguration(return_immediately=return_immediately),
    )


def chain(prefix: str = "") -> list[dict[str, Any]]:
    """A root with two children, the second depending on the first."""
    return [
        {
            "id": f"{prefix}root",
            "name": "root",
            "schemas": {"method": "a2a_test_echo"},
            "inputs": {"text": "root"},
        },
        {
            "id": f"{prefix}a",
            "name": "a",
            "parent_id": f"{prefix}root",
            "schemas": {"method": "a2a_test_echo"},
            "inputs": {"text": "a"},
        },
        {
            "id": f"{prefix}b",
            "name": "b",
            "parent_id": f"{prefix}root",
            "dependencies": [f"{prefix}a"],
            "schemas": {"method": "a2a_test_echo"},
            "inputs": {"text": "b"},
        },
    ]


async def collect(stream: Any) -> list[StreamResponse]:
    return [event async for event in stream]


@dataclass
class Server:
    """An app plus ways to reach it."""

    app: Starlette
    base_url: str
    http: httpx.AsyncClient
    in_process: bool
    clients: list[Client] = field(default_factory=list)
    https: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def card(self) -> AgentCard:
        card: AgentCard = self.app.state.card
        return card

    async def client(
        self, bearer: str | None = None, *, streaming: bool = True, binding: str = "JSONRPC"
    ) -> Client:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        transport = httpx.ASGITransport(app=self.app) if self.in_process else None
        http = httpx.AsyncClient(
            transport=transport, base_url=self.base_url, headers=headers, timeout=30
        )
        self.https.append(http)
        client = await create_client(
            self.card,
            client_config=ClientConfig(
                httpx_client=http, streaming=streaming, supported_protocol_bindings=[binding]
            ),
        )
        self.clients.append(client)
        return client

    async def aclose(self) -> None:
        for client in self.clients:
            await client.close()
        for http in self.https:
            await http.aclose()

    async def rpc(
        self,
        method: str,
        params: dict[str, Any],
        *,
        bearer: str | None = None,
        version: str | None = "1.0",
        path: str = "/",
    ) -> httpx.Response:
        headers = {"A2A-Version": version} if version else {}
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        return await self.http.post(
            path,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
            headers=headers,
        )


@contextlib.asynccontextmanager
async def in_process(**settings: Any) -> AsyncIterator[Server]:
    """The app over httpx's ASGI transport (no socket), with its lifespan running."""
    options = {"database_url": "duckdb:///:memory:", **settings}
    app = create_app(ServerSettings.from_env(**options))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://a2a.test") as http:
            server = Server(app, "http://a2a.test", http, True)
            try:
                yield server
            finally:
                await server.aclose()


@contextlib.asynccontextmanager
async def on_loopback(app: Starlette, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on ``host`` (a free port) in this event loop; yields the
    loopback URL of that port (``host="0.0.0.0"`` listens on every interface)."""
    config = uvicorn.Config(app, host=host, port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def over_http(**settings: Any) -> AsyncIterator[Server]:
    """The app under uvicorn on loopback, reached over real HTTP."""
    options = {"database_url": "duckdb:///:memory:", **settings}
    # The card must name the real port: build the app after binding, via a small trampoline.
    holder: dict[str, Starlette] = {}

    async def trampoline(scope: Any, receive: Any, send: Any) -> None:
        await holder["app"](scope, receive, send)

    config = uvicorn.Config(
        trampoline, host="127.0.0.1", port=0, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    app = create_app(ServerSettings.from_env(port=port, base_url=base, **options))
    holder["app"] = app
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(base_url=base, timeout=30) as http,
        ):
            srv = Server(app, base, http, False)
            try:
                yield srv
            finally:
                await srv.aclose()
    finally:
        server.should_exit = True
        await task


async def wait_for(predicate: Callable[[], Awaitable[bool]], attempts: int = 2000) -> None:
    """Poll an async predicate until it holds (bounded by attempts, not by time)."""
    for _ in range(attempts):
        if await predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition never became true")
