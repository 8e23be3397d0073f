"""One WebSocket exchange on the ``websockets`` asyncio client: connect, send, wait, close.

Imported by the executor on first use (it imports websockets). The TCP connection is opened by
the kit's :meth:`OutboundPolicy.connect` and handed to websockets as ``sock=``, so it goes to the
address the policy checked (no second DNS lookup, no proxy, no redirect: websockets refuses to
follow one on a given socket).

Failures, for the engine's retry decision:

* :class:`~aipartnerupflow.core.errors.RetryableError`: connection refused or reset, DNS
  failure, handshake answered 408, 429 or 5xx (``Retry-After`` honoured), the connection lost
  without a close frame (1006), a server-side close 1001 or 1011-1014 before the awaited
  messages, the timeout;
* :class:`~aipartnerupflow.core.errors.PermanentError`: policy refusal, handshake answered
  3xx or another 4xx, handshake not WebSocket, TLS verification, a message larger than
  ``max_message_bytes`` (the connection is closed with 1009), more messages or bytes than
  allowed, a normal or protocol-error close before the awaited messages.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from aipartnerupflow.core.context import current_task_context
from aipartnerupflow.core.errors import (
    ConfigurationError,
    InputValidationError,
    PermanentError,
    RetryableError,
)
from aipartnerupflow.extensions.websocket.inputs import Plan
from aipartnerupflow.extensions.websocket.settings import ENV_PREFIX

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection
    from websockets.exceptions import ConnectionClosed

__all__ = ["Exchange", "decode_message", "matches"]

#: Seconds a closing handshake may take before the connection is dropped.
CLOSE_TIMEOUT = 5.0
_NORMAL = frozenset({1000, 1005})
_SERVER_TROUBLE = frozenset({1001, 1011, 1012, 1013, 1014})
_RETRY_STATUSES = frozenset({408, 429})
_EXCERPT = 200


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_message(data: str | bytes) -> tuple[Any, str]:
    """A received message as a result value and its kind: ``json``, ``text`` or ``binary``.

    Text that is strict JSON (no NaN/Infinity, not nested too deeply, no lone surrogates) is
    decoded; other text is kept as it is; binary data is base64-encoded.
    """
    if isinstance(data, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(data)).decode("ascii"), "binary"
    try:
        value = json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return data, "text"
    if "\\u" in data or "\\U" in data:
        try:  # an escaped lone surrogate decodes to a str that UTF-8 cannot store
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except (UnicodeEncodeError, RecursionError):
            return data, "text"
    return value, "json"


def matches(value: Any, pattern: Any) -> bool:
    """Whether ``value`` contains ``pattern``: objects by subset (recursively), else equal
    (``true`` never equals ``1``)."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            key in value and matches(value[key], expected) for key, expected in pattern.items()
        )
    if isinstance(pattern, bool) or isinstance(value, bool):
        return type(pattern) is type(value) and pattern == value
    return bool(value == pattern)


def _retry_after(headers: Any) -> float | None:
    raw = headers.get("Retry-After") if headers is not None else None
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@dataclass(slots=True)
class _State:
    phase: str = "connecting to"
    messages: list[Any] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    total_bytes: int = 0
    matched: Any = None
    closed_by: str = "client"
    close_code: int | None = None
    close_reason: str = ""


class Exchange:
    """Runs one :class:`Plan`; :meth:`cancel` closes its connection from another task."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.connection: ClientConnection | None = None
        self.cancelled = False
        self._state = _State()
        self._deadline: asyncio.Timeout | None = None
        self._settled = asyncio.Event()  # the handshake succeeded or failed
        self._closing: asyncio.Future[None] | None = None  # the one close in progress

    # -- the exchange ----------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        """Connect, send, wait, close; the result (not yet scrubbed)."""
        plan, state = self.plan, self._state
        started = time.monotonic()
        try:
            async with asyncio.timeout(plan.timeout) as self._deadline:
                await self._exchange()
        except TimeoutError:
            raise RetryableError(self._timeout_text()) from None
        if self.cancelled:
            raise PermanentError(
                f"the task was cancelled; the connection to {plan.shown_url} was closed (1001)"
                if self.connection is not None
                else "the task was cancelled before it connected"
            )
        return {
            "success": True,
            "url": plan.shown_url,
            "subprotocol": self.connection.subprotocol if self.connection else None,
            "sent": len(plan.outgoing),
            "messages": state.messages,
            "message_types": state.kinds,
            "message_count": len(state.messages),
            "response": state.messages[0] if state.messages else None,
            "matched": state.matched,
            "close_code": state.close_code,
            "close_reason": state.close_reason,
            "closed_by": state.closed_by,
            "duration_seconds": round(time.monotonic() - started, 6),
        }

    async def _exchange(self) -> None:
        from websockets.exceptions import ConnectionClosed

        plan, state = self.plan, self._state
        if self.cancelled:
            return
        try:
            connection = await self._open()
        finally:
            self._settled.set()
        self.connection = connection
        code, reason = 1000, ""
        try:
            if self.cancelled:  # cancel() came during the handshake
                return
            state.phase = "sending messages to"
            for text in plan.outgoing:
                await connection.send(text)
            state.phase = "waiting for"
            await self._receive(connection)
        except ConnectionClosed as exc:
            self._on_closed(exc)
        except asyncio.CancelledError:
            timed_out = self._deadline is not None and self._deadline.expired()
            code, reason = 1001, "timed out" if timed_out else "task cancelled"
            raise
        finally:
            await self._close(connection, code, reason)

    async def _open(self) -> ClientConnection:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidHandshake, InvalidURI

        plan, state = self.plan, self._state
        try:
            sock = await plan.policy.connect(plan.target.host, plan.target.port)
        except ConnectionError as exc:
            raise RetryableError(f"cannot open {plan.shown_url}: {exc}") from None
        state.phase = "in the WebSocket handshake with"
        try:
            return await connect(
                plan.url,
                sock=sock,
                ssl=self._tls() if plan.target.scheme == "wss" else None,
                additional_headers=plan.headers,
                subprotocols=plan.subprotocols or None,  # type: ignore[arg-type]
                max_size=plan.max_message_bytes,
                open_timeout=None,  # the task's timeout covers everything
                close_timeout=CLOSE_TIMEOUT,
                proxy=None,
            )
        except BaseException as exc:
            sock.close()
            if isinstance(exc, InvalidURI):
                raise InputValidationError(
                    f"websocket_executor inputs: input 'url' is not a WebSocket URL: {exc}"
                ) from None
            if isinstance(exc, ValueError | InvalidHandshake) or (
                isinstance(exc, OSError) and not isinstance(exc, TimeoutError)
            ):
                raise self._handshake_failure(exc) from None
            raise

    def _tls(self) -> ssl.SSLContext:
        try:
            return ssl.create_default_context(cafile=self.plan.ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"{ENV_PREFIX}CA_BUNDLE={self.plan.ca_bundle!r} cannot be loaded: {exc}"
            ) from None

    async def _receive(self, connection: ClientConnection) -> None:
        plan, state = self.plan, self._state
        ctx = current_task_context()
        while not (plan.wait == "messages" and len(state.messages) >= plan.count):
            data = await connection.recv()
            if len(state.messages) >= plan.max_messages:
                raise PermanentError(
                    f"{plan.shown_url} sent more than {_plural(plan.max_messages, 'message')} "
                    f"while the task waited for {plan.waiting_for()} (raise input "
                    f"'max_messages', at most {ENV_PREFIX}MAX_MESSAGES)"
                )
            size = len(data) if not isinstance(data, str) else len(data.encode("utf-8"))
            state.total_bytes += size
            if state.total_bytes > plan.max_total_bytes:
                raise PermanentError(
                    f"{plan.shown_url} sent more than {plan.max_total_bytes} bytes in all "
                    f"while the task waited for {plan.waiting_for()} (the operator's limit "
                    f"{ENV_PREFIX}MAX_TOTAL_BYTES)"
                )
            value, kind = decode_message(data)
            state.messages.append(value)
            state.kinds.append(kind)
            if plan.wait == "messages" and ctx is not None:
                ctx.report_progress(len(state.messages) / plan.count)
            if plan.wait == "match" and kind == "json" and matches(value, plan.match):
                state.matched = value
                return

    async def _close(self, connection: ClientConnection, code: int, reason: str) -> None:
        """Close (bounded by CLOSE_TIMEOUT), even while being cancelled."""
        if self.cancelled:
            code, reason = 1001, "task cancelled"
        if self._closing is None:
            self._closing = asyncio.ensure_future(connection.close(code, reason))
        try:
            await asyncio.shield(self._closing)
        except asyncio.CancelledError:
            connection.transport.abort()
            raise
        except Exception:
            connection.transport.abort()
        state = self._state
        if state.close_code is None:
            state.close_code = connection.close_code
            state.close_reason = connection.close_reason or ""

    async def cancel(self) -> None:
        """Close the connection with 1001 'task cancelled' (called by the executor's cancel).

        During the handshake it only waits for the handshake's end: the exchange then sees
        the flag and closes itself. One close at a time: two concurrent ones would wait for
        each other until the close timeout.
        """
        self.cancelled = True
        if self._state.phase == "in the WebSocket handshake with":
            await self._settled.wait()  # the caller bounds the wait
            return
        connection = self.connection
        if connection is not None and self._closing is None:
            self._closing = asyncio.ensure_future(connection.close(1001, "task cancelled"))
        if self._closing is not None:
            await asyncio.shield(self._closing)

    # -- failures --------------------------------------------------------------------------

    def _progress_text(self) -> str:
        state = self._state
        return f"received {_plural(len(state.messages), 'message')}"

    def _timeout_text(self) -> str:
        plan, state = self.plan, self._state
        if state.phase == "waiting for":
            return (
                f"timed out after {plan.timeout:g}s waiting for {plan.waiting_for()} from "
                f"{plan.shown_url} ({self._progress_text()}; raise input 'timeout' if the "
                "server is slow)"
            )
        return f"timed out after {plan.timeout:g}s {state.phase} {plan.shown_url}"

    def _handshake_failure(self, exc: BaseException) -> Exception:
        from websockets.exceptions import InvalidMessage, InvalidStatus

        plan = self.plan
        url = plan.shown_url
        status_exc = exc if isinstance(exc, InvalidStatus) else exc.__cause__
        if isinstance(status_exc, InvalidStatus):
            response = status_exc.response
            status = response.status_code
            phrase = response.reason_phrase
            text = f"{url} rejected the WebSocket handshake with HTTP {status} {phrase}"
            body = bytes(response.body or b"")[:_EXCERPT].decode("utf-8", "replace").strip()
            if 300 <= status < 400:
                location = plan.scrubber.url(str(response.headers.get("Location", "")))
                return PermanentError(
                    f"{url} answered the WebSocket handshake with a redirect (HTTP {status} to "
                    f"{location or 'nowhere'}); redirects are not followed: use the final URL"
                )
            if body:
                text += f": {body}"
            if status >= 500 or status in _RETRY_STATUSES:
                return RetryableError(text, retry_after=_retry_after(response.headers))
            if status in (401, 403):
                text += " (check the credentials: headers, token or token_env)"
            return PermanentError(text)
        if isinstance(exc, ssl.SSLCertVerificationError):
            return PermanentError(
                f"the TLS certificate of {url} cannot be verified: {exc.verify_message}; "
                f"to trust a private CA, set {ENV_PREFIX}CA_BUNDLE to its PEM file"
            )
        if isinstance(exc, ssl.SSLError):
            return PermanentError(f"the TLS handshake with {url} failed: {exc}")
        if isinstance(exc, InvalidMessage | OSError):
            why = str(exc) or type(exc).__name__
            return RetryableError(f"the WebSocket handshake with {url} broke off: {why}")
        return PermanentError(f"the WebSocket handshake with {url} failed: {exc}")

    def _on_closed(self, exc: ConnectionClosed) -> None:
        """Record a close by the server, or raise the failure it means."""
        plan, state = self.plan, self._state
        rcvd, sent = exc.rcvd, exc.sent
        if self.cancelled:
            return
        if sent is not None and sent.code == 1009 and not exc.rcvd_then_sent:
            raise PermanentError(
                f"{plan.shown_url} sent a message larger than {plan.max_message_bytes} bytes "
                f"({self._progress_text()} before it); raise input 'max_message_bytes' (at "
                f"most {ENV_PREFIX}MAX_MESSAGE_BYTES)"
            )
        code = rcvd.code if rcvd is not None else 1006
        reason = rcvd.reason if rcvd is not None else ""
        state.closed_by, state.close_code, state.close_reason = "server", code, reason
        shown = f"{code} {reason!r}" if reason else str(code)
        waiting = f"while the task waited for {plan.waiting_for()} ({self._progress_text()})"
        if rcvd is None:
            why = (
                "the keepalive ping timed out"
                if sent is not None and sent.code == 1011
                else ("no close frame")
            )
            raise RetryableError(
                f"the connection to {plan.shown_url} was lost ({why}: 1006) {waiting}"
            )
        if code == 1009:
            raise PermanentError(
                f"{plan.shown_url} closed the connection with 1009 (message too big) {waiting}: "
                "it refused a message the task sent"
            )
        normal = code in _NORMAL or code == 1001
        if plan.wait == "close" and normal:
            return
        if code in _SERVER_TROUBLE:
            raise RetryableError(f"{plan.shown_url} closed the connection with {shown} {waiting}")
        raise PermanentError(f"{plan.shown_url} closed the connection with {shown} {waiting}")
