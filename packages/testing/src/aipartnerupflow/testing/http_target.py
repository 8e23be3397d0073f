"""An HTTP target server for executor tests: echoes, status codes, redirects, big bodies, hangs.

``build_target_app(state)`` is a Starlette application that records every request in
``state``; serve it with :class:`~aipartnerupflow.testing.server.LoopbackServer` (or use the
``http_target`` / ``https_target`` fixtures of :mod:`aipartnerupflow.testing.fixtures`).
Needs ``starlette`` and ``uvicorn`` (``pip install "aipartnerupflow-testing[servers]"``),
imported when the app is built.

Routes (every method unless said):

==========================  ================================================================
``/echo``, ``/echo/<path>``  the request as JSON (method, path, query, headers, body)
``/status/<code>``           that status, body ``status <code> body``; ``?retry_after=`` header
``/flaky``                   503 while ``state.flaky_left`` > 0 (``Retry-After`` from
                             ``state.flaky_retry_after``), then ``{"ok": true, "calls": n}``
``/text``, ``/html``         a UTF-8 text and an HTML page (GET)
``/binary``                  bytes 0..255 (GET)
``/big/<size>``              ``size`` bytes of text, or JSON with ``?kind=json`` (GET)
``/bad-json``                a body declared JSON that is not (GET)
``/redirect?to=URL``         a redirect (``?status=``, default 302) to ``to``
``/set-cookie``              sets ``session_id`` (GET)
``/secret-echo``             echoes the Authorization header in the body and ``x-echo``
``/hang``                    never answers; sets ``state.received``, then
                             ``state.disconnected`` when the client goes away
==========================  ================================================================
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aipartnerupflow.testing.server import LoopbackServer

__all__ = ["ALL_METHODS", "HttpTarget", "TargetState", "build_target_app"]

ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


@dataclass
class TargetState:
    """What the target server saw; shared between its thread and the test."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    flaky_left: int = 0
    flaky_retry_after: str | None = None
    received: threading.Event = field(default_factory=threading.Event)
    disconnected: threading.Event = field(default_factory=threading.Event)

    def reset(self) -> None:
        """Forget every request and flag (the fixtures call this before each test)."""
        self.requests.clear()
        self.flaky_left = 0
        self.flaky_retry_after = None
        self.received.clear()
        self.disconnected.clear()

    async def wait_received(self, timeout: float = 60) -> None:  # noqa: ASYNC109
        """Wait (without blocking the loop) until ``/hang`` has a request."""
        if not await asyncio.to_thread(self.received.wait, timeout):
            raise TimeoutError("the target's /hang endpoint received no request")

    async def wait_disconnected(self, timeout: float = 60) -> bool:  # noqa: ASYNC109
        """Wait until the client of ``/hang`` went away; False after ``timeout``."""
        return await asyncio.to_thread(self.disconnected.wait, timeout)


@dataclass
class HttpTarget:
    """A running target server and its recorded state."""

    server: LoopbackServer
    state: TargetState

    @property
    def url(self) -> str:
        """Base URL, without a trailing slash."""
        return self.server.url


def build_target_app(state: TargetState) -> Any:
    """The target application (a Starlette app) recording into ``state``."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
    from starlette.routing import Route

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
        if request.query_params.get("kind", "text") == "json":
            return Response(json.dumps({"data": "x" * size}), media_type="application/json")
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
        auth = request.headers.get("authorization", "")
        return JSONResponse({"you_sent": auth}, headers={"x-echo": auth})

    class Hang:
        """Never answers; records when the client disconnects (a raw ASGI endpoint)."""

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
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
