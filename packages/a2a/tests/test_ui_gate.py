"""The dashboard's gate without a browser: what /ui serves, the login endpoints, and when the
login cookie stands for a bearer token (only for the dashboard's own requests)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
import websockets
from a2a_helpers import SECRET, over_http, token
from ui_helpers import dashboard
from websockets.typing import Origin

from aipartnerupflow.api import ServerSettings
from aipartnerupflow.api.main import build_parser
from aipartnerupflow.api.ui import COOKIE_NAME, STATIC_DIR, UI_HEADER
from aipartnerupflow.core.errors import ConfigurationError

LIST = {"jsonrpc": "2.0", "id": 1, "method": "tasks.list", "params": {}}


async def _login(http: httpx.AsyncClient, bearer: str) -> httpx.Response:
    return await http.post("/ui/login", json={"token": bearer}, headers={UI_HEADER: "1"})


def test_the_dashboard_is_off_by_default_and_needs_the_flow_agent() -> None:
    assert ServerSettings.from_env({}).ui is False
    assert ServerSettings.from_env({"AIPARTNERUPFLOW_UI": "true"}).ui is True
    with pytest.raises(ConfigurationError, match="needs the 'flow' agent"):
        ServerSettings.from_env({}, ui=True, agent="tck")
    assert build_parser().parse_args(["--ui"]).ui is True
    assert build_parser().parse_args([]).ui is None


async def test_without_the_setting_nothing_is_served_at_ui() -> None:
    async with over_http(jwt_secret_key=SECRET) as server:
        assert (await server.http.get("/ui/")).status_code == 401
    async with over_http() as server:
        assert (await server.http.get("/ui/")).status_code == 404


async def test_the_page_and_its_assets_are_served_with_a_strict_policy() -> None:
    async with dashboard() as server:
        http = server.http
        redirect = await http.get("/ui")
        assert redirect.status_code == 308 and redirect.headers["location"] == "/ui/"
        page = await http.get("/ui/")
        assert page.status_code == 200 and 'id="login"' in page.text
        policy = page.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert page.headers["x-content-type-options"] == "nosniff"
        for asset in sorted(STATIC_DIR.iterdir()):
            response = await http.get(f"/ui/{asset.name}")
            assert response.status_code == 200, asset.name
            assert response.content == asset.read_bytes()
        assert (await http.get("/ui/app.js")).headers["content-type"].split(";")[0] in {
            "text/javascript",
            "application/javascript",
        }
        assert (await http.get("/ui/%2e%2e/config.py")).status_code == 404
        assert (await http.get("/ui/missing.js")).status_code == 404
        # Nothing in the page is fetched from elsewhere.
        for asset in STATIC_DIR.iterdir():
            text = asset.read_text()
            assert "http://" not in text.replace("http://www.w3.org/2000/svg", ""), asset.name
            assert "https://" not in text, asset.name


async def test_login_refuses_bad_input_with_a_reason() -> None:
    async with dashboard() as server:
        http = server.http
        missing_header = await http.post("/ui/login", json={"token": token()})
        assert missing_header.status_code == 403 and UI_HEADER in missing_header.json()["message"]
        cases: list[tuple[Any, int, str]] = [
            (b"not json", 400, '{"token"'),
            (json.dumps({"token": ""}).encode(), 400, '{"token"'),
            (json.dumps({"token": ["x"]}).encode(), 400, '{"token"'),
            (json.dumps({"token": "a;b=c"}).encode(), 401, "not a JWT"),
            (json.dumps({"token": token(expires_in=-10)}).encode(), 401, "expired"),
            (json.dumps({"token": token() + "x"}).encode(), 401, "not valid"),
            (b"{" + b" " * 20_000 + b"}", 413, "at most"),
        ]
        for body, status, words in cases:
            response = await http.post("/ui/login", content=body, headers={UI_HEADER: "1"})
            assert response.status_code == status, (body[:40], response.text)
            assert words in response.json()["message"]
            assert "set-cookie" not in response.headers


async def test_login_sets_an_http_only_strict_cookie_and_logout_clears_it() -> None:
    async with dashboard() as server:
        http = server.http
        bearer = token("alice", expires_in=600)
        response = await _login(http, "Bearer " + bearer)
        assert response.status_code == 200
        assert response.json()["user_id"] == "alice" and response.json()["admin"] is False
        assert bearer not in response.text
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE_NAME}={bearer};")
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        max_age = int(cookie.split("Max-Age=")[1].split(";")[0])
        assert 590 <= max_age <= 600
        assert (await http.get("/ui/session", headers={UI_HEADER: "1"})).json()[
            "user_id"
        ] == "alice"
        out = await http.post("/ui/logout", headers={UI_HEADER: "1"})
        assert "Max-Age=0" in out.headers["set-cookie"]
        assert (await http.get("/ui/session")).status_code == 401


async def test_a_long_lived_token_logs_in_for_twelve_hours_at_most() -> None:
    async with dashboard() as server:
        response = await _login(server.http, token("alice", expires_in=30 * 86400))
        max_age = int(response.headers["set-cookie"].split("Max-Age=")[1].split(";")[0])
        assert 12 * 3600 - 5 <= max_age <= 12 * 3600


async def test_the_cookie_counts_only_for_the_dashboards_own_requests() -> None:
    async with dashboard() as server:
        await server.http.post(
            "/tasks",
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tasks.create",
                "params": {
                    "tasks": [{"id": "b1", "name": "b", "schemas": {"method": "a2a_test_echo"}}]
                },
            },
            headers={"Authorization": f"Bearer {token('bob')}"},
        )
        cookies = {COOKIE_NAME: token("alice")}
        async with httpx.AsyncClient(base_url=server.base_url, cookies=cookies) as http:
            # A cross-site form or script cannot add the header: the cookie alone is nothing.
            assert (await http.post("/tasks", json=LIST)).status_code == 401
            mine = await http.post("/tasks", json=LIST, headers={UI_HEADER: "1"})
            assert mine.status_code == 200 and mine.json()["result"] == []
            # An explicit bearer token wins over the cookie.
            bob = await http.post(
                "/tasks",
                json=LIST,
                headers={UI_HEADER: "1", "Authorization": f"Bearer {token('bob')}"},
            )
            assert [t["id"] for t in bob.json()["result"]] == ["b1"]
            # A forged cookie is refused by the ordinary auth check.
            http.cookies.set(COOKIE_NAME, token("alice") + "x")
            assert (
                await http.post("/tasks", json=LIST, headers={UI_HEADER: "1"})
            ).status_code == 401


async def test_the_websocket_takes_the_cookie_only_from_the_servers_own_origin() -> None:
    async with dashboard() as server:
        await server.http.post(
            "/tasks",
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tasks.create",
                "params": {
                    "tasks": [{"id": "w1", "name": "w", "schemas": {"method": "a2a_test_echo"}}]
                },
            },
            headers={"Authorization": f"Bearer {token('alice')}"},
        )
        await server.http.post(
            "/tasks",
            json={
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tasks.execute",
                "params": {"task_id": "w1"},
            },
            headers={"Authorization": f"Bearer {token('alice')}"},
        )
        url = server.base_url.replace("http://", "ws://") + "/ws/trees/w1"
        cookie = {"Cookie": f"{COOKIE_NAME}={token('alice')}"}
        own = Origin(server.base_url)
        async with websockets.connect(url, additional_headers=cookie, origin=own) as ws:
            first = json.loads(await ws.recv())
            assert first["kind"] == "tree_finished" and first["status"] == "completed"
        origins: list[Origin | None] = [Origin("http://evil.example"), None]
        for origin in origins:
            # Refused before the handshake completes (the auth middleware's close).
            with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
                async with websockets.connect(url, additional_headers=cookie, origin=origin):
                    pass
            assert refused.value.response.status_code == 403


async def test_without_auth_the_page_is_the_local_operator() -> None:
    async with dashboard(jwt_secret_key=None) as server:
        session = (await server.http.get("/ui/session")).json()
        assert session == {"auth": False, "user_id": None, "admin": True, "expires_at": None}
        refused = await server.http.post("/ui/login", json={"token": "x"}, headers={UI_HEADER: "1"})
        assert refused.status_code == 400 and "no authentication" in refused.json()["message"]


def test_login_lifetime_is_bounded_even_for_odd_expiry_claims() -> None:
    from aipartnerupflow.api.ui.session import login_cookie

    assert "Max-Age=0" in login_cookie("a.b.c", time.time() - 100, secure=False)
    assert login_cookie("a.b.c", None, secure=True).endswith("; Secure")


async def test_a_client_leaving_a_quiet_tree_ends_its_subscription() -> None:
    """The dashboard watches pending trees: a closed page must not leave a subscriber behind."""
    async with dashboard() as server:
        bearer = {"Authorization": f"Bearer {token('alice')}"}
        await server.http.post(
            "/tasks",
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tasks.create",
                "params": {
                    "tasks": [{"id": "q1", "name": "q", "schemas": {"method": "a2a_test_echo"}}]
                },
            },
            headers=bearer,
        )
        bus = server.app.state.task_manager.events
        url = server.base_url.replace("http://", "ws://") + "/ws/trees/q1"
        async with websockets.connect(url, additional_headers=bearer):
            for _ in range(500):
                if bus._subscribers:
                    break
                await asyncio.sleep(0.01)
            assert len(bus._subscribers) == 1
        for _ in range(500):
            if not bus._subscribers:
                break
            await asyncio.sleep(0.01)
        assert bus._subscribers == set()
