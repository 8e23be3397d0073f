"""A fake OpenAI-compatible chat server, scripted per test, for LLM and agent executors.

Speaks the Chat Completions wire format (``POST /v1/chat/completions``, ``GET /v1/models``):
plain answers, JSON answers, tool calls, streaming (server-sent events, one chunk per piece,
ending with ``data: [DONE]``), and failures (429 with ``Retry-After``, 500, 401 for a wrong key).
Each request takes the next scripted reply; with none left it echoes the last user message.
A plain ASGI app: serve it with :class:`~aipartnerupflow.testing.server.LoopbackServer`, or use
the ``chat_server`` fixture of :mod:`aipartnerupflow.testing.fixtures`.

    server.script(
        ChatReply.error(429, retry_after=1),
        ChatReply.text("Hello!"),
        ChatReply.tool_call("get_weather", {"city": "Paris"}),
        ChatReply.json({"answer": 42}),
    )
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key=server.api_key)
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ChatReply", "FakeChatServer", "ToolCall"]


@dataclass(frozen=True)
class ToolCall:
    """One function call the model asks for."""

    name: str
    arguments: dict[str, Any]
    id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:12]}")


@dataclass(frozen=True)
class ChatReply:
    """What the server answers to one request; build with the class methods."""

    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    status: int = 200
    retry_after: str | None = None
    error_message: str = ""
    #: Pieces the content is split into when the request streams (at least 1).
    chunks: int = 3
    finish_reason: str | None = None
    usage: tuple[int, int] = (10, 5)
    #: Seconds the server waits before answering (a slow provider; cancellation tests).
    delay: float = 0.0

    @classmethod
    def text(cls, content: str, *, chunks: int = 3, delay: float = 0.0) -> ChatReply:
        """A plain assistant answer."""
        return cls(content=content, chunks=chunks, delay=delay)

    @classmethod
    def json(cls, value: Any, *, chunks: int = 3) -> ChatReply:
        """An answer whose content is ``value`` as JSON (for ``response_format`` callers)."""
        return cls(content=json.dumps(value), chunks=chunks)

    @classmethod
    def tool_call(cls, name: str, arguments: dict[str, Any], *more: ToolCall) -> ChatReply:
        """An answer asking for one (or more) tool calls."""
        return cls(tool_calls=(ToolCall(name, arguments), *more), finish_reason="tool_calls")

    @classmethod
    def error(
        cls, status: int, *, retry_after: float | str | None = None, message: str = ""
    ) -> ChatReply:
        """An HTTP error in OpenAI's error shape (429 with ``Retry-After``, 500 …)."""
        after = None if retry_after is None else str(retry_after)
        text = message or {429: "Rate limit reached", 500: "The server had an error"}.get(
            status, f"error {status}"
        )
        return cls(status=status, retry_after=after, error_message=text)


def _pieces(text: str, n: int) -> list[str]:
    n = max(1, min(n, len(text) or 1))
    size = -(-len(text) // n) if text else 0
    return [text[i : i + size] for i in range(0, len(text), size)] if text else [""]


class FakeChatServer:
    """The scripted chat server; ``requests`` records each request body (parsed JSON).

    ``api_key``: when set, a request without ``Authorization: Bearer <api_key>`` gets 401.
    ``model`` is what ``/v1/models`` lists and what answers name when the request names none.
    """

    def __init__(
        self, *, api_key: str | None = "sk-fake-test-key", model: str = "fake-model"
    ) -> None:
        self.api_key = api_key
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._replies: deque[ChatReply] = deque()
        self._lock = threading.Lock()
        self.url = ""

    @property
    def base_url(self) -> str:
        """What OpenAI clients take as ``base_url`` (``<url>/v1``); set once served."""
        return f"{self.url}/v1"

    def script(self, *replies: ChatReply) -> None:
        """Queue replies; each request takes the next one."""
        with self._lock:
            self._replies.extend(replies)

    def reset(self) -> None:
        """Forget the script and the recorded requests."""
        with self._lock:
            self._replies.clear()
            self.requests.clear()
            self.headers.clear()

    def _next(self, body: dict[str, Any]) -> ChatReply:
        with self._lock:
            if self._replies:
                return self._replies.popleft()
        messages = body.get("messages") or []
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        last = users[-1].get("content") if users else ""
        if isinstance(last, list):  # content parts
            last = " ".join(p.get("text", "") for p in last if isinstance(p, dict))
        return ChatReply.text(f"echo: {last}")

    def app(self) -> Any:
        """The ASGI application."""

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return
            raw = b""
            while True:
                message = await receive()
                raw += message.get("body", b"")
                if not message.get("more_body"):
                    break
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            }
            path, method = scope["path"].rstrip("/"), scope["method"]
            if (
                self.api_key is not None
                and headers.get("authorization") != f"Bearer {self.api_key}"
            ):
                await _json(send, 401, _error("Incorrect API key provided", "invalid_api_key"))
                return
            if path == "/v1/models" and method == "GET":
                await _json(
                    send,
                    200,
                    {
                        "object": "list",
                        "data": [
                            {"id": self.model, "object": "model", "created": 0, "owned_by": "fake"}
                        ],
                    },
                )
                return
            if path != "/v1/chat/completions" or method != "POST":
                await _json(send, 404, _error(f"no route {method} {path}", "not_found"))
                return
            try:
                body = json.loads(raw)
                if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                    raise ValueError("'messages' must be a list")
            except ValueError as exc:
                await _json(send, 400, _error(f"invalid request: {exc}", "invalid_request_error"))
                return
            with self._lock:
                self.requests.append(body)
                self.headers.append(headers)
            reply = self._next(body)
            if reply.delay > 0:
                await asyncio.sleep(reply.delay)
            if reply.status != 200:
                extra = [(b"retry-after", reply.retry_after.encode())] if reply.retry_after else []
                kind = "rate_limit_exceeded" if reply.status == 429 else "server_error"
                await _json(send, reply.status, _error(reply.error_message, kind), extra)
                return
            model = str(body.get("model") or self.model)
            if body.get("stream"):
                await self._stream(
                    send,
                    reply,
                    model,
                    bool((body.get("stream_options") or {}).get("include_usage")),
                )
            else:
                await _json(send, 200, _completion(reply, model))

        return app

    async def _stream(self, send: Any, reply: ChatReply, model: str, usage: bool) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        ident, created = f"chatcmpl-{uuid.uuid4().hex[:12]}", int(time.time())

        async def event(delta: dict[str, Any], finish: str | None, **extra: Any) -> None:
            chunk = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
            data = f"data: {json.dumps(chunk)}\n\n".encode()
            await send({"type": "http.response.body", "body": data, "more_body": True})

        await event({"role": "assistant", "content": ""}, None)
        if reply.tool_calls:
            for i, call in enumerate(reply.tool_calls):
                start = {
                    "index": i,
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": ""},
                }
                await event({"tool_calls": [start]}, None)
                for piece in _pieces(json.dumps(call.arguments), reply.chunks):
                    await event(
                        {"tool_calls": [{"index": i, "function": {"arguments": piece}}]}, None
                    )
        else:
            for piece in _pieces(reply.content or "", reply.chunks):
                await event({"content": piece}, None)
        await event({}, reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop"))
        if usage:
            prompt, completion = reply.usage
            chunk = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            }
            await send(
                {
                    "type": "http.response.body",
                    "body": f"data: {json.dumps(chunk)}\n\n".encode(),
                    "more_body": True,
                }
            )
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


def _completion(reply: ChatReply, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in reply.tool_calls
        ]
    prompt, completion = reply.usage
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": reply.finish_reason
                or ("tool_calls" if reply.tool_calls else "stop"),
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def _error(message: str, code: str) -> dict[str, Any]:
    kind = {"rate_limit_exceeded": "requests", "server_error": "server_error"}.get(
        code, "invalid_request_error"
    )
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


async def _json(
    send: Any, status: int, body: dict[str, Any], extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": data})
