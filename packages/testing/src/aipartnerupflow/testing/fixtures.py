"""Shared pytest fixtures for aipartnerupflow packages (a pytest plugin module).

Load it from your package's top-level ``tests/conftest.py``::

    pytest_plugins = ["aipartnerupflow.testing.fixtures"]

Fixtures:

``task_manager``
    A :class:`~aipartnerupflow.TaskManager` on an in-memory DuckDB store, using the process-wide
    executor registry; closed after the test.
``run_tree``
    ``await run_tree([...task JSON...])`` runs a tree with ``task_manager`` and returns its
    :class:`~aipartnerupflow.core.results.TreeResult`.
``serve_asgi``
    ``server = serve_asgi(app, certfile=..., keyfile=...)`` serves an ASGI app on loopback
    (uvicorn in a thread, free port; needs ``uvicorn`` installed) and stops it after the test.
    ``server.url`` is its base URL.

``http_target`` / ``https_target``
    The HTTP target server of :mod:`aipartnerupflow.testing.http_target` over HTTP and over
    HTTPS (certificate from ``tls_ca``; ``ca_bundle`` is the CA's PEM path), one per session,
    its recorded state reset before each test (``target.url``, ``target.state``). Needs
    ``starlette`` and ``uvicorn``; HTTPS also ``trustme`` (``aipartnerupflow-testing[servers]``).
``fake_resolver``
    A :class:`~aipartnerupflow.testing.resolver.FakeResolver` installed on the test's event
    loop: ``fake_resolver.add("service.test", "127.0.0.1")``.
``webhook_receiver``
    A :class:`~aipartnerupflow.testing.webhook.WebhookReceiver` served on loopback;
    ``webhook_receiver.url`` is its ``/hook`` URL.
``chat_server``
    A :class:`~aipartnerupflow.testing.chat_server.FakeChatServer` (OpenAI-compatible) served
    on loopback, script and records reset before each test; ``chat_server.base_url``.

``postgres_url``
    The PostgreSQL server tests use: ``APFLOW_TEST_POSTGRES_URL``, default
    ``postgresql://postgres@127.0.0.1:5432/postgres`` (needs ``aipartnerupflow-core[postgres]``).
``postgres_schema``
    A fresh schema on that server, dropped after the test. There is no skip: without a reachable
    server the fixture fails, so a missing database never passes silently.

The async fixtures are declared with ``pytest_asyncio.fixture``, so they work in both the
``strict`` and ``auto`` modes of pytest-asyncio.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from aipartnerupflow.testing.chat_server import FakeChatServer
from aipartnerupflow.testing.http_target import HttpTarget, TargetState, build_target_app
from aipartnerupflow.testing.resolver import FakeResolver
from aipartnerupflow.testing.server import LoopbackServer
from aipartnerupflow.testing.webhook import WebhookReceiver

if TYPE_CHECKING:
    from aipartnerupflow.core.manager import TaskManager
    from aipartnerupflow.core.results import TreeResult

__all__ = [
    "RunTree",
    "ServeAsgi",
    "ca_bundle",
    "chat_server",
    "fake_resolver",
    "http_target",
    "https_target",
    "postgres_schema",
    "postgres_url",
    "run_tree",
    "serve_asgi",
    "task_manager",
    "tls_ca",
    "webhook_receiver",
]

RunTree = Callable[..., Awaitable["TreeResult"]]
ServeAsgi = Callable[..., LoopbackServer]


@pytest_asyncio.fixture
async def task_manager() -> AsyncIterator[TaskManager]:
    """A TaskManager on an in-memory DuckDB store, closed after the test."""
    from aipartnerupflow.core.manager import TaskManager
    from aipartnerupflow.core.storage import create_session

    manager = TaskManager(create_session("duckdb:///:memory:"))
    try:
        yield manager
    finally:
        await manager.close()


@pytest.fixture
def run_tree(task_manager: TaskManager) -> RunTree:
    """``await run_tree(tasks, **kwargs)``: run task JSON with ``task_manager``."""

    async def run(tasks: list[dict[str, Any]], **kwargs: Any) -> TreeResult:
        return await task_manager.run_tasks(tasks, **kwargs)

    return run


@pytest.fixture
def serve_asgi() -> Iterator[ServeAsgi]:
    """``serve_asgi(app, **options)`` starts a :class:`LoopbackServer`; all stop after the test."""
    servers: list[LoopbackServer] = []

    def start(app: Any, **options: Any) -> LoopbackServer:
        server = LoopbackServer(app, **options).start()
        servers.append(server)
        return server

    yield start
    for server in reversed(servers):
        server.stop()


_TARGET_STATE = TargetState()


@pytest.fixture(scope="session")
def _apflow_http_target_server() -> Iterator[LoopbackServer]:
    with LoopbackServer(build_target_app(_TARGET_STATE)) as server:
        yield server


@pytest.fixture(scope="session")
def tls_ca() -> Any:
    """A throwaway certificate authority (``trustme.CA``) for HTTPS test servers."""
    import trustme

    return trustme.CA()


@pytest.fixture(scope="session")
def _apflow_https_target_server(
    tls_ca: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoopbackServer]:
    folder = tmp_path_factory.mktemp("apflow-tls")
    cert = tls_ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = folder / "server.pem", folder / "server.key"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    app = build_target_app(_TARGET_STATE)
    with LoopbackServer(app, certfile=str(certfile), keyfile=str(keyfile)) as server:
        yield server


@pytest.fixture
def http_target(_apflow_http_target_server: LoopbackServer) -> HttpTarget:
    """The HTTP target server, its recorded state reset."""
    _TARGET_STATE.reset()
    return HttpTarget(_apflow_http_target_server, _TARGET_STATE)


@pytest.fixture
def https_target(_apflow_https_target_server: LoopbackServer) -> HttpTarget:
    """The HTTPS target server (certificate from ``tls_ca``), its state reset."""
    _TARGET_STATE.reset()
    return HttpTarget(_apflow_https_target_server, _TARGET_STATE)


@pytest.fixture
def ca_bundle(tls_ca: Any, tmp_path: Path) -> str:
    """Path of a PEM file holding ``tls_ca``'s certificate."""
    path = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest_asyncio.fixture
async def fake_resolver(monkeypatch: pytest.MonkeyPatch) -> FakeResolver:
    """A FakeResolver on the running loop (undone after the test)."""
    return FakeResolver().install(monkeypatch)


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A WebhookReceiver served on loopback; ``.url`` is its hook URL."""
    receiver = WebhookReceiver()
    with LoopbackServer(receiver.app()) as server:
        receiver.url = f"{server.url}{receiver.path}"
        yield receiver


_CHAT = FakeChatServer()


@pytest.fixture(scope="session")
def _apflow_chat_server() -> Iterator[LoopbackServer]:
    with LoopbackServer(_CHAT.app()) as server:
        _CHAT.url = server.url
        yield server


@pytest.fixture
def chat_server(_apflow_chat_server: LoopbackServer) -> FakeChatServer:
    """The fake OpenAI-compatible server, script and records reset."""
    _CHAT.reset()
    return _CHAT


@pytest.fixture
def postgres_url() -> str:
    """The PostgreSQL server the tests use."""
    return os.environ.get(
        "APFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """A fresh schema, dropped afterwards; fails (never skips) without PostgreSQL."""
    import sqlalchemy as sa

    name = f"apflow_test_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {name}"))
    try:
        yield name
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {name} CASCADE"))
        engine.dispose()
