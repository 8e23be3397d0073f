"""MCP client executor for aipartnerupflow: ``mcp_executor``, on the official mcp SDK (1.x).

Importing this package does not import the mcp SDK; the first call does. HTTP servers are
limited by the executor kit's outbound policy (non-public addresses denied by default); stdio
servers are off until the operator allows them and allow-lists their programs.
"""

from __future__ import annotations

from aipartnerupflow.extensions.mcp.executor import McpExecutor
from aipartnerupflow.extensions.mcp.settings import McpSettings

__all__ = ["McpExecutor", "McpSettings"]
