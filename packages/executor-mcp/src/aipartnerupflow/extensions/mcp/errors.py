"""Errors of ``mcp_executor`` (in the project's one hierarchy)."""

from __future__ import annotations

from typing import Any

from aipartnerupflow.core.errors import ExecutorError, PermanentError, RetryableError
from aipartnerupflow.core.executors.programs import ProgramRefusedError

__all__ = [
    "McpConnectionError",
    "McpProtocolError",
    "McpToolError",
    "PermanentProtocolError",
    "StdioRefusedError",
]


class StdioRefusedError(ProgramRefusedError):
    """The operator's settings forbid this stdio server (off, or program not allow-listed)."""


class McpToolError(ExecutorError):
    """The tool ran and reported failure (``isError``); the message is its text."""

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        super().__init__(message)
        self.result = result


class McpProtocolError(ExecutorError):
    """The server answered a request with a JSON-RPC error (``code`` is its number)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class PermanentProtocolError(McpProtocolError, PermanentError):
    """A JSON-RPC error no retry can fix (invalid params, unknown method or resource)."""


class McpConnectionError(RetryableError):
    """The server could not be reached, or the connection ended during the request."""
