"""The dashboard's login: a verified bearer token kept in an HttpOnly, SameSite=Strict cookie.

The page never holds the token after login (scripts cannot read the cookie). A request carries
the cookie as its bearer token only when it also proves it comes from the dashboard itself:
HTTP requests send the :data:`UI_HEADER` header (a cross-site page cannot add it without a CORS
preflight, which this header never passes), WebSocket handshakes come from the server's own
origin. Everything else about the request is checked by the ordinary auth middleware.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from http.cookies import CookieError, SimpleCookie

from starlette.types import Scope

__all__ = [
    "COOKIE_NAME",
    "MAX_COOKIE_SECONDS",
    "UI_HEADER",
    "clear_cookie",
    "cookie_token",
    "header",
    "login_cookie",
    "with_cookie_bearer",
]

COOKIE_NAME = "apflow_ui_token"
#: The header every dashboard request sends (CSRF guard for the cookie).
UI_HEADER = "x-apflow-ui"
#: A login lasts at most this long, even when the token lives longer.
MAX_COOKIE_SECONDS = 12 * 3600


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header (names are lower case in ASGI)."""
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def cookie_token(scope: Scope) -> str | None:
    """The dashboard's token cookie of a request, if any."""
    raw = header(scope, b"cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    morsel = jar.get(COOKIE_NAME)
    value = morsel.value.strip() if morsel is not None else ""
    return value or None


def _same_origin(scope: Scope) -> bool:
    """True when a WebSocket handshake's Origin is this server's own address."""
    origin, host = header(scope, b"origin"), header(scope, b"host")
    if not origin or not host:
        return False
    scheme = "https" if scope.get("scheme") in {"https", "wss"} else "http"
    return origin.rstrip("/") == f"{scheme}://{host}"


def with_cookie_bearer(scope: Scope) -> Scope:
    """``scope`` with the cookie's token as its ``Authorization`` header, when the request
    comes from the dashboard and has no header of its own; otherwise ``scope`` unchanged."""
    if header(scope, b"authorization") is not None:
        return scope
    token = cookie_token(scope)
    if token is None:
        return scope
    if scope["type"] == "http" and header(scope, UI_HEADER.encode()) != "1":
        return scope
    if scope["type"] == "websocket" and not _same_origin(scope):
        return scope
    headers: Sequence[tuple[bytes, bytes]] = scope.get("headers", [])
    return {
        **scope,
        "headers": [*headers, (b"authorization", f"Bearer {token}".encode("latin-1"))],
    }


def login_cookie(token: str, expires_at: float | None, *, secure: bool) -> str:
    """The ``Set-Cookie`` value of a login that ends with the token (or after 12 hours)."""
    now = time.time()
    until = (
        now + MAX_COOKIE_SECONDS
        if expires_at is None
        else min(expires_at, now + MAX_COOKIE_SECONDS)
    )
    max_age = max(0, int(until - now))
    parts = [
        f"{COOKIE_NAME}={token}",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        f"Max-Age={max_age}",
    ]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def clear_cookie(*, secure: bool) -> str:
    """The ``Set-Cookie`` value that ends a login."""
    parts = [f"{COOKIE_NAME}=", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=0"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)
