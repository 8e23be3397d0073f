"""Refuse request bodies the SDK would silently change: NaN and infinities become null there.

Python's JSON parser (and pydantic's) read the non-standard literals ``NaN``, ``Infinity`` and
``-Infinity``; the mcp SDK then re-serialises them as ``null``, so a task would be stored with
a value its author never wrote. This ASGI middleware answers such a body with a JSON-RPC parse
error before the SDK sees it, and caps the body size.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["NON_JSON_TOOL", "StrictJsonLines", "StrictJsonMiddleware", "non_json_message"]

#: Internal tool name a stdio request with NaN/Infinity is rewritten to, so the server answers
#: it in order with an error for the request's own id (never listed by tools/list).
NON_JSON_TOOL = "apflow/non-json-number"


class _NotJsonError(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotJsonError(name)


def non_json_message(literal: str) -> str:
    """The error for a request holding a non-standard number literal."""
    return (
        f"Parse error: {literal} is not a JSON number; send a finite number, or null, or the "
        "value as a string"
    )


def _non_json_literal(text: str | bytes) -> str | None:
    try:
        json.loads(text or b"null", parse_constant=_refuse_constant)
    except _NotJsonError as exc:
        return str(exc)
    except (ValueError, RecursionError):
        return None  # the SDK answers other malformed input itself
    return None


class StrictJsonLines:
    """stdin lines for the SDK's stdio transport; a request line with NaN or Infinity is
    replaced by a call of :data:`NON_JSON_TOOL` with the same id (answered with an error)."""

    def __init__(self, lines: Any) -> None:
        self._lines = lines

    def __aiter__(self) -> AsyncIterator[str]:
        return self._filter()

    async def _filter(self) -> AsyncIterator[str]:
        async for line in self._lines:
            literal = _non_json_literal(line)
            if literal is None:
                yield line
                continue
            try:
                request_id = json.loads(line).get("id")
            except (ValueError, AttributeError, RecursionError):
                request_id = None
            if request_id is None or isinstance(request_id, float):
                continue  # a notification: nobody waits for an answer
            yield json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": request_id,
                    "method": "tools/call",
                    "params": {"name": NON_JSON_TOOL, "arguments": {"literal": literal}},
                }
            )


class StrictJsonMiddleware:
    """Checks POST bodies are standard JSON (no NaN/Infinity) and at most ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int = 10 * 1024 * 1024) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _reject(send, 413, f"the request body is larger than {self.max_bytes} bytes")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        literal = _non_json_literal(body)
        if literal is not None:
            await _reject(send, 400, non_json_message(literal))
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body}], receive), send)


def _replay(messages: list[Message], then: Receive) -> Receive:
    """``messages`` first, then the connection's own (its disconnect, when it comes)."""
    queue = list(messages)

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        return await then()

    return receive


async def _reject(send: Send, status: int, message: str) -> None:
    payload = json.dumps(
        {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": message}}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
