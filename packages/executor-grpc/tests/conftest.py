"""A real grpcio server on loopback, with reflection and health, for the executor's tests.

The demo service is built from a FileDescriptorProto at test time (no generated code):
``demo.Echo`` with Say (unary), Repeat (server-streaming), Collect (client-streaming),
Chat (bidi), Fail (answers with the status the request names) and Hang (never answers).
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
import trustme
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from aipartnerupflow.core.settings import reload_settings

F = descriptor_pb2.FieldDescriptorProto


def demo_file() -> descriptor_pb2.FileDescriptorProto:
    """demo.proto: EchoRequest{text, times, code}, EchoReply{text, index}, service Echo."""
    proto = descriptor_pb2.FileDescriptorProto(name="demo.proto", package="demo", syntax="proto3")
    request = proto.message_type.add(name="EchoRequest")
    request.field.add(name="text", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    request.field.add(name="times", number=2, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    request.field.add(name="code", number=3, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    reply = proto.message_type.add(name="EchoReply")
    reply.field.add(name="text", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    reply.field.add(name="index", number=2, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    reply.field.add(name="user_agent", number=3, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    service = proto.service.add(name="Echo")
    for name, client, server in [
        ("Say", False, False),
        ("Repeat", False, True),
        ("Collect", True, False),
        ("Chat", True, True),
        ("Fail", False, False),
        ("Hang", False, False),
        ("Secret", False, False),
    ]:
        service.method.add(
            name=name,
            input_type=".demo.EchoRequest",
            output_type=".demo.EchoReply",
            client_streaming=client,
            server_streaming=server,
        )
    return proto


def descriptor_set_b64() -> str:
    """base64 of a FileDescriptorSet holding demo.proto."""
    return base64.b64encode(
        descriptor_pb2.FileDescriptorSet(file=[demo_file()]).SerializeToString()
    ).decode()


@dataclass
class DemoServer:
    """A running server: its port, what it saw, and its health servicer."""

    port: int
    target: str
    seen_metadata: list[dict[str, str]] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)
    hang_started: threading.Event = field(default_factory=threading.Event)


TOKEN = "grpc-s3cret-token-value"


async def _start(
    reflect: bool = True, credentials: grpc.ServerCredentials | None = None
) -> tuple[grpc.aio.Server, DemoServer]:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(demo_file())
    request_cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("demo.EchoRequest"))
    reply_cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("demo.EchoReply"))
    state = DemoServer(port=0, target="")

    def note(context: grpc.aio.ServicerContext) -> dict[str, str]:
        seen = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        state.seen_metadata.append(seen)
        return seen

    async def say(req: Any, context: grpc.aio.ServicerContext) -> Any:
        seen = note(context)
        await context.send_initial_metadata((("x-served-by", "demo"),))
        context.set_trailing_metadata((("x-trailer", "done"),))
        return reply_cls(
            text=req.text.upper(), index=req.times, user_agent=seen.get("x-client", "")
        )

    async def repeat(req: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        note(context)
        for i in range(req.times):
            yield reply_cls(text=req.text, index=i)

    async def collect(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
        texts = [r.text async for r in requests]
        return reply_cls(text="+".join(texts), index=len(texts))

    async def chat(
        requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        async for r in requests:
            yield reply_cls(text=f"re:{r.text}", index=r.times)

    async def fail(req: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(
            getattr(grpc.StatusCode, req.code or "INTERNAL"), f"told to fail: {req.text}"
        )

    async def hang(req: Any, context: grpc.aio.ServicerContext) -> Any:
        state.hang_started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            state.cancelled.set()
            raise
        return reply_cls()

    async def secret(req: Any, context: grpc.aio.ServicerContext) -> Any:
        seen = note(context)
        if seen.get("authorization") != f"Bearer {TOKEN}":
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad token")
        return reply_cls(text="welcome")

    def unary(fn: Any) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(
            fn,
            request_deserializer=request_cls.FromString,
            response_serializer=reply_cls.SerializeToString,
        )

    handlers = {
        "Say": unary(say),
        "Fail": unary(fail),
        "Hang": unary(hang),
        "Secret": unary(secret),
        "Repeat": grpc.unary_stream_rpc_method_handler(
            repeat,
            request_deserializer=request_cls.FromString,
            response_serializer=reply_cls.SerializeToString,
        ),
        "Collect": grpc.stream_unary_rpc_method_handler(
            collect,
            request_deserializer=request_cls.FromString,
            response_serializer=reply_cls.SerializeToString,
        ),
        "Chat": grpc.stream_stream_rpc_method_handler(
            chat,
            request_deserializer=request_cls.FromString,
            response_serializer=reply_cls.SerializeToString,
        ),
    }
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("demo.Echo", handlers),))
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    await servicer.set("demo.Echo", health_pb2.HealthCheckResponse.SERVING)
    if reflect:
        names = ("demo.Echo", health.SERVICE_NAME, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, server, pool=_reflection_pool(pool))
    if credentials is None:
        state.port = server.add_insecure_port("127.0.0.1:0")
    else:
        state.port = server.add_secure_port("127.0.0.1:0", credentials)
    state.target = f"127.0.0.1:{state.port}"
    await server.start()
    return server, state


def _reflection_pool(pool: descriptor_pool.DescriptorPool) -> descriptor_pool.DescriptorPool:
    # The health service's types live in the default pool; the demo types in ours.
    merged = descriptor_pool.DescriptorPool()
    from grpc_reflection.v1alpha import reflection_pb2

    for module in (health_pb2, reflection_pb2):
        file_proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(file_proto)
        merged.Add(file_proto)
    merged.Add(demo_file())
    return merged


@pytest.fixture(autouse=True)
def _allow_loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The tests' server is on loopback, which the default policy denies."""
    monkeypatch.setenv("AIPARTNERUPFLOW_GRPC_ALLOW_PRIVATE", "true")
    reload_settings()
    yield
    reload_settings()


class _ServerThread:
    """A grpc.aio server on its own event loop in a thread, as a real server would be: the
    tests' loop then holds only the client side (the contract checks it for leaks)."""

    def __init__(self, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(_start(**options), self._loop)
        self.server, self.state = future.result(30)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(0), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()


@pytest.fixture
def grpc_server() -> Iterator[DemoServer]:
    running = _ServerThread()
    try:
        yield running.state
    finally:
        running.stop()


@pytest.fixture
def plain_server() -> Iterator[DemoServer]:
    """The demo service without reflection."""
    running = _ServerThread(reflect=False)
    try:
        yield running.state
    finally:
        running.stop()


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[DemoServer]:
    cert = ca.issue_cert("grpc.test.local", "127.0.0.1")
    credentials = grpc.ssl_server_credentials(
        [(cert.private_key_pem.bytes(), cert.cert_chain_pems[0].bytes())]
    )
    running = _ServerThread(credentials=credentials)
    try:
        yield running.state
    finally:
        running.stop()
