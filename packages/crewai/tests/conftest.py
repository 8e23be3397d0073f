"""CrewAI tests: real crewai objects against the fake OpenAI-compatible server, no network.

* crewai's telemetry, tracing and version check are off, and its files (and HOME) live in a
  temporary directory, all set before crewai is first imported;
* every outbound connection to anything but loopback is refused and recorded; the session
  fails if one was attempted (so a hidden download or telemetry call cannot pass unnoticed);
* the LLM endpoint is the fake chat server from aipartnerupflow-testing, behind a small router
  that holds a request open forever when its prompt contains ``HANG-FOREVER`` (for the
  cancel and timeout tests).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from aipartnerupflow.core.settings import reload_settings
from aipartnerupflow.testing.chat_server import FakeChatServer
from aipartnerupflow.testing.server import LoopbackServer

pytest_plugins = ["aipartnerupflow.testing.fixtures"]

HANG = "HANG-FOREVER"
_HOME = tempfile.mkdtemp(prefix="apflow-crewai-")
_ENV = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_DISABLE_TRACKING": "true",
    "OTEL_SDK_DISABLED": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "CREWAI_DISABLE_VERSION_CHECK": "true",
    "CREWAI_STORAGE_DIR": os.path.join(_HOME, "crewai-storage"),
    "HOME": _HOME,
    "XDG_DATA_HOME": os.path.join(_HOME, "data"),
    "XDG_CACHE_HOME": os.path.join(_HOME, "cache"),
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}
os.environ.update(_ENV)
for _proxy in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE"):
    os.environ.pop(_proxy, None)

#: Non-loopback connection attempts (address tuples), refused.
BLOCKED: list[Any] = []
_LOCAL = ("127.", "::1", "localhost")
_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _check(address: Any) -> None:
    if isinstance(address, tuple) and not str(address[0]).startswith(_LOCAL):
        BLOCKED.append(address)
        raise OSError(f"network access blocked in tests: {address!r}")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check(address)
    _connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check(address)
    return _connect_ex(self, address)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if BLOCKED:
        print(f"\nnetwork access attempted during the crewai tests: {BLOCKED}")
        session.exitstatus = 1


CHAT = FakeChatServer()


class HangRouter:
    """The fake chat server's app, except that prompts containing HANG never get an answer."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.hanging = 0
        self.released = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.inner(scope, receive, send)
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = bool(message.get("more_body"))
        raw = b"".join(chunks)
        if HANG.encode() in raw:
            self.hanging += 1
            try:
                while (await receive())["type"] != "http.disconnect":
                    pass
            finally:
                self.released += 1
            return None
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": raw, "more_body": False}
            await asyncio.Event().wait()
            return {"type": "http.disconnect"}

        return await self.inner(scope, replay, send)


ROUTER = HangRouter(CHAT.app())


@pytest.fixture(scope="session")
def _llm_server() -> Iterator[LoopbackServer]:
    with LoopbackServer(ROUTER) as server:
        CHAT.url = server.url
        yield server


@pytest.fixture
def chat(_llm_server: LoopbackServer) -> FakeChatServer:
    """The fake LLM endpoint, script and records reset."""
    CHAT.reset()
    return CHAT


@pytest.fixture(autouse=True)
def _crewai_settings(
    monkeypatch: pytest.MonkeyPatch, _llm_server: LoopbackServer
) -> Iterator[None]:
    """Point the executors at the fake endpoint (the operator's settings)."""
    monkeypatch.setenv("AIPARTNERUPFLOW_CREWAI_MODEL", "openai/fake-model")
    monkeypatch.setenv("AIPARTNERUPFLOW_CREWAI_BASE_URL", f"{_llm_server.url}/v1")
    monkeypatch.setenv("AIPARTNERUPFLOW_CREWAI_API_KEY", str(CHAT.api_key))
    monkeypatch.setenv("AIPARTNERUPFLOW_CREWAI_REQUEST_TIMEOUT", "15")
    reload_settings()
    yield
    reload_settings()


def answer(text: str) -> str:
    """An answer in the form crewai's agents parse."""
    return f"Thought: I now know the final answer\nFinal Answer: {text}"


def prompts(server: FakeChatServer) -> list[str]:
    """The last user message of each request the server received."""
    found = []
    for body in server.requests:
        users = [m for m in body["messages"] if m.get("role") == "user"]
        content = users[-1]["content"] if users else ""
        found.append(content if isinstance(content, str) else json.dumps(content))
    return found


def pytest_configure(config: pytest.Config) -> None:
    # crewai's own circular imports (harmless, hidden by Python's default filters)
    config.addinivalue_line(
        "filterwarnings", "ignore:Cannot set an attribute on 'crewai:ImportWarning"
    )
    # crewai's use of its own deprecated fields
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:crewai")
