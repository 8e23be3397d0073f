"""The shared bad-input corpus over the /tasks JSON-RPC API: -32602, the same reason as the
core service gives, and nothing written."""

from __future__ import annotations

import json
from typing import Any

import pytest
from a2a_helpers import SECRET, in_process, token

from aipartnerupflow.testing.bad_inputs import (
    CREATE_CASES,
    UPDATE_CASES,
    BadCreate,
    BadUpdate,
    base_tree,
)


async def _call(server: Any, method: str, params: Any, bearer: str | None = None) -> Any:
    # json.dumps writes NaN and Infinity literals, as a careless or hostile client would
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    headers = {"Content-Type": "application/json"}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    response = await server.http.post("/tasks", content=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def _everything(server: Any) -> Any:
    return (await _call(server, "tasks.list", {"root_only": False, "limit": 1000}))["result"]


@pytest.mark.parametrize("case", CREATE_CASES, ids=lambda c: c.name)
async def test_create_refuses_the_corpus(case: BadCreate) -> None:
    async with in_process() as server:
        answer = await _call(server, "tasks.create", {"tasks": case.tasks("c-")})
        assert answer["error"]["code"] == -32602, answer
        assert case.expect in answer["error"]["message"]
        assert await _everything(server) == []


@pytest.mark.parametrize("case", UPDATE_CASES, ids=lambda c: c.name)
async def test_update_refuses_the_corpus(case: BadUpdate) -> None:
    async with in_process() as server:
        created = await _call(server, "tasks.create", {"tasks": base_tree("u-")})
        assert "result" in created, created
        before = await _everything(server)
        answer = await _call(server, "tasks.update", {"task_id": "u-a", **case.fields("u-")})
        assert answer["error"]["code"] == -32602, answer
        assert case.expect in answer["error"]["message"]
        assert await _everything(server) == before


async def test_a_tree_over_the_servers_task_limit_is_refused() -> None:
    async with in_process(max_tasks_per_request=2) as server:
        answer = await _call(server, "tasks.create", {"tasks": base_tree("big-")})
        assert answer["error"]["code"] == -32602
        assert "at most 2 tasks" in answer["error"]["message"]


async def test_ids_taken_by_another_user_neither_block_nor_leak() -> None:
    async with in_process(jwt_secret_key=SECRET) as server:
        alice, bob = token("alice"), token("bob")
        await _call(server, "tasks.create", {"tasks": base_tree("t-")}, alice)
        mine = await _call(server, "tasks.create", {"tasks": base_tree("b-")}, bob)
        theirs = await _call(server, "tasks.create", {"tasks": base_tree("t-")}, bob)
        assert set(theirs["result"]["renamed"]) == {"t-root", "t-a", "t-b"}
        assert theirs["result"]["user_id"] == "bob"
        again = await _call(server, "tasks.create", {"tasks": base_tree("b-")}, bob)
        assert set(again["result"]["renamed"]) == {"b-root", "b-a", "b-b"}
        assert "result" in mine
        hidden = await _call(server, "tasks.get", {"task_id": "t-a"}, bob)
        absent = await _call(server, "tasks.get", {"task_id": "zz"}, bob)
        assert hidden["error"]["code"] == absent["error"]["code"] == -32001
        assert hidden["error"]["message"].replace("t-a", "X") == absent["error"]["message"].replace(
            "zz", "X"
        )
        alices = await _call(server, "tasks.get", {"task_id": "t-a"}, alice)
        assert alices["result"]["user_id"] == "alice"


async def test_openapi_describes_every_methods_params() -> None:
    async with in_process() as server:
        doc = (await server.http.get("/openapi.json")).json()
        schemas = doc["components"]["schemas"]
        update = schemas["tasks.update.params"]
        assert update["additionalProperties"] is False
        assert "priority" in update["properties"]
        assert "tasks.create.params" in schemas and "tasks.page.params" in schemas
        refs = json.dumps(doc)
        assert "#/$defs/" not in refs


async def test_the_a2a_tables_come_from_its_registered_migrations() -> None:
    import sqlalchemy as sa

    from aipartnerupflow.api.migrations import MIGRATIONS
    from aipartnerupflow.core.storage import create_session
    from aipartnerupflow.core.storage.plugin_migrations import (
        apply_migrations,
        installed_migration_sets,
    )

    assert MIGRATIONS in installed_migration_sets()
    storage = create_session("duckdb:///:memory:")
    try:
        assert await apply_migrations(storage, [MIGRATIONS]) == ["a2a"]

        def tables(conn: sa.Connection) -> set[str]:
            return set(sa.inspect(conn).get_table_names())

        found = await storage.run_sql(tables)
        assert {"apflow_a2a_tasks", "apflow_a2a_push_configs"} <= found
        assert MIGRATIONS.version_table("apflow_tasks") in found
        assert await apply_migrations(storage) == []
    finally:
        await storage.close()


async def test_a_body_nested_beyond_the_parser_is_a_parse_error() -> None:
    async with in_process() as server:
        deep = "[" * 100_000 + "]" * 100_000
        body = '{"jsonrpc": "2.0", "id": 1, "method": "tasks.create", "params": {"tasks": ' + deep
        response = await server.http.post(
            "/tasks", content=body + "}}", headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 200
        error = response.json()["error"]
        assert error["code"] == -32700 and "nested too deeply" in error["message"]
        assert await _everything(server) == []
