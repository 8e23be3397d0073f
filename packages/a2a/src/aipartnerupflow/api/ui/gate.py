"""``UiGate``: serves the dashboard under ``/ui`` and lets its cookie stand for a bearer token.

It sits outside the auth middleware, so the page and its login are reachable without a token;
every piece of data still comes from the ordinary API behind that middleware.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aipartnerupflow.api.security import JwtVerifier
from aipartnerupflow.api.ui.session import (
    UI_HEADER,
    clear_cookie,
    cookie_token,
    login_cookie,
    with_cookie_bearer,
)

__all__ = ["MAX_LOGIN_BYTES", "STATIC_DIR", "UI_PREFIX", "UiGate"]

UI_PREFIX = "/ui"
#: The page, its modules and its style sheet.
STATIC_DIR = Path(__file__).with_name("static")
#: Largest login body accepted (a token is a few kilobytes at most).
MAX_LOGIN_BYTES = 16 * 1024
_TOKEN = re.compile(r"^[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*$")

#: Headers of every dashboard response: nothing loads from elsewhere, nothing frames it.
_SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        b"form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


def _problem(status: int, error: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": error, "message": message},
        status_code=status,
        headers={"cache-control": "no-store"},
    )


class UiGate:
    """ASGI middleware: ``/ui`` is the dashboard; other paths pass on (with the cookie's token
    as bearer when the request comes from the dashboard).

    ``verifier`` is the server's JWT verifier, or None when auth is off (then there is no
    login: the page works as the local operator, like every other client).
    """

    def __init__(self, app: ASGIApp, verifier: JwtVerifier | None = None) -> None:
        self.app = app
        self.verifier = verifier
        self.pages = Starlette(
            routes=[
                Route(UI_PREFIX, self._redirect, methods=["GET", "HEAD"]),
                Route(f"{UI_PREFIX}/login", self._login, methods=["POST"]),
                Route(f"{UI_PREFIX}/logout", self._logout, methods=["POST"]),
                Route(f"{UI_PREFIX}/session", self._session, methods=["GET"]),
                Mount(UI_PREFIX, StaticFiles(directory=STATIC_DIR, html=True)),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if path == UI_PREFIX or path.startswith(UI_PREFIX + "/"):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 4404, "reason": "not found"})
                return

            async def secured(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message = {
                        **message,
                        "headers": [*message.get("headers", []), *_SECURITY_HEADERS],
                    }
                await send(message)

            await self.pages(scope, receive, secured)
            return
        if self.verifier is not None:
            scope = with_cookie_bearer(scope)
        await self.app(scope, receive, send)

    # -- the login endpoints -------------------------------------------------------------

    async def _redirect(self, request: Request) -> Response:
        return RedirectResponse(f"{UI_PREFIX}/", status_code=308)

    def _caller(self, token: str) -> tuple[dict[str, Any], float | None]:
        """The session description of a valid token and its expiry; raises
        :class:`jwt.InvalidTokenError` otherwise."""
        assert self.verifier is not None
        caller = self.verifier.verify(token)
        exp = caller.claims.get("exp")
        expires_at = float(exp) if isinstance(exp, int | float) else None
        return (
            {
                "auth": True,
                "user_id": caller.user_id,
                "admin": caller.is_admin,
                "expires_at": expires_at,
            },
            expires_at,
        )

    async def _login(self, request: Request) -> Response:
        if self.verifier is None:
            return _problem(
                400,
                "auth_disabled",
                "this server has no authentication: there is nothing to log in to",
            )
        if request.headers.get(UI_HEADER) != "1":
            return _problem(
                403,
                "forbidden",
                f"log in from the dashboard page (the {UI_HEADER} header is missing)",
            )
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_LOGIN_BYTES:
                return _problem(
                    413, "payload_too_large", f"a login body is at most {MAX_LOGIN_BYTES} bytes"
                )
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token.strip():
            return _problem(400, "bad_request", 'send {"token": "<JWT bearer token>"} as JSON')
        token = token.strip()
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        if not _TOKEN.match(token):
            return _problem(401, "unauthorized", "that is not a JWT (three base64url parts)")
        try:
            session, expires_at = self._caller(token)
        except jwt.ExpiredSignatureError:
            return _problem(401, "unauthorized", "the token has expired: ask for a new one")
        except jwt.InvalidTokenError:
            return _problem(401, "unauthorized", "the token is not valid for this server")
        response = JSONResponse(session, headers={"cache-control": "no-store"})
        secure = request.url.scheme == "https"
        response.headers["set-cookie"] = login_cookie(token, expires_at, secure=secure)
        return response

    async def _logout(self, request: Request) -> Response:
        response = JSONResponse({"auth": self.verifier is not None, "logged_out": True})
        response.headers["set-cookie"] = clear_cookie(secure=request.url.scheme == "https")
        response.headers["cache-control"] = "no-store"
        return response

    async def _session(self, request: Request) -> Response:
        if self.verifier is None:
            return JSONResponse(
                {"auth": False, "user_id": None, "admin": True, "expires_at": None},
                headers={"cache-control": "no-store"},
            )
        token = cookie_token(request.scope)
        if token is None:
            return _problem(401, "unauthorized", "not logged in")
        try:
            session, _ = self._caller(token)
        except jwt.InvalidTokenError:
            response = _problem(401, "unauthorized", "the login has expired or is no longer valid")
            response.headers["set-cookie"] = clear_cookie(secure=request.url.scheme == "https")
            return response
        return JSONResponse(session, headers={"cache-control": "no-store"})
