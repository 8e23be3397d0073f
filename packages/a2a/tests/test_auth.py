"""JWT auth, user isolation and safe binding."""

from __future__ import annotations

import time

import jwt
import pytest
from a2a.types import TaskState
from a2a_helpers import SECRET, chain, collect, in_process, send_request, token
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from aipartnerupflow.api import ServerSettings, serve
from aipartnerupflow.core.errors import ConfigurationError

PARAMS = {
    "message": {
        "messageId": "m1",
        "role": "ROLE_USER",
        "parts": [{"data": {"tasks": chain("auth-")}}],
    }
}


@pytest.mark.parametrize(
    ("bearer", "reason"),
    [
        (None, "missing bearer token"),
        (
            jwt.encode(
                {"sub": "alice", "exp": int(time.time()) + 86400},
                "wrong-key-" * 5,
                algorithm="HS256",
            ),
            "bad token signature",
        ),
        (
            jwt.encode({"sub": "alice", "exp": int(time.time()) - 60}, SECRET, algorithm="HS256"),
            "token expired",
        ),
        (
            jwt.encode(
                {"user_id": "alice", "exp": int(time.time()) + 86400}, SECRET, algorithm="HS256"
            ),
            "token has no 'sub' claim",
        ),
        (jwt.encode({"sub": "alice"}, SECRET, algorithm="HS256"), "token has no 'exp' claim"),
        (
            jwt.encode({"sub": "", "exp": int(time.time()) + 86400}, SECRET, algorithm="HS256"),
            "token has no valid 'sub' claim",
        ),
        ("not-a-jwt", "invalid token"),
    ],
)
async def test_requests_without_a_valid_token_get_401(bearer: str | None, reason: str) -> None:
    async with in_process(jwt_secret_key=SECRET) as server:
        rpc = await server.rpc("SendMessage", PARAMS, bearer=bearer)
        rest = await server.http.get(
            "/tasks", headers={"Authorization": f"Bearer {bearer}"} if bearer else {}
        )
        mgmt = await server.rpc("tasks.list", {}, bearer=bearer, path="/tasks")
    for response in (rpc, rest, mgmt):
        assert response.status_code == 401
        assert response.json()["message"] == reason
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert SECRET not in response.text


async def test_issuer_and_audience_are_checked() -> None:
    async with in_process(jwt_secret_key=SECRET, jwt_issuer="apf", jwt_audience="a2a") as server:
        good = token("alice", iss="apf", aud="a2a")
        wrong_iss = token("alice", iss="other", aud="a2a")
        wrong_aud = token("alice", iss="apf", aud="other")
        assert (await server.rpc("ListTasks", {}, bearer=good)).status_code == 200
        assert (await server.rpc("ListTasks", {}, bearer=wrong_iss)).status_code == 401
        assert (await server.rpc("ListTasks", {}, bearer=wrong_aud)).status_code == 401


async def test_users_see_only_their_own_tasks_and_admins_see_all() -> None:
    async with in_process(jwt_secret_key=SECRET) as server:
        alice = await server.client(token("alice"), streaming=False)
        task = (await collect(alice.send_message(send_request(chain("iso-"), message_id="m-iso"))))[
            0
        ].task
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        root = await server.app.state.task_manager.task_repository.get_task_by_id("iso-root")
        assert root.user_id == "alice"

        bob = token("bob")
        for method, params in [
            ("GetTask", {"id": task.id}),
            ("CancelTask", {"id": task.id}),
            ("SubscribeToTask", {"id": task.id}),
            ("ListTaskPushNotificationConfigs", {"taskId": task.id}),
            (
                "CreateTaskPushNotificationConfig",
                {"taskId": task.id, "url": "https://example.com/hook"},
            ),
        ]:
            response = await server.rpc(method, params, bearer=bob)
            body = response.text
            assert '"code":-32001' in body.replace(" ", ""), (method, body)
        listed = await server.rpc("ListTasks", {}, bearer=bob)
        assert listed.json()["result"]["tasks"] == []
        rest = await server.http.get(
            f"/tasks/{task.id}", headers={"Authorization": f"Bearer {bob}", "A2A-Version": "1.0"}
        )
        assert rest.status_code == 404

        admin = token("root", roles=["admin"])
        seen = await server.rpc("GetTask", {"id": task.id}, bearer=admin)
        assert seen.json()["result"]["id"] == task.id
        everyone = await server.rpc("ListTasks", {}, bearer=admin)
        assert [t["id"] for t in everyone.json()["result"]["tasks"]] == [task.id]


async def test_the_owner_comes_from_the_token_never_from_the_message() -> None:
    async with in_process(jwt_secret_key=SECRET) as server:
        params = {
            "message": {
                "messageId": "m1",
                "role": "ROLE_USER",
                "metadata": {"user_id": "bob"},
                "parts": [{"data": {"tasks": chain("meta-")}}],
            },
            "metadata": {"user_id": "bob"},
        }
        response = await server.rpc("SendMessage", params, bearer=token("alice"))
        state = response.json()["result"]["task"]["status"]["state"]
        assert state == "TASK_STATE_COMPLETED", response.text
        root = await server.app.state.task_manager.task_repository.get_task_by_id("meta-root")
        assert root.user_id == "alice"

        tasks = chain("spoof-")
        tasks[0]["user_id"] = "bob"
        spoof = {
            "message": {
                "messageId": "m2",
                "role": "ROLE_USER",
                "parts": [{"data": {"tasks": tasks}}],
            }
        }
        refused = await server.rpc("SendMessage", spoof, bearer=token("alice"))
        assert refused.json()["error"]["code"] == -32602
        assert "authenticated user" in refused.json()["error"]["message"]


async def test_rs256_with_a_public_key() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    good = jwt.encode({"sub": "carol", "exp": int(time.time()) + 86400}, private, algorithm="RS256")
    forged = (
        jwt.encode({"sub": "carol", "exp": int(time.time()) + 86400}, public, algorithm="HS256")
        if False
        else token("carol")
    )
    async with in_process(jwt_public_key=public) as server:
        assert (await server.rpc("ListTasks", {}, bearer=good)).status_code == 200
        assert (await server.rpc("ListTasks", {}, bearer=forged)).status_code == 401


def test_non_loopback_bind_needs_auth_or_insecure() -> None:
    with pytest.raises(ConfigurationError, match=r"refusing to listen on 0\.0\.0\.0"):
        ServerSettings.from_env(host="0.0.0.0").check_bind()
    ServerSettings.from_env(host="0.0.0.0", insecure=True).check_bind()
    ServerSettings.from_env(host="0.0.0.0", jwt_secret_key=SECRET).check_bind()
    ServerSettings.from_env(host="::1").check_bind()
    ServerSettings.from_env(host="localhost").check_bind()
    with pytest.raises(ConfigurationError, match="refusing"):
        serve(host="10.1.2.3", port=0)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIPARTNERUPFLOW_API_PORT", "9123")
    monkeypatch.setenv("AIPARTNERUPFLOW_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("AIPARTNERUPFLOW_JWT_SECRET_KEY", SECRET)
    settings = ServerSettings.from_env(host="127.0.0.2")
    assert settings.port == 9123
    assert settings.host == "127.0.0.2"
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.auth_enabled
    assert SECRET not in repr(settings)
    monkeypatch.setenv("AIPARTNERUPFLOW_CORS_ORIGINS", "*")
    with pytest.raises(ConfigurationError, match="CORS"):
        ServerSettings.from_env()
