"""aipartnerupflow's MCP server: task trees for any MCP client, over stdio or streamable HTTP.

``apflow serve mcp`` and ``python -m aipartnerupflow.mcp_server`` run it; embed it with
:func:`create_http_app` (an ASGI app) or :class:`FlowMcpServer` (the protocol handlers).
"""

from __future__ import annotations

from aipartnerupflow.mcp_server.app import create_http_app, run_stdio
from aipartnerupflow.mcp_server.server import FlowMcpServer
from aipartnerupflow.mcp_server.settings import McpServerSettings

__all__ = ["FlowMcpServer", "McpServerSettings", "create_http_app", "run_stdio"]
