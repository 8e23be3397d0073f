"""A real websockets server on loopback (in the test's event loop) for websocket_executor tests.

Paths:

* ``/echo``: sends every message back;
* ``/script``: each message is a JSON script ``{"send": [...], "send_big": n, "send_binary":
  "<base64>", "close": [code, reason], "abort": true}`` the server carries out in that order
  (strings in ``send`` go as text, other values as JSON);
* ``/auth``: the handshake needs ``Authorization: Bearer <TOKEN>`` (401 otherwise); then the
  server sends back the header it got (a careless server) and echoes;
* ``/slow``: accepts and never sends; records how the client closed;
* ``/status/<code>``: answers the handshake with that HTTP status (``Retry-After: 7``);
* ``/redirect``: answers 302 to ``/echo``;
* ``/chat``: selects the subprotocol ``chat.v2`` when offered.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import trustme
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from aipartnerupflow.core.settings import reload_settings

pytest_plugins = ["aipartnerupflow.testing.fixtures"]

TOKEN = "ws-token-SECRET-4f3e2d1c"

#: The test server's own log stays out of caplog: it runs outside any task (so nothing scrubs
#: it) and logs the headers it receives; the secrets tests are about the executor's side.
#: (A logger outside the logging tree: no parent, so no handler of the root sees it.)
_SERVER_LOG = logging.Logger("tests.websocket_server", logging.WARNING)
_ENV = (
    "AIPARTNERUPFLOW_WEBSOCKET_ALLOW_PRIVATE",
    "AIPARTNERUPFLOW_WEBSOCKET_ALLOWED_HOSTS",
    "AIPARTNERUPFLOW_WEBSOCKET_MAX_MESSAGE_BYTES",
    "AIPARTNERUPFLOW_WEBSOCKET_MAX_MESSAGES",
    "AIPARTNERUPFLOW_WEBSOCKET_MAX_TOTAL_BYTES",
    "AIPARTNERUPFLOW_WEBSOCKET_CA_BUNDLE",
    "AIPARTNERUPFLOW_WEBSOCKET_SECRET_ENV",
    "AIPARTNERUPFLOW_ALLOW_PRIVATE",
    "AIPARTNERUPFLOW_ALLOWED_HOSTS",
    "AIPARTNERUPFLOW_SECRET_ENV",
)


@dataclass
class Seen:
    """One connection as the server saw it."""

    path: str
    headers: Headers
    subprotocol: str | None
    received: list[Any] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class WsServer:
    """The running server and what it saw."""

    scheme: str
    server: Server | None = None
    connections: list[Seen] = field(default_factory=list)
    handshakes: int = 0
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    async def wait_connected(self) -> None:
        await self.connected.wait()


def _payload(item: Any) -> str:
    return item if isinstance(item, str) else json.dumps(item)


async def _run_script(ws: ServerConnection, script: dict[str, Any]) -> bool:
    """Carry out one script; False when the connection is finished."""
    for item in script.get("send", []):
        await ws.send(_payload(item))
    if "send_big" in script:
        await ws.send("x" * int(script["send_big"]))
    if "send_binary" in script:
        await ws.send(base64.b64decode(script["send_binary"]))
    if script.get("abort"):
        ws.transport.abort()
        return False
    if "close" in script:
        code, reason = script["close"]
        await ws.close(code, reason)
        return False
    return True


def _handler(state: WsServer) -> Any:
    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        path = ws.request.path.split("?", 1)[0]
        seen = Seen(path, ws.request.headers, ws.subprotocol)
        state.connections.append(seen)
        state.connected.set()
        try:
            if path == "/auth":
                await ws.send(json.dumps({"you_sent": ws.request.headers.get("Authorization")}))
            if path == "/slow":
                await ws.wait_closed()
                return
            async for raw in ws:
                text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
                seen.received.append(text)
                if path == "/script":
                    if not await _run_script(ws, json.loads(text)):
                        break
                else:
                    await ws.send(raw)
        finally:
            await ws.wait_closed()
            seen.close_code, seen.close_reason = ws.close_code, ws.close_reason
            seen.closed.set()

    return handler


def _process_request(state: WsServer) -> Any:
    def process(connection: ServerConnection, request: Request) -> Response | None:
        state.handshakes += 1
        path = request.path.split("?", 1)[0]
        if path.startswith("/status/"):
            response = connection.respond(int(path.rsplit("/", 1)[1]), "nope, not now\n")
            response.headers["Retry-After"] = "7"
            return response
        if path == "/redirect":
            response = connection.respond(302, "moved\n")
            response.headers["Location"] = "/echo"
            return response
        if path == "/auth" and request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return connection.respond(401, "bad token\n")
        return None

    return process


def _select(connection: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    return Subprotocol("chat.v2") if "chat.v2" in offered else None


async def _start(scheme: str, ssl_context: ssl.SSLContext | None) -> WsServer:
    state = WsServer(scheme)
    state.server = await serve(
        _handler(state),
        "127.0.0.1",
        0,
        process_request=_process_request(state),
        select_subprotocol=_select,
        ssl=ssl_context,
        logger=_SERVER_LOG,
    )
    return state


async def _stop(state: WsServer) -> None:
    assert state.server is not None
    state.server.close()
    await state.server.wait_closed()


@pytest_asyncio.fixture
async def ws_server() -> AsyncIterator[WsServer]:
    """A plain ws:// server on 127.0.0.1 (a free port)."""
    state = await _start("ws", None)
    try:
        yield state
    finally:
        await _stop(state)


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest_asyncio.fixture
async def wss_server(tls_ca: trustme.CA) -> AsyncIterator[WsServer]:
    """A wss:// server on 127.0.0.1 with a certificate from ``tls_ca``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    state = await _start("wss", context)
    try:
        yield state
    finally:
        await _stop(state)


@pytest.fixture
def ca_bundle(tls_ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def set_env(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``set_env(NAME=value, ...)``: set variables and re-read the settings."""

    def apply(**values: str | None) -> None:
        for name, value in values.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        reload_settings()

    return apply


@pytest.fixture(autouse=True)
def _loopback_allowed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests talk to 127.0.0.1, which the default policy denies: allow it explicitly (the
    policy tests take it back)."""
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIPARTNERUPFLOW_WEBSOCKET_ALLOW_PRIVATE", "true")
    reload_settings()
    yield
    reload_settings()
