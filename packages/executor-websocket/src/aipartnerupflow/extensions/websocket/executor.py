"""``websocket_executor``: open a WebSocket, send messages, wait for replies, close.

Importing this module does not import websockets; the first task does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from aipartnerupflow.core.context import current_task_context
from aipartnerupflow.core.executor import ExecutableTask
from aipartnerupflow.core.executors.secrets import (
    SecretScrubber,
    install_log_scrubbing,
    scrubbing,
)
from aipartnerupflow.extensions.websocket.inputs import INPUT_SCHEMA, make_plan
from aipartnerupflow.extensions.websocket.settings import WebSocketSettings

if TYPE_CHECKING:
    from aipartnerupflow.extensions.websocket.session import Exchange

__all__ = ["WebSocketExecutor"]


class WebSocketExecutor(ExecutableTask):
    """Connects to a ``ws://``/``wss://`` URL, sends messages in order and collects replies
    until a number of messages, a matching JSON message, or the server's close."""

    id: ClassVar[str] = "websocket_executor"
    name: ClassVar[str] = "WebSocket"
    description: ClassVar[str] = (
        "Open a WebSocket (ws:// or wss://), send text or JSON messages, and collect the "
        "replies until a number of messages, a JSON message with given fields, or the close."
    )
    tags: ClassVar[list[str]] = ["websocket", "network"]
    examples: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "Ask once, read one reply",
            "inputs": {"url": "wss://echo.example.com/ws", "message": {"ping": 1}},
        },
        {
            "name": "Subscribe and wait for the job to finish",
            "inputs": {
                "url": "wss://jobs.example.com/events",
                "token_env": "JOBS_TOKEN",
                "subprotocols": ["jobs.v1"],
                "messages": [{"subscribe": "job-42"}],
                "wait_for": {"match": {"job": "job-42", "state": "done"}},
                "timeout": 120,
            },
        },
    ]
    input_schema: ClassVar[dict[str, Any] | None] = INPUT_SCHEMA

    def __init__(self, **params: Any) -> None:
        # The original project passed task params as keyword arguments; none are used here.
        self._exchange: Exchange | None = None
        self._cancelled = False

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Run the exchange; raises PermanentError/RetryableError with a reason on failure."""
        ctx = current_task_context()
        scrubber = ctx.secrets if ctx is not None else SecretScrubber()
        with self._scrubbing(scrubber, own=ctx is None):
            try:
                checked = ctx is not None and self.get_input_schema() is INPUT_SCHEMA
                plan = make_plan(inputs, WebSocketSettings.get(), schema_checked=checked)
                scrubber.add(*plan.scrubber.secrets)
                plan.scrubber = scrubber
                from aipartnerupflow.extensions.websocket.session import Exchange

                self._exchange = exchange = Exchange(plan)
                if self._cancelled:
                    exchange.cancelled = True
                result = await exchange.run()
            except Exception as exc:
                clean = scrubber.text(str(exc))
                if clean != str(exc):
                    exc.args = (clean, *exc.args[1:])
                raise
            finally:
                self._exchange = None
            cleaned: dict[str, Any] = scrubber.data(result)
            return cleaned

    async def cancel(self) -> None:
        """Close the live connection (1001 'task cancelled'); harmless when idle."""
        self._cancelled = True
        exchange = self._exchange
        if exchange is not None:
            await exchange.cancel()

    @staticmethod
    @contextlib.contextmanager
    def _scrubbing(scrubber: SecretScrubber, *, own: bool) -> Iterator[None]:
        """Outside the engine, scrub this call's log records with its own scrubber."""
        if not own:
            yield
            return
        install_log_scrubbing()
        with scrubbing(scrubber):
            yield
