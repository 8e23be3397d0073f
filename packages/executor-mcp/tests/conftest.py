"""Fixtures: a FastMCP server over streamable HTTP (uvicorn on loopback, in a thread) and the
same server as a stdio program (``sys.executable mcp_server.py``, allow-listed here)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from aipartnerupflow.core.settings import reload_settings
from aipartnerupflow.testing.server import LoopbackServer

from . import mcp_server

SERVER_SCRIPT = str(Path(__file__).with_name("mcp_server.py"))
TOKEN = "mcp-s3cret-bearer-value"


@pytest.fixture(scope="session")
def http_server() -> Iterator[LoopbackServer]:
    mcp_server.HANG_STARTED = threading.Event()
    mcp_server.HANG_CANCELLED = threading.Event()
    server = LoopbackServer(mcp_server.build().streamable_http_app(), lifespan="on").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mcp_url(http_server: LoopbackServer) -> str:
    mcp_server.HANG_STARTED.clear()
    mcp_server.HANG_CANCELLED.clear()
    return f"{http_server.url}/mcp"


@pytest.fixture
def stdio_command() -> list[str]:
    return [sys.executable, SERVER_SCRIPT]


@pytest.fixture(autouse=True)
def _settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AIPARTNERUPFLOW_MCP_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("AIPARTNERUPFLOW_MCP_ALLOW_STDIO", "true")
    monkeypatch.setenv("AIPARTNERUPFLOW_MCP_ALLOWED_EXECUTABLES", sys.executable)
    reload_settings()
    yield
    reload_settings()
