"""JWT bearer authentication, the caller's identity, and request-size limits."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jwt
from starlette.authentication import BaseUser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aipartnerupflow.api.config import ServerSettings
from aipartnerupflow.core.errors import ConfigurationError

if TYPE_CHECKING:  # the MCP server imports this module without the A2A SDK
    from a2a.server.context import ServerCallContext

__all__ = [
    "ADMIN_ROLE",
    "PUBLIC_PATHS",
    "AuthMiddleware",
    "BodySizeLimitMiddleware",
    "Caller",
    "JwtVerifier",
    "LoopbackOnlyMiddleware",
    "caller_of",
    "create_token",
]

log = logging.getLogger("aipartnerupflow.api.auth")

ADMIN_ROLE = "admin"
#: Paths served without a token (the agent card must be discoverable).
PUBLIC_PATHS = frozenset(
    {
        "/.well-known/agent-card.json",
        "/.well-known/agent.json",
        "/system/health",
    }
)


@dataclass(frozen=True, slots=True)
class Caller(BaseUser):
    """The authenticated caller: a user id (the token's ``sub``) and roles."""

    user_id: str
    roles: frozenset[str] = frozenset()
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.user_id

    @property
    def identity(self) -> str:
        return self.user_id

    @property
    def is_admin(self) -> bool:
        """True when the caller may see every user's tasks."""
        return ADMIN_ROLE in self.roles


def caller_of(context: ServerCallContext | None) -> Caller | None:
    """The :class:`Caller` behind an A2A call context (None when auth is off)."""
    if context is None:
        return None
    user = getattr(context.user, "_user", None)  # a2a's StarletteUser wraps ours
    return user if isinstance(user, Caller) else None


class JwtVerifier:
    """Checks bearer tokens: signature, ``exp``, ``sub`` and optional ``iss``/``aud``."""

    def __init__(self, settings: ServerSettings) -> None:
        if settings.jwt_public_key:
            self.key: str = settings.jwt_public_key
            self.algorithms = [settings.jwt_algorithm or "RS256"]
        elif settings.jwt_secret_key:
            self.key = settings.jwt_secret_key
            self.algorithms = [settings.jwt_algorithm or "HS256"]
        else:
            raise ConfigurationError("JWT auth needs a secret key or a public key")
        if self.algorithms[0].lower() == "none":
            raise ConfigurationError("the JWT algorithm 'none' is not allowed")
        if settings.jwt_secret_key and not self.algorithms[0].startswith("HS"):
            raise ConfigurationError(
                f"AIPARTNERUPFLOW_JWT_ALGORITHM={self.algorithms[0]} needs a public key "
                "(AIPARTNERUPFLOW_JWT_PUBLIC_KEY), not a shared secret"
            )
        if settings.jwt_public_key and self.algorithms[0].startswith("HS"):
            raise ConfigurationError(
                "a public key cannot verify HS* tokens: set AIPARTNERUPFLOW_JWT_ALGORITHM to "
                "RS256 or ES256, or use AIPARTNERUPFLOW_JWT_SECRET_KEY"
            )
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.require = ["sub", "exp"] if settings.jwt_require_exp else ["sub"]
        self.roles_claim = settings.jwt_roles_claim

    def verify(self, token: str) -> Caller:
        """The caller a token names; raises :class:`jwt.InvalidTokenError` when it is not valid."""
        claims = jwt.decode(
            token,
            self.key,
            algorithms=self.algorithms,
            issuer=self.issuer,
            audience=self.audience,
            options={"require": self.require, "verify_aud": self.audience is not None},
        )
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub.strip():
            raise jwt.InvalidTokenError("the token's 'sub' claim must name the user")
        return Caller(sub, frozenset(_roles(claims.get(self.roles_claim))), claims)


def _roles(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        return value.replace(",", " ").split()
    if isinstance(value, Sequence):
        return [str(v) for v in value]
    return []


def create_token(
    sub: str,
    secret_key: str,
    *,
    algorithm: str = "HS256",
    expires_in: float = 3600.0,
    roles: str | Sequence[str] = (),
    **claims: Any,
) -> str:
    """A signed bearer token for ``sub`` (for scripts, tests and operators)."""
    now = int(time.time())
    payload: dict[str, Any] = {"sub": sub, "iat": now, "exp": now + int(expires_in), **claims}
    if roles:
        payload["roles"] = [roles] if isinstance(roles, str) else list(roles)
    return jwt.encode(payload, secret_key, algorithm=algorithm)


async def _send_json(
    send: Send, status: int, body: dict[str, Any], headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


class AuthMiddleware:
    """ASGI middleware: a valid bearer token on every path but the public ones.

    On success ``scope["user"]`` holds the :class:`Caller`, which a2a-sdk turns into the
    call context's user. A missing or invalid token gets HTTP 401 and no detail that could
    leak the key or the token.
    """

    def __init__(self, app: ASGIApp, verifier: JwtVerifier) -> None:
        self.app = app
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path in PUBLIC_PATHS or scope.get("method") == "OPTIONS":
            await self.app(scope, receive, send)
            return
        token = _bearer(scope)
        reason = "missing bearer token"
        if token is not None:
            try:
                scope["user"] = self.verifier.verify(token)
                scope["auth"] = ["authenticated"]
            except jwt.ExpiredSignatureError:
                reason = "token expired"
            except jwt.InvalidTokenError as exc:
                reason = _reason(exc)
            else:
                await self.app(scope, receive, send)
                return
        log.info("rejected %s %s: %s", scope.get("method", "WS"), path, reason)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4401, "reason": "unauthorized"})
            return
        await _send_json(
            send,
            401,
            {"error": "unauthorized", "message": reason},
            [
                (
                    b"www-authenticate",
                    f'Bearer error="invalid_token", error_description="{reason}"'.encode(),
                )
            ],
        )


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            text: str = bytes(value).decode("latin-1")
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


def _reason(exc: jwt.InvalidTokenError) -> str:
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"token has no '{exc.claim}' claim"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "bad token signature"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "wrong token audience"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "wrong token issuer"
    if "sub" in str(exc):
        return "token has no valid 'sub' claim"
    return "invalid token"


class LoopbackOnlyMiddleware:
    """ASGI middleware of a server without authentication: only loopback clients are served.

    However the app is started (``uvicorn ... --host 0.0.0.0`` included), a request from
    another machine gets HTTP 403 saying how to turn auth on; nothing else is read. Requests
    without a client address (a Unix socket) are local. Used unless ``insecure`` is set.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._warned = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from aipartnerupflow.api.config import is_loopback_host

        client = scope.get("client") if scope["type"] in {"http", "websocket"} else None
        if client is None or is_loopback_host(str(client[0])):
            await self.app(scope, receive, send)
            return
        if not self._warned:
            self._warned = True
            log.warning(
                "refused a request from %s: this server has no authentication and serves only "
                "loopback clients (set AIPARTNERUPFLOW_JWT_SECRET_KEY, or AIPARTNERUPFLOW_INSECURE"
                "=true to serve everyone)",
                client[0],
            )
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4403, "reason": "loopback only"})
            return
        await _send_json(
            send,
            403,
            {
                "error": "forbidden",
                "message": "this server has no authentication and answers only loopback "
                "clients: its operator must set AIPARTNERUPFLOW_JWT_SECRET_KEY (or "
                "AIPARTNERUPFLOW_JWT_PUBLIC_KEY), or AIPARTNERUPFLOW_INSECURE=true",
            },
        )


class BodySizeLimitMiddleware:
    """ASGI middleware: HTTP 413 for request bodies larger than ``max_bytes``.

    A declared ``Content-Length`` over the limit is refused at once. A body without one
    (chunked) is read here first, up to the limit, and handed on whole; one more byte and the
    answer is 413, before the application saw anything (so no handler can turn the refusal
    into a 200 with an error inside).
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: int | None = None
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
                if declared is not None and declared > self.max_bytes:
                    await self._too_large(send)
                    return
        if declared is None:
            body = await self._read_limited(receive)
            if body is None:
                await self._too_large(send)
                return
            await self.app(scope, _replay(body, receive), send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLargeError:
            if not started:
                await self._too_large(send)

    async def _read_limited(self, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it passes ``max_bytes``."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _too_large(self, send: Send) -> None:
        await _send_json(
            send,
            413,
            {
                "error": "payload_too_large",
                "message": f"request body exceeds {self.max_bytes} bytes",
            },
        )


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` giving ``body`` once, then what the connection says (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class _TooLargeError(Exception):
    pass
