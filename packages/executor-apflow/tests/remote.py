"""The remote side of the tests: a real second aipartnerupflow A2A server (its own DuckDB file,
JWT auth) and a minimal generic a2a-sdk agent, each under uvicorn on loopback in a thread."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, ClassVar

from a2a.helpers import new_task_from_user_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes, create_rest_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import AgentCapabilities, AgentCard, AgentInterface, AgentSkill, Part
from google.protobuf.json_format import MessageToDict
from starlette.applications import Starlette

from aipartnerupflow import BaseTask, executor_register
from aipartnerupflow.api import ServerSettings, create_app
from aipartnerupflow.testing.server import LoopbackServer

JWT_SECRET = "apflow-remote-jwt-secret-with-enough-bytes"


class Signals:
    """Thread-safe signals from the remote executors (they run in the server's thread)."""

    started: ClassVar[dict[str, threading.Event]] = {}
    cancelled: ClassVar[dict[str, threading.Event]] = {}
    runs: ClassVar[dict[str, int]] = {}
    lock = threading.Lock()

    @classmethod
    def event(cls, table: dict[str, threading.Event], name: str) -> threading.Event:
        with cls.lock:
            return table.setdefault(name, threading.Event())

    @classmethod
    def count(cls, name: str) -> None:
        with cls.lock:
            cls.runs[name] = cls.runs.get(name, 0) + 1


class RemoteEcho(BaseTask):
    id = "apflow_test_echo"
    name = "Remote echo"
    description = "Returns its inputs (on the remote instance)."

    async def execute(self, inputs: dict[str, Any]) -> Any:
        Signals.count(str(inputs.get("text")))
        self.report_progress(0.5, "echo half way")
        return {"echo": {k: v for k, v in inputs.items() if k == "text"}}


class RemoteFail(BaseTask):
    id = "apflow_test_fail"
    name = "Remote fail"
    description = "Always fails (on the remote instance)."

    async def execute(self, inputs: dict[str, Any]) -> Any:
        raise RuntimeError(str(inputs.get("message", "remote boom")))


class RemoteHang(BaseTask):
    id = "apflow_test_hang"
    name = "Remote hang"
    description = "Runs until cancelled, or until its release event is set."

    async def execute(self, inputs: dict[str, Any]) -> Any:
        name = str(inputs["gate"])
        Signals.count(name)
        Signals.event(Signals.started, name).set()
        release = Signals.event(Signals.cancelled, f"release:{name}")
        try:
            while not release.is_set():
                await asyncio.sleep(0.02)
        except asyncio.CancelledError:
            Signals.event(Signals.cancelled, name).set()
            raise
        return {"released": name}


class RemoteBig(BaseTask):
    id = "apflow_test_big"
    name = "Remote big"
    description = "Returns a large string."

    async def execute(self, inputs: dict[str, Any]) -> Any:
        return {"blob": "x" * int(inputs.get("size", 100_000))}


REMOTE_EXECUTORS = (RemoteEcho, RemoteFail, RemoteHang, RemoteBig)


def register_remote_executors() -> None:
    for cls in REMOTE_EXECUTORS:
        executor_register(override=True)(cls)


class RemoteInstance:
    """Our A2A server on loopback; the app is built once the port is known (for its card)."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._app: Any = None

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await self._trampoline(scope, receive, send)

        self.server = LoopbackServer(app, lifespan="on")

    async def _trampoline(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            settings = ServerSettings.from_env(
                port=self.server.port,
                base_url=self.server.url,
                database_url=self.database_url,
                jwt_secret_key=JWT_SECRET,
            )
            self._app = create_app(settings)
        await self._app(scope, receive, send)

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> RemoteInstance:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()


class GenericAgent(AgentExecutor):
    """A minimal A2A agent (not ours): echoes the message as a text and a data artifact."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task = context.current_task
        if task is None:
            assert context.message is not None
            task = new_task_from_user_message(context.message)
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.start_work()
        text = context.get_user_input()
        data = [
            MessageToDict(p.data)
            for p in (context.message.parts if context.message else [])
            if p.WhichOneof("content") == "data"
        ]
        if text == "fail please":
            await updater.failed(updater.new_agent_message([Part(text="the agent gave up")]))
            return
        await updater.add_artifact([Part(text=f"ran: {text}")], name="answer")
        if data:
            from aipartnerupflow.api.convert import data_part

            await updater.add_artifact([data_part({"got": data[0]})], name="data")
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        await TaskUpdater(event_queue, context.task_id or "", context.context_id or "").cancel()


class GenericAgentServer:
    """The generic agent under uvicorn on loopback (card built once the port is known)."""

    def __init__(self) -> None:
        self._app: Any = None

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await self._trampoline(scope, receive, send)

        self.server = LoopbackServer(app, lifespan="off")

    async def _trampoline(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            card = AgentCard(
                name="generic",
                description="a generic a2a-sdk agent",
                version="1.0.0",
                supported_interfaces=[
                    AgentInterface(
                        protocol_binding="JSONRPC",
                        protocol_version="1.0",
                        url=self.server.url + "/",
                    )
                ],
                default_input_modes=["text/plain"],
                default_output_modes=["text/plain"],
                capabilities=AgentCapabilities(streaming=True),
                skills=[AgentSkill(id="echo", name="Echo", description="echo", tags=["echo"])],
            )
            handler = DefaultRequestHandler(
                agent_executor=GenericAgent(), task_store=InMemoryTaskStore(), agent_card=card
            )
            self._app = Starlette(
                routes=[
                    *create_agent_card_routes(card),
                    *create_jsonrpc_routes(handler, rpc_url="/"),
                    *create_rest_routes(handler),
                ]
            )
        await self._app(scope, receive, send)

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> GenericAgentServer:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()
