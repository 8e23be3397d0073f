"""A dropped database connection: clients get a generic storage error, the log the masked
detail (PostgreSQL reached through a loopback TCP relay the test cuts)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest
from a2a_helpers import Server, chain, collect, send_request
from test_postgres import POSTGRES_URL

from aipartnerupflow.api import ServerSettings, create_app
from aipartnerupflow.core.storage import create_session

pytestmark = pytest.mark.postgres


class Relay:
    """A TCP relay on loopback to the PostgreSQL server; ``cut()`` drops every connection and
    refuses new ones (what a database restart or a network cut looks like to the driver)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self, port: int = 0) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        bound: int = self.server.sockets[0].getsockname()[1]
        return bound

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers.add(up_writer)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def cut(self) -> None:
        if self.server is None:
            return
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
            writer.close()
        self.writers.clear()
        await self.server.wait_closed()


@contextlib.asynccontextmanager
async def through_relay(schema: str) -> AsyncIterator[tuple[Server, Relay]]:
    target = urlsplit(POSTGRES_URL)
    relay = Relay(target.hostname or "127.0.0.1", target.port or 5432)
    port = await relay.start()
    url = POSTGRES_URL.replace(f"{target.hostname}:{target.port or 5432}", f"127.0.0.1:{port}")
    storage = create_session(url, connect_args={"options": f"-csearch_path={schema}"})
    app = create_app(ServerSettings.from_env(database_url=url), storage=storage)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pg") as http,
        ):
            server = Server(app, "http://pg", http, True)
            try:
                yield server, relay
            finally:
                await server.aclose()
    finally:
        with contextlib.suppress(Exception):
            await storage.close()
        await relay.cut()


async def test_a_lost_database_is_a_generic_error_for_clients(
    postgres_schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    async with through_relay(postgres_schema) as (server, relay):
        client = await server.client(streaming=False)
        task = (await collect(client.send_message(send_request(chain("lost-")))))[0].task
        assert relay.server is not None
        relay_port = relay.server.sockets[0].getsockname()[1]
        await relay.cut()
        got = (await server.rpc("GetTask", {"id": task.id})).json()
        sent = (
            await server.rpc(
                "SendMessage",
                {
                    "message": {
                        "messageId": "m2",
                        "role": "ROLE_USER",
                        "parts": [{"data": {"tasks": chain("lost2-")}}],
                    }
                },
            )
        ).json()
        rest = await server.http.get(f"/tasks/{task.id}", headers={"A2A-Version": "1.0"})
        tasks_api = (
            await server.http.post(
                "/tasks",
                json={"jsonrpc": "2.0", "id": 1, "method": "tasks.get", "params": {"task_id": "x"}},
            )
        ).json()
        await relay.start(relay_port)  # the database is back: the server shuts down cleanly
        again = (await server.rpc("GetTask", {"id": task.id})).json()
    assert again["result"]["id"] == task.id  # and it recovered
    for body in (got, sent, tasks_api):
        assert body["error"]["code"] == -32603, body
        assert "task database could not complete the request" in body["error"]["message"]
    assert rest.status_code == 500
    assert "task database could not complete the request" in rest.text
    for text in (str(got), str(sent), rest.text, str(tasks_api)):
        for leak in ("SELECT", "psycopg", "apflow_a2a", "127.0.0.1", "connection", "[SQL"):
            assert leak not in text
    assert "task database error" in caplog.text  # the detail went to the log
