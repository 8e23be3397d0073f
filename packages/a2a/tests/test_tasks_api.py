"""The /tasks management JSON-RPC, its SSE stream, the WebSocket stream and OpenAPI."""

from __future__ import annotations

import json
from typing import Any

import websockets
from a2a_helpers import SECRET, chain, in_process, over_http, token


async def call(server: Any, method: str, params: Any = None, bearer: str | None = None) -> Any:
    response = await server.rpc(
        method, params if params is not None else {}, bearer=bearer, path="/tasks", version=None
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_create_get_tree_children_list_count() -> None:
    async with in_process() as server:
        created = (await call(server, "tasks.create", {"tasks": chain("m-")}))["result"]
        assert created["id"] == "m-root"
        assert sorted(c["id"] for c in created["children"]) == ["m-a", "m-b"]
        got = (await call(server, "tasks.get", {"task_id": "m-a"}))["result"]
        assert got["status"] == "pending"
        tree = (await call(server, "tasks.tree", {"task_id": "m-b"}))["result"]
        assert tree["id"] == "m-root"
        children = (await call(server, "tasks.children", {"parent_id": "m-root"}))["result"]
        assert {c["id"] for c in children} == {"m-a", "m-b"}
        listed = (await call(server, "tasks.list", {}))["result"]
        assert [t["id"] for t in listed] == ["m-root"]
        everything = (await call(server, "tasks.list", {"root_only": False}))["result"]
        assert len(everything) == 3
        counts = (await call(server, "tasks.count", {}))["result"]
        assert counts["pending"] == 3
        assert counts["total"] == 3
        bare = (await call(server, "tasks.create", chain("bare-")))["result"]
        assert bare["id"] == "bare-root"
        one_tree = (await call(server, "tasks.count", {"root_id": "m-root"}))["result"]
        assert one_tree["total"] == 3 and one_tree["pending"] == 3
        assert (await call(server, "tasks.count", {}))["result"]["total"] == 6


async def test_execute_returns_the_real_outcome_and_reruns() -> None:
    async with in_process() as server:
        await call(server, "tasks.create", {"tasks": chain("x-")})
        done = (await call(server, "tasks.execute", {"task_id": "x-root"}))["result"]
        assert done["status"] == "completed"
        assert {t["id"] for t in done["tasks"]} == {"x-root", "x-a", "x-b"}
        again = await call(server, "tasks.execute", {"task_id": "x-root", "rerun": "all"})
        assert again["result"]["status"] == "completed"
        failing = [{"id": "y", "name": "y", "schemas": {"method": "a2a_test_fail"}}]
        failed = (await call(server, "tasks.execute", {"tasks": failing}))["result"]
        assert failed["status"] == "failed"
        assert "boom" in failed["tasks"][0]["error"]


async def test_execute_streams_events_until_the_tree_finishes_even_on_failure() -> None:
    failing = [
        {"id": "sf-root", "name": "root", "schemas": {"method": "a2a_test_echo"}},
        {
            "id": "sf-bad",
            "name": "bad",
            "parent_id": "sf-root",
            "schemas": {"method": "a2a_test_fail"},
        },
    ]
    async with in_process() as server:
        response = await server.http.post(
            "/tasks",
            json={
                "jsonrpc": "2.0",
                "id": 7,
                "method": "tasks.execute",
                "params": {"tasks": failing, "use_streaming": True},
            },
        )
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = [
        json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")
    ]
    assert frames[0]["result"]["status"] == "started"
    assert frames[0]["result"]["root_task_id"] == "sf-root"
    assert all(f["id"] == 7 for f in frames)
    last = frames[-1]["result"]
    assert last["kind"] == "tree_finished"
    assert last["status"] == "failed"


async def test_update_allows_only_valid_transitions_and_fields() -> None:
    async with in_process() as server:
        await call(server, "tasks.create", {"tasks": chain("u-")})
        renamed = await call(
            server, "tasks.update", {"task_id": "u-a", "name": "alpha", "inputs": {"text": "new"}}
        )
        assert renamed["result"]["name"] == "alpha"
        bad_field = await call(server, "tasks.update", {"task_id": "u-a", "user_id": "bob"})
        assert bad_field["error"]["code"] == -32602
        bad_move = await call(server, "tasks.update", {"task_id": "u-a", "status": "completed"})
        assert bad_move["error"]["code"] == -32002
        cancelled = await call(server, "tasks.update", {"task_id": "u-a", "status": "cancelled"})
        assert cancelled["result"]["status"] == "cancelled"
        reset = await call(server, "tasks.update", {"task_id": "u-a", "status": "pending"})
        assert reset["result"]["status"] == "pending"
        missing = await call(server, "tasks.update", {"task_id": "nope", "name": "x"})
        assert missing["error"]["code"] == -32001


async def test_copy_cancel_and_delete() -> None:
    async with in_process() as server:
        await call(server, "tasks.create", {"tasks": chain("c-")})
        copy = (await call(server, "tasks.copy", {"task_id": "c-root"}))["result"]
        assert copy["id"] != "c-root"
        assert copy["original_task_id"] == "c-root"
        assert len(copy["children"]) == 2
        cancelled = (await call(server, "tasks.cancel", {"task_id": "c-root"}))["result"]
        assert sorted(cancelled[0]["cancelled"]) == ["c-a", "c-b", "c-root"]
        again = (await call(server, "tasks.cancel", {"task_id": "c-root"}))["result"]
        assert again[0]["cancelled"] == []
        blocked = await call(server, "tasks.delete", {"task_id": "c-a"})
        assert blocked["error"]["code"] == -32002  # c-b depends on c-a
        assert "b" in blocked["error"]["message"]
        deleted = (await call(server, "tasks.delete", {"task_id": "c-root"}))["result"]
        assert deleted["deleted_count"] == 3
        gone = await call(server, "tasks.get", {"task_id": "c-root"})
        assert gone["error"]["code"] == -32001


async def test_errors_are_json_rpc_errors() -> None:
    async with in_process() as server:
        unknown = await call(server, "tasks.nope")
        assert unknown["error"]["code"] == -32601
        invalid = await call(server, "tasks.create", {"tasks": [{"name": "x", "bogus": 1}]})
        assert invalid["error"]["code"] == -32602
        assert "bogus" in invalid["error"]["message"]
        no_param = await call(server, "tasks.get", {})
        assert no_param["error"]["code"] == -32602
        broken = await server.http.post("/tasks", content=b"{not json")
        assert broken.json()["error"]["code"] == -32700
        doc = await server.http.get("/openapi.json")
        assert "tasks.execute" in doc.json()["info"]["description"]


async def test_users_are_isolated_on_the_management_api() -> None:
    async with in_process(jwt_secret_key=SECRET) as server:
        alice, bob = token("alice"), token("bob")
        await call(server, "tasks.create", {"tasks": chain("iso-")}, bearer=alice)
        for method, params in [
            ("tasks.get", {"task_id": "iso-root"}),
            ("tasks.tree", {"task_id": "iso-root"}),
            ("tasks.update", {"task_id": "iso-a", "name": "x"}),
            ("tasks.delete", {"task_id": "iso-root"}),
            ("tasks.cancel", {"task_id": "iso-root"}),
            ("tasks.copy", {"task_id": "iso-root"}),
            ("tasks.execute", {"task_id": "iso-root"}),
        ]:
            answer = await call(server, method, params, bearer=bob)
            assert answer["error"]["code"] == -32001, method
        assert (await call(server, "tasks.list", {}, bearer=bob))["result"] == []
        assert (await call(server, "tasks.list", {"user_id": "alice"}, bearer=bob))["result"] == []
        assert len((await call(server, "tasks.list", {}, bearer=alice))["result"]) == 1
        admin = token("ops", roles="admin")
        assert (await call(server, "tasks.get", {"task_id": "iso-root"}, bearer=admin))["result"][
            "user_id"
        ] == "alice"
        spoof = await call(
            server,
            "tasks.create",
            {"tasks": [{"name": "s", "user_id": "alice", "schemas": {"method": "a2a_test_echo"}}]},
            bearer=bob,
        )
        assert spoof["error"]["code"] == -32602


async def test_websocket_streams_a_tree_until_it_finishes() -> None:
    async with over_http(jwt_secret_key=SECRET) as server:
        alice = token("alice")
        await call(server, "tasks.create", {"tasks": chain("ws-")}, bearer=alice)
        url = server.base_url.replace("http://", "ws://") + "/ws/trees/ws-root"
        async with websockets.connect(
            url, additional_headers={"Authorization": f"Bearer {alice}"}
        ) as ws:
            started = await call(server, "tasks.execute", {"task_id": "ws-root"}, bearer=alice)
            assert started["result"]["status"] == "completed"
            frames = [json.loads(m) async for m in ws]
        assert frames[-1]["kind"] == "tree_finished"
        assert frames[-1]["final"] is True
        assert {f["name"] for f in frames if f["kind"] == "task_status"} == {"root", "a", "b"}
        try:
            async with websockets.connect(
                url, additional_headers={"Authorization": f"Bearer {token('bob')}"}
            ) as ws:
                await ws.recv()
            raise AssertionError("bob must not watch alice's tree")
        except websockets.exceptions.WebSocketException:
            pass


async def _crash_leftover(server: Any, prefix: str, bearer: str | None = None) -> None:
    """A tree that a crashed process left with a task in progress."""
    await call(server, "tasks.create", {"tasks": chain(prefix)}, bearer=bearer)
    repo = server.app.state.task_manager.task_repository
    await repo.update_task(f"{prefix}root", status="in_progress", lease_owner="gone:1:dead")
    await repo.update_task(f"{prefix}a", status="in_progress", lease_owner="gone:1:dead")


async def test_resume_runs_interrupted_trees_of_the_caller_only() -> None:
    async with in_process(jwt_secret_key=SECRET) as server:
        alice, bob = token("alice"), token("bob")
        await _crash_leftover(server, "ra-", alice)
        await _crash_leftover(server, "rb-", bob)
        await call(server, "tasks.create", {"tasks": chain("fresh-")}, bearer=alice)
        resumed = (await call(server, "tasks.resume", {}, bearer=alice))["result"]
        assert [r["root_id"] for r in resumed] == ["ra-root"]
        assert resumed[0]["status"] == "completed"
        assert {t["id"] for t in resumed[0]["tasks"]} == {"ra-root", "ra-a", "ra-b"}
        bobs = (await call(server, "tasks.get", {"task_id": "rb-a"}, bearer=bob))["result"]
        assert bobs["status"] == "in_progress"  # alice cannot resume bob's tree
        fresh = await call(server, "tasks.get", {"task_id": "fresh-root"}, bearer=alice)
        assert fresh["result"]["status"] == "pending"  # never started: not interrupted
        assert (await call(server, "tasks.resume", {}, bearer=alice))["result"] == []
        admin = token("ops", roles="admin")
        again = (await call(server, "tasks.resume", {}, bearer=admin))["result"]
        assert [r["root_id"] for r in again] == ["rb-root"]


async def test_resume_leaves_trees_this_server_runs() -> None:
    async with in_process() as server:
        await call(server, "tasks.create", {"tasks": chain("own-")})
        manager = server.app.state.task_manager
        await manager.task_repository.update_task(
            "own-a", status="in_progress", lease_owner=manager.owner_id
        )
        assert (await call(server, "tasks.resume", {}))["result"] == []


async def test_health_names_the_schema_revision() -> None:
    from aipartnerupflow.core.storage.schema import HEAD_REVISION

    async with in_process() as server:
        health = (await server.http.get("/system/health")).json()
    assert health["schema_revision"] == HEAD_REVISION
