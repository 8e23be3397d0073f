"""Operator settings of the MCP server (``AIPARTNERUPFLOW_MCP_SERVER_*``).

JWT authentication is the A2A server's: the same ``AIPARTNERUPFLOW_JWT_*`` variables, read
through :class:`aipartnerupflow.api.config.ServerSettings`.
"""

from __future__ import annotations

from typing import ClassVar

import pydantic

from aipartnerupflow.core.settings import Settings

__all__ = ["McpServerSettings"]


class McpServerSettings(Settings):
    """Where the MCP server listens over streamable HTTP and how much it runs at once."""

    env_prefix: ClassVar[str] = "AIPARTNERUPFLOW_MCP_SERVER_"

    host: str = pydantic.Field(
        default="127.0.0.1",
        description="Address the streamable HTTP transport binds; a non-loopback address "
        "needs JWT auth (AIPARTNERUPFLOW_JWT_*) or AIPARTNERUPFLOW_MCP_SERVER_INSECURE.",
    )
    port: int = pydantic.Field(
        default=8010, ge=0, le=65535, description="Port of the streamable HTTP transport."
    )
    path: str = pydantic.Field(
        default="/mcp", pattern=r"^/[A-Za-z0-9._~/-]*$", description="URL path of the endpoint."
    )
    insecure: bool = pydantic.Field(
        default=False,
        description="Allow a non-loopback bind without authentication (anyone who can reach "
        "the address can run tasks).",
    )
    max_concurrency: int = pydantic.Field(
        default=64, ge=1, description="Task trees the server runs at the same time."
    )
    max_tasks_per_request: int = pydantic.Field(
        default=1000, ge=1, description="Most tasks one tool call may create."
    )
    max_body_bytes: int = pydantic.Field(
        default=10 * 1024 * 1024, ge=1024, description="Largest HTTP request body, in bytes."
    )
    log_level: str = pydantic.Field(
        default="info",
        description="uvicorn's log level (debug, info, warning, error).",
        pattern=r"^(critical|error|warning|info|debug|trace)$",
    )
