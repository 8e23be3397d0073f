"""Helpers of the dashboard tests: Debian's chromium under Playwright, a logged-in page,
executors the tests steer, and reading the page's state."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import uvicorn
from a2a_helpers import SECRET, Server, token
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright

from aipartnerupflow import BaseTask
from aipartnerupflow.api import ServerSettings, create_app

#: Debian's chromium; Playwright never downloads a browser here.
CHROMIUM = os.environ.get("APFLOW_TEST_CHROMIUM", "/usr/bin/chromium")
#: Where the tests save screenshots (printed by the tests that write one).
SCREENSHOTS = Path(os.environ.get("APFLOW_TEST_SCREENSHOTS", "/tmp/apflow-ui-screens"))


class Hold(BaseTask):
    """Waits on a named gate; records when it starts and when it is cancelled."""

    id = "ui_test_hold"
    name = "Hold"
    description = "Waits until the test releases it."
    inputs_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"gate": {"type": "string", "description": "gate name"}},
        "required": ["gate"],
    }
    gates: ClassVar[dict[str, asyncio.Event]] = {}
    started: ClassVar[list[str]] = []
    cancelled: ClassVar[list[str]] = []

    @classmethod
    def gate(cls, name: str) -> asyncio.Event:
        return cls.gates.setdefault(name, asyncio.Event())

    async def execute(self, inputs: dict[str, Any]) -> Any:
        name = str(inputs["gate"])
        Hold.started.append(name)
        self.report_progress(0.25, "holding")
        try:
            await Hold.gate(name).wait()
        except asyncio.CancelledError:
            Hold.cancelled.append(name)
            raise
        return {"released": name}


class Flaky(BaseTask):
    """Fails its first attempt of a key, succeeds afterwards."""

    id = "ui_test_flaky"
    name = "Flaky"
    description = "Fails once per key."
    seen: ClassVar[set[str]] = set()

    async def execute(self, inputs: dict[str, Any]) -> Any:
        key = str(inputs.get("key", "k"))
        if key not in Flaky.seen:
            Flaky.seen.add(key)
            raise RuntimeError(f"first attempt of {key} fails")
        return {"key": key, "ok": True}


def reset_executors() -> None:
    Hold.gates, Hold.started, Hold.cancelled = {}, [], []
    Flaky.seen = set()


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Headless Debian chromium; a missing browser fails the test (it is a test dependency)."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"chromium is not installed at {CHROMIUM}: run `apt-get install -y chromium` "
            "(.ci/run does) or set APFLOW_TEST_CHROMIUM to a Chromium executable"
        )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            yield browser
        finally:
            await browser.close()


@contextlib.asynccontextmanager
async def dashboard(**settings: Any) -> AsyncIterator[Server]:
    """The server under uvicorn on loopback with the dashboard and JWT auth on.

    Requests still open at the end (a run the browser was waiting for) get a second to
    finish, so a failing test reports its failure instead of waiting on shutdown.
    """
    options: dict[str, Any] = {"ui": True, "jwt_secret_key": SECRET, **settings}
    holder: dict[str, Any] = {}

    async def trampoline(scope: Any, receive: Any, send: Any) -> None:
        await holder["app"](scope, receive, send)

    config = uvicorn.Config(
        trampoline,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    app = create_app(
        ServerSettings.from_env(
            database_url="duckdb:///:memory:", port=port, base_url=base, **options
        )
    )
    holder["app"] = app
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(base_url=base, timeout=30) as http,
        ):
            yield Server(app, base, http, False)
    finally:
        server.should_exit = True
        await serving


async def new_page(browser: Browser, server: Server, *, width: int = 1360) -> Page:
    context = await browser.new_context(
        base_url=server.base_url, viewport={"width": width, "height": 900}
    )
    context.set_default_timeout(30_000)
    page = await context.new_page()
    page.on("pageerror", lambda exc: _page_errors.append(str(exc)))
    page.on("console", _console)
    return page


_page_errors: list[str] = []


def _console(message: ConsoleMessage) -> None:
    """Console errors (a Content-Security-Policy violation, a failed module) count as page
    errors; a refused request (the 401 of a visitor who is not logged in) does not."""
    if message.type == "error" and not message.text.startswith("Failed to load resource"):
        _page_errors.append(message.text)


def take_page_errors() -> list[str]:
    """Script errors of the pages since the last call."""
    found = list(_page_errors)
    _page_errors.clear()
    return found


async def log_in(page: Page, user: str = "alice", **claims: Any) -> None:
    """Open the dashboard and log in with a token for ``user``."""
    await page.goto("/ui/")
    await page.fill("#token", token(user, **claims))
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("#nav:not([hidden])")


async def rpc(
    server: Server, method: str, params: Any, *, user: str = "alice", **claims: Any
) -> Any:
    response = await server.http.post(
        "/tasks",
        json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
        headers={"Authorization": f"Bearer {token(user, **claims)}"},
    )
    body = response.json()
    assert "error" not in body, body
    return body["result"]


async def activity(page: Page) -> list[tuple[str, str, str]]:
    """The tree view's activity log as (kind, task id, status), in page order."""
    rows: list[list[str]] = await page.eval_on_selector_all(
        "#activity li",
        "items => items.map(li => [li.dataset.kind, li.dataset.taskId, li.dataset.status])",
    )
    return [(kind, task_id, status) for kind, task_id, status in rows]
