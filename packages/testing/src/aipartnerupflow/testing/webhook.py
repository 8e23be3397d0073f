"""A webhook receiver for tests: records every POST, can fail the first few on purpose.

A plain ASGI app (no framework needed); serve it with
:class:`~aipartnerupflow.testing.server.LoopbackServer` in a thread or with uvicorn in the
test's own loop. Thread-safe: :meth:`WebhookReceiver.wait_for` works either way.

    receiver = WebhookReceiver(fail_first=1)
    with LoopbackServer(receiver.app()) as server:
        ... deliver to f"{server.url}/hook" ...
        await receiver.wait_for(lambda bodies: len(bodies) >= 3)
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["WebhookReceiver"]


class WebhookReceiver:
    """Accepts ``POST <path>`` with a JSON body; ``fail_first`` requests get ``fail_status``.

    ``attempts`` counts every request to ``path``; ``bodies`` and ``headers`` (lower-case
    names) hold the accepted ones, in order. A body that is not JSON is answered 400 and
    recorded in ``rejected``.
    """

    def __init__(self, *, path: str = "/hook", fail_first: int = 0, fail_status: int = 500) -> None:
        self.path = path
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.attempts = 0
        self.bodies: list[Any] = []
        self.headers: list[dict[str, str]] = []
        self.rejected: list[bytes] = []
        #: The hook's URL once served (set by the ``webhook_receiver`` fixture).
        self.url = ""
        self._changed = threading.Condition()

    def app(self) -> Callable[..., Any]:
        """The ASGI application."""

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return
            if scope["path"] != self.path or scope["method"] != "POST":
                await _answer(send, 404, {"error": "not found"})
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
            with self._changed:
                self.attempts += 1
                failing = self.attempts <= self.fail_first
                if not failing:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        self.rejected.append(raw)
                        failing = None  # type: ignore[assignment]
                    else:
                        self.bodies.append(body)
                        self.headers.append(headers)
                self._changed.notify_all()
            if failing is None:
                await _answer(send, 400, {"error": "the body is not JSON"})
            elif failing:
                await _answer(send, self.fail_status, {"error": "try again"})
            else:
                await _answer(send, 200, {"ok": True})

        return app

    async def wait_for(
        self,
        predicate: Callable[[list[Any]], bool],
        timeout: float = 60,  # noqa: ASYNC109 - a hang guard, not a speed check
    ) -> list[Any]:
        """Wait until ``predicate(bodies)`` holds; returns the bodies. TimeoutError after
        ``timeout`` seconds (a hang guard)."""

        def wait() -> bool:
            deadline = time.monotonic() + timeout
            with self._changed:
                while not predicate(list(self.bodies)):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._changed.wait(min(left, 0.5))
                return True

        if not await asyncio.to_thread(wait):
            raise TimeoutError(
                f"the webhook receiver did not get what was expected: {self.bodies!r}"
            )
        return list(self.bodies)


async def _answer(send: Any, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
