"""WebSocket executor for aipartnerupflow: ``websocket_executor``, on websockets.

Importing this package does not import websockets; the first task does. Targets are limited
by the outbound policy of :class:`WebSocketSettings` (non-public addresses are denied unless
``AIPARTNERUPFLOW_WEBSOCKET_ALLOW_PRIVATE`` or ``AIPARTNERUPFLOW_ALLOW_PRIVATE`` is set).
"""

from __future__ import annotations

from aipartnerupflow.extensions.websocket.executor import WebSocketExecutor
from aipartnerupflow.extensions.websocket.inputs import INPUT_SCHEMA
from aipartnerupflow.extensions.websocket.settings import WebSocketSettings

__all__ = ["INPUT_SCHEMA", "WebSocketExecutor", "WebSocketSettings"]
