"""The server on PostgreSQL: A2A records in the same database, scoped and persistent."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

import httpx
import pytest
from a2a.types import GetTaskRequest, ListTasksRequest, TaskState
from a2a_helpers import Server, chain, collect, send_request

from aipartnerupflow.api import ServerSettings, create_app
from aipartnerupflow.core.storage import create_session

pytestmark = pytest.mark.postgres

POSTGRES_URL = os.environ.get(
    "APFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@contextlib.asynccontextmanager
async def on_postgres(schema: str) -> AsyncIterator[Server]:
    storage = create_session(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    app = create_app(ServerSettings.from_env(database_url=POSTGRES_URL), storage=storage)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://pg.test"
            ) as http,
        ):
            server = Server(app, "http://pg.test", http, True)
            try:
                yield server
            finally:
                await server.aclose()
    finally:
        await storage.close()


async def test_send_get_list_on_postgres_and_after_a_restart(postgres_schema: str) -> None:
    async with on_postgres(postgres_schema) as server:
        client = await server.client(streaming=False)
        task = (await collect(client.send_message(send_request(chain("pg-")))))[0].task
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        streamed = await collect(
            (await server.client()).send_message(send_request(chain("pgs-"), message_id="m2"))
        )
        assert streamed[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
    async with on_postgres(postgres_schema) as server:
        client = await server.client(streaming=False)
        again = await client.get_task(GetTaskRequest(id=task.id))
        assert {a.artifact_id for a in again.artifacts} == {"pg-root", "pg-a", "pg-b"}
        page = await client.list_tasks(ListTasksRequest(page_size=1))
        assert page.total_size == 2
        assert page.next_page_token
