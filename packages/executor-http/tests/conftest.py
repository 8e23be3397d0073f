"""A real HTTP(S) server on loopback (uvicorn + Starlette in a thread) for rest_executor tests."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from aipartnerupflow.core.settings import reload_settings
from aipartnerupflow.extensions.http.policy import (
    ENV_ALLOW_PRIVATE,
    ENV_ALLOWED_HOSTS,
    ENV_CA_BUNDLE,
    ENV_MAX_RESPONSE_BYTES,
    ENV_SECRET_ENV,
    set_default_policy,
)
from aipartnerupflow.testing.server import LoopbackServer

pytest_plugins = ["aipartnerupflow.testing.fixtures"]

ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


@dataclass
class ServerState:
    """What the test server saw; shared between its thread and the test."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    flaky_left: int = 0
    flaky_retry_after: str | None = None
    received: threading.Event = field(default_factory=threading.Event)
    disconnected: threading.Event = field(default_factory=threading.Event)

    def reset(self) -> None:
        self.requests.clear()
        self.flaky_left = 0
        self.flaky_retry_after = None
        self.received.clear()
        self.disconnected.clear()

    async def wait_received(self) -> None:
        """Wait (without blocking the loop) until the hanging endpoint has a request."""
        await asyncio.to_thread(self.received.wait, 60)

    async def wait_disconnected(self) -> bool:
        """Wait until the hanging request's client went away."""
        return await asyncio.to_thread(self.disconnected.wait, 60)


@dataclass
class Served:
    server: LoopbackServer
    state: ServerState

    @property
    def url(self) -> str:
        return self.server.url


def build_app(state: ServerState) -> Starlette:
    """The test application."""

    async def record(request: Request) -> dict[str, Any]:
        body = await request.body()
        entry = {
            "method": request.method,
            "path": request.url.path,
            "query": list(request.query_params.multi_items()),
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "body": body.decode("utf-8", "replace"),
        }
        state.requests.append(entry)
        return entry

    async def echo(request: Request) -> Response:
        entry = await record(request)
        if request.method == "HEAD":
            return Response(status_code=200, headers={"x-method": "HEAD"})
        return JSONResponse(entry)

    async def status(request: Request) -> Response:
        await record(request)
        code = int(request.path_params["code"])
        headers = {}
        if "retry_after" in request.query_params:
            headers["retry-after"] = request.query_params["retry_after"]
        return PlainTextResponse(f"status {code} body", status_code=code, headers=headers)

    async def flaky(request: Request) -> Response:
        await record(request)
        if state.flaky_left > 0:
            state.flaky_left -= 1
            headers = {}
            if state.flaky_retry_after is not None:
                headers["retry-after"] = state.flaky_retry_after
            return PlainTextResponse("try later", status_code=503, headers=headers)
        return JSONResponse({"ok": True, "calls": len(state.requests)})

    async def text(request: Request) -> Response:
        return PlainTextResponse("héllo wörld")

    async def html(request: Request) -> Response:
        return Response("<p>hi</p>", media_type="text/html")

    async def binary(request: Request) -> Response:
        return Response(bytes(range(256)), media_type="application/octet-stream")

    async def big(request: Request) -> Response:
        size = int(request.path_params["size"])
        kind = request.query_params.get("kind", "text")
        if kind == "json":
            items = json.dumps({"data": "x" * size})
            return Response(items, media_type="application/json")
        return PlainTextResponse("y" * size)

    async def bad_json(request: Request) -> Response:
        return Response("{not json", media_type="application/json")

    async def redirect(request: Request) -> Response:
        await record(request)
        code = int(request.query_params.get("status", "302"))
        return RedirectResponse(request.query_params["to"], status_code=code)

    async def set_cookie(request: Request) -> Response:
        response = JSONResponse({"set": True})
        response.set_cookie("session_id", "cookie-value-123")
        return response

    async def secret_echo(request: Request) -> Response:
        """Echoes the credential in the body and a header, like a careless server."""
        auth = request.headers.get("authorization", "")
        return JSONResponse({"you_sent": auth}, headers={"x-echo": auth})

    class Hang:
        """Never answers; records when the client disconnects (a raw ASGI endpoint)."""

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            state.received.set()
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    state.disconnected.set()
                    return

    routes = [
        Route("/echo", echo, methods=ALL_METHODS),
        Route("/echo/{rest:path}", echo, methods=ALL_METHODS),
        Route("/status/{code:int}", status, methods=ALL_METHODS),
        Route("/flaky", flaky, methods=ALL_METHODS),
        Route("/text", text),
        Route("/html", html),
        Route("/binary", binary),
        Route("/big/{size:int}", big),
        Route("/bad-json", bad_json),
        Route("/redirect", redirect, methods=ALL_METHODS),
        Route("/set-cookie", set_cookie),
        Route("/secret-echo", secret_echo),
        Route("/hang", Hang(), methods=ALL_METHODS),
    ]
    return Starlette(routes=routes)


_STATE = ServerState()


@pytest.fixture(scope="session")
def _http_server() -> Iterator[LoopbackServer]:
    with LoopbackServer(build_app(_STATE)) as server:
        yield server


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def _https_server(
    tls_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoopbackServer]:
    folder = tmp_path_factory.mktemp("tls")
    cert = tls_ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = folder / "server.pem", folder / "server.key"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    with LoopbackServer(build_app(_STATE), certfile=str(certfile), keyfile=str(keyfile)) as server:
        yield server


@pytest.fixture
def http_server(_http_server: LoopbackServer) -> Served:
    """The plain-HTTP test server, with its recorded state reset."""
    _STATE.reset()
    return Served(_http_server, _STATE)


@pytest.fixture
def https_server(_https_server: LoopbackServer) -> Served:
    """The HTTPS test server (certificate from ``tls_ca``), state reset."""
    _STATE.reset()
    return Served(_https_server, _STATE)


@pytest.fixture
def ca_bundle(tls_ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    return str(path)


_ENV = (
    ENV_ALLOW_PRIVATE,
    ENV_ALLOWED_HOSTS,
    ENV_CA_BUNDLE,
    ENV_MAX_RESPONSE_BYTES,
    ENV_SECRET_ENV,
    "AIPARTNERUPFLOW_ALLOW_PRIVATE",
    "AIPARTNERUPFLOW_ALLOWED_HOSTS",
    "AIPARTNERUPFLOW_SECRET_ENV",
)

#: Sets (value) or removes (None) an environment variable, then re-reads the settings.
SetEnv = Callable[[str, "str | None"], None]


@pytest.fixture
def set_env(monkeypatch: pytest.MonkeyPatch) -> SetEnv:
    """Change a setting's variable for this test (settings are read once, so re-read them)."""

    def change(name: str, value: str | None) -> None:
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
        reload_settings()

    return change


@pytest.fixture(autouse=True)
def _loopback_allowed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests talk to 127.0.0.1, which the default policy denies: allow it (policy tests undo)."""
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(ENV_ALLOW_PRIVATE, "1")
    reload_settings()
    yield
    set_default_policy(None)
    monkeypatch.undo()
    reload_settings()
