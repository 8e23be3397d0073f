"""The MCP server over streamable HTTP (uvicorn on loopback, JWT auth) for the whole session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aipartnerupflow.core.registry import get_executor_registry
from aipartnerupflow.mcp_server import McpServerSettings, create_http_app
from aipartnerupflow.testing.server import LoopbackServer

from .helpers import SECRET, SlowExecutor


@pytest.fixture(scope="session")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackServer]:
    get_executor_registry().register(SlowExecutor, override=True)
    db = Path(tmp_path_factory.mktemp("mcp")) / "tasks.duckdb"
    app = create_http_app(
        McpServerSettings.from_env(), database_url=f"duckdb:///{db}", jwt_secret_key=SECRET
    )
    server = LoopbackServer(app, lifespan="on").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mcp_url(http_server: LoopbackServer) -> str:
    return f"{http_server.url}/mcp"
