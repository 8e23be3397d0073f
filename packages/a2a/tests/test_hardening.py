"""Issue 26: what the A2A TCK and hostile clients found (push order, card, TCK mode, bind,
oversized bodies, engine internals in the Task)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from a2a_helpers import SECRET, chain, collect, in_process, on_loopback, over_http, send_request
from google.protobuf.json_format import MessageToDict
from test_conformance import rpc, tck_message
from test_push import Receiver, _with_push

from aipartnerupflow.api import ServerSettings, create_app
from aipartnerupflow.core.errors import ConfigurationError

# --- push: every delivery is the state of its moment, in order -------------------------


async def test_push_deliveries_show_the_state_of_their_moment_in_order() -> None:
    """The first delivery is retried (500), so it goes out after the task ended; it must still
    be the SUBMITTED Task without artifacts, and the states that follow never go back."""
    receiver = Receiver(fail_first=1)
    async with (
        on_loopback(receiver.app()) as hook_base,
        over_http(push_allow_private=True) as server,
    ):
        client = await server.client(streaming=False)
        await collect(client.send_message(_with_push(f"{hook_base}/hook", "order-")))
        await asyncio.wait_for(receiver.done.wait(), 60)  # hang guard only
    first = receiver.bodies[0]["task"]
    assert first["status"]["state"] == "TASK_STATE_SUBMITTED"
    assert "artifacts" not in first
    rank = {"TASK_STATE_SUBMITTED": 0, "TASK_STATE_WORKING": 1, "TASK_STATE_COMPLETED": 2}
    states = [b["statusUpdate"]["status"]["state"] for b in receiver.bodies if "statusUpdate" in b]
    assert states[0] == "TASK_STATE_WORKING"
    assert states[-1] == "TASK_STATE_COMPLETED"
    assert [rank[s] for s in states] == sorted(rank[s] for s in states)
    assert sum(1 for b in receiver.bodies if "artifactUpdate" in b) == 3


# --- agent card ---------------------------------------------------------------------------


async def test_card_has_cache_control_and_etag() -> None:
    async with in_process(card_cache_seconds=120) as server:
        for path in ("/.well-known/agent-card.json", "/.well-known/agent.json"):
            response = await server.http.get(path)
            assert response.headers["cache-control"] == "public, max-age=120"
            assert response.headers["etag"]
    async with in_process(card_cache_seconds=0) as server:
        response = await server.http.get("/.well-known/agent-card.json")
        assert response.headers["cache-control"] == "no-cache"


async def test_v0_3_interface_is_advertised_only_when_opted_in() -> None:
    async with in_process() as server:
        card = (await server.http.get("/.well-known/agent-card.json")).json()
        assert {i["protocolVersion"] for i in card["supportedInterfaces"]} == {"1.0"}
        assert "protocolVersion" not in card  # no 0.3 card fields
    async with in_process(advertise_v0_3=True) as server:
        card = (await server.http.get("/.well-known/agent-card.json")).json()
        legacy = [i for i in card["supportedInterfaces"] if i["protocolVersion"] == "0.3"]
        assert legacy == [
            {
                "protocolBinding": "JSONRPC",
                "protocolVersion": "0.3",
                "url": "http://127.0.0.1:8000/",
            }
        ]
        assert card["supportedInterfaces"][0]["protocolVersion"] == "1.0"  # 1.0 stays first
        assert card["protocolVersion"] == "0.3"
        assert card["url"] == "http://127.0.0.1:8000/"
        # and a 0.3 client is answered on that URL
        legacy_call = await server.http.post(
            "/",
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "message/send",
                "params": {
                    "message": {
                        "kind": "message",
                        "messageId": "legacy-1",
                        "role": "user",
                        "parts": [{"kind": "data", "data": {"tasks": chain("v03-")}}],
                    }
                },
            },
        )
        assert legacy_call.json()["result"]["status"]["state"] == "completed"


def test_v0_3_setting_reads_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIPARTNERUPFLOW_A2A_ADVERTISE_V0_3", "true")
    monkeypatch.setenv("AIPARTNERUPFLOW_CARD_CACHE_SECONDS", "60")
    settings = ServerSettings.from_env()
    assert settings.advertise_v0_3 is True
    assert settings.card_cache_seconds == 60


# --- conformance (TCK) mode ----------------------------------------------------------------


async def test_tck_input_required_follow_up_stays_input_required() -> None:
    async with in_process(agent="tck") as server:
        first = await rpc(server, "SendMessage", tck_message("tck-input-required-1"))
        task = first["result"]["task"]
        assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
        again = await rpc(
            server,
            "SendMessage",
            tck_message("tck-input-required-2", taskId=task["id"], contextId=task["contextId"]),
        )
        assert again["result"]["task"]["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
        done = await rpc(
            server, "SendMessage", tck_message("follow-up-3", taskId=task["id"], text="here")
        )
        assert done["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_follow_up_without_context_id_joins_the_tasks_context() -> None:
    async with in_process(agent="tck") as server:
        first = (await rpc(server, "SendMessage", tck_message("tck-input-required-x")))["result"]
        task = first["task"]
        follow = await rpc(server, "SendMessage", tck_message("answer-x", taskId=task["id"]))
        result = follow["result"]["task"]
        assert result["contextId"] == task["contextId"]
        assert result["status"]["message"]["contextId"] == task["contextId"]
        assert all(m["contextId"] == task["contextId"] for m in result.get("history", []))


async def test_returned_and_stored_task_carry_no_engine_event() -> None:
    async with in_process() as server:
        client = await server.client(streaming=False)
        task = (await collect(client.send_message(send_request(chain("meta-")))))[0].task
        meta = MessageToDict(task.metadata)
        assert meta == {"aipartnerupflow": {"root_task_id": "meta-root", "task_count": 3}}
        got = await server.rpc("GetTask", {"id": task.id})
        assert set(got.json()["result"]["metadata"]) == {"aipartnerupflow"}
        # the stream's status updates still carry the event
        streamed = await collect((await server.client()).send_message(send_request(chain("mt2-"))))
        events = [
            MessageToDict(e.status_update.metadata)
            for e in streamed
            if e.HasField("status_update") and e.status_update.metadata
        ]
        assert any("aipartnerupflow_event" in m for m in events)


# --- bind safety ---------------------------------------------------------------------------


def _non_loopback_address() -> str | None:
    """An address of this machine other than loopback (to reach a 0.0.0.0 bind from)."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the route's source
        address: str = s.getsockname()[0]
        if not address.startswith("127."):
            return address
    return None


async def test_an_unauthenticated_app_started_by_uvicorn_on_0_0_0_0_serves_only_loopback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The documented ``uvicorn aipartnerupflow.api.main:app --host 0.0.0.0``: the settings say
    127.0.0.1, so the app cannot refuse to start; it refuses other machines' requests."""
    address = _non_loopback_address()
    assert address is not None, "this test needs a non-loopback interface"
    app = create_app(ServerSettings.from_env(database_url="duckdb:///:memory:"))
    async with on_loopback(app, host="0.0.0.0") as url, httpx.AsyncClient(timeout=30) as http:
        port = url.rsplit(":", 1)[1]
        remote = await http.get(f"http://{address}:{port}/.well-known/agent-card.json")
        send = await http.post(
            f"http://{address}:{port}/",
            json={"jsonrpc": "2.0", "id": 1, "method": "ListTasks", "params": {}},
            headers={"A2A-Version": "1.0"},
        )
        local = await http.get(f"http://127.0.0.1:{port}/.well-known/agent-card.json")
    assert remote.status_code == 403
    assert "AIPARTNERUPFLOW_JWT_SECRET_KEY" in remote.json()["message"]
    assert send.status_code == 403
    assert local.status_code == 200
    assert "refused a request from" in caplog.text


async def test_remote_clients_are_served_with_auth_or_insecure() -> None:
    remote = ("203.0.113.7", 40000)
    for options in ({"jwt_secret_key": SECRET}, {"insecure": True}):
        app = create_app(ServerSettings.from_env(database_url="duckdb:///:memory:", **options))
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, client=remote), base_url="http://x.test"
            ) as http,
        ):
            card = await http.get("/.well-known/agent-card.json")
            assert card.status_code == 200
    app = create_app(ServerSettings.from_env(database_url="duckdb:///:memory:"))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=remote), base_url="http://x.test"
    ) as http:
        assert (await http.get("/system/health")).status_code == 403


def test_create_app_refuses_a_configured_public_host_without_auth() -> None:
    with pytest.raises(ConfigurationError, match=r"refusing to listen on 0\.0\.0\.0"):
        create_app(ServerSettings.from_env(host="0.0.0.0", database_url="duckdb:///:memory:"))


# --- oversized bodies ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/tasks", "/message:send"])
async def test_an_oversized_chunked_body_is_413_on_every_path(path: str) -> None:
    async with over_http(max_body_bytes=4096) as server:

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"x": "'
            for _ in range(10):
                yield b"y" * 1024
            yield b'"}}'

        response = await server.http.post(path, content=chunks(), headers={"A2A-Version": "1.0"})
        assert "content-length" not in response.request.headers
        assert response.status_code == 413
        assert response.json()["error"] == "payload_too_large"

        # a small chunked body still goes through
        async def small() -> AsyncIterator[bytes]:
            yield b'{"jsonrpc": "2.0", "id": 1, "method": "ListTasks", "params": {}}'

        ok = await server.http.post("/", content=small(), headers={"A2A-Version": "1.0"})
        assert ok.status_code == 200
        assert "result" in ok.json()


def test_cluster_mode_refuses_a_duckdb_database() -> None:
    with pytest.raises(ConfigurationError, match="needs a PostgreSQL database"):
        create_app(ServerSettings.from_env(cluster=True, database_url="duckdb:///:memory:"))
