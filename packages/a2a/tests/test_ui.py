"""The dashboard in headless Chromium (Playwright driving Debian's chromium) against the real
server under uvicorn on loopback: login, isolation, live tree view, actions, executors page,
and the trees list over 10,000 stored trees (measured and printed, not asserted)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from a2a_helpers import Server
from playwright.async_api import Page
from ui_helpers import (
    SCREENSHOTS,
    Flaky,
    Hold,
    activity,
    chromium,
    dashboard,
    log_in,
    new_page,
    reset_executors,
    rpc,
    take_page_errors,
)

from aipartnerupflow import executor_register
from aipartnerupflow.core.models import TaskModel
from aipartnerupflow.core.registry import get_executor_registry


@pytest.fixture(autouse=True)
def ui_executors() -> Iterator[None]:
    reset_executors()
    for cls in (Hold, Flaky):
        executor_register(override=True)(cls)
    take_page_errors()
    yield
    for cls in (Hold, Flaky):
        get_executor_registry().unregister(cls.id)
    assert take_page_errors() == [], "the page raised script errors"


def _one(ident: str, name: str) -> dict[str, Any]:
    return {"id": ident, "name": name, "schemas": {"method": "a2a_test_echo"}}


def _pipeline(prefix: str) -> list[dict[str, Any]]:
    """fetch -> (hold, echo) -> report: a diamond, the root depending on nothing."""

    def task(ident: str, method: str, **extra: Any) -> dict[str, Any]:
        return {"id": f"{prefix}{ident}", "name": ident, "schemas": {"method": method}, **extra}

    return [
        task("pipeline", "a2a_test_echo", inputs={"text": "root"}),
        task("fetch", "a2a_test_echo", parent_id=f"{prefix}pipeline", inputs={"text": "f"}),
        task(
            "hold",
            "ui_test_hold",
            parent_id=f"{prefix}pipeline",
            dependencies=[{"id": f"{prefix}fetch", "required": True}],
            inputs={"gate": f"{prefix}gate"},
        ),
        task(
            "transform",
            "a2a_test_echo",
            parent_id=f"{prefix}pipeline",
            dependencies=[{"id": f"{prefix}fetch", "required": True}],
            inputs={"text": "t"},
        ),
        task(
            "report",
            "a2a_test_echo",
            parent_id=f"{prefix}pipeline",
            dependencies=[
                {"id": f"{prefix}hold", "required": True},
                {"id": f"{prefix}transform", "required": True},
            ],
            inputs={"text": "r"},
        ),
    ]


async def _node_status(page: Page, task_id: str, status: str) -> None:
    await page.wait_for_selector(f'#graph g.node[data-task-id="{task_id}"][data-status="{status}"]')


async def _open_tree(page: Page, root_id: str) -> None:
    await page.goto(f"/ui/#/tree/{root_id}")
    await page.wait_for_selector('#live[data-state="open"]')


async def _record_events(server: Server, root_id: str) -> tuple[asyncio.Task[Any], asyncio.Event]:
    """Collect the tree's events on the server side, in order, until the run ends."""
    ready = asyncio.Event()

    async def collect() -> list[tuple[str, str, str]]:
        seen = []
        async with server.app.state.task_manager.subscribe(root_id) as events:
            ready.set()
            async for event in events:
                seen.append((event.kind, event.task_id, event.status))
        return seen

    return asyncio.create_task(collect()), ready


# -- login and isolation --------------------------------------------------------------------


async def test_an_unauthenticated_visitor_sees_only_the_login() -> None:
    async with dashboard() as server, chromium() as browser:
        await rpc(server, "tasks.create", {"tasks": [_one("secret-tree", "secret")]})
        page = await new_page(browser, server)
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        for path in ("/ui/", "/ui/#/trees", "/ui/#/tree/secret-tree", "/ui/#/executors"):
            await page.goto(path)
            await page.wait_for_selector("#login:not([hidden])")
            assert await page.is_hidden("#view")
            assert await page.is_hidden("#nav")
            assert "secret" not in await page.inner_text("body")
        # The API refuses the page's own requests without a login.
        status = await page.evaluate(
            """() => fetch('/tasks', {method: 'POST', headers: {'x-apflow-ui': '1',
            'content-type': 'application/json'}, body: JSON.stringify({jsonrpc: '2.0', id: 1,
            method: 'tasks.list', params: {}})}).then(r => r.status)"""
        )
        assert status == 401
        # A forged token is refused with a reason, and nothing is shown.
        await page.fill("#token", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.c2lnbmF0dXJl")
        await page.click("#login-form button[type=submit]")
        await page.wait_for_selector("#login-error:has-text('not valid for this server')")
        assert await page.is_hidden("#view")
        # Everything the page loaded came from the server itself.
        assert requests and all(url.startswith(server.base_url) for url in requests), requests


async def test_the_login_lives_in_an_http_only_cookie_and_logout_ends_it() -> None:
    async with dashboard() as server, chromium() as browser:
        page = await new_page(browser, server)
        await log_in(page, "alice")
        cookies = await page.context.cookies()
        (cookie,) = [c for c in cookies if c["name"] == "apflow_ui_token"]
        assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
        assert "apflow_ui_token" not in await page.evaluate("document.cookie")
        assert await page.inner_text("#who") == "alice"
        await page.click("#logout")
        await page.wait_for_selector("#login:not([hidden])")
        await page.reload()
        await page.wait_for_selector("#login:not([hidden])")
        assert [c for c in await page.context.cookies() if c["name"] == "apflow_ui_token"] == []


async def test_a_user_sees_only_their_trees_and_an_admin_sees_all() -> None:
    async with dashboard() as server, chromium() as browser:
        for user in ("alice", "bob"):
            for i in range(3):
                await rpc(
                    server,
                    "tasks.create",
                    {"tasks": [_one(f"{user}-{i}", f"{user} job {i}")]},
                    user=user,
                )
        page = await new_page(browser, server)
        await log_in(page, "alice")
        await page.wait_for_selector('#trees-body tr[data-id="alice-0"]')
        ids = await page.eval_on_selector_all(
            "#trees-body tr", "rows => rows.map(r => r.dataset.id)"
        )
        assert sorted(ids) == ["alice-0", "alice-1", "alice-2"]
        assert await page.inner_text('.chip[data-status="all"] .count') == "3"
        assert await page.query_selector("#tree-owner") is None  # no owner filter for users
        # Another user's tree is not found, even by its id.
        await page.goto("/ui/#/tree/bob-0")
        await page.wait_for_selector("#tree-error")
        assert "no task with id 'bob-0'" in await page.inner_text("#tree-error")
        assert "bob job" not in await page.inner_text("body")

        admin = await new_page(browser, server)
        await log_in(admin, "root", roles=["admin"])
        await admin.wait_for_selector('#trees-body tr[data-id="bob-0"]')
        assert await admin.inner_text('.chip[data-status="all"] .count') == "6"
        await admin.fill("#tree-owner", "bob")
        await admin.wait_for_function(
            "() => [...document.querySelectorAll('#trees-body tr')]"
            ".every(r => r.dataset.id?.startsWith('bob-'))"
        )
        assert await admin.inner_text('.chip[data-status="all"] .count') == "3"


async def test_search_status_filter_sorting_and_paging() -> None:
    async with dashboard() as server, chromium() as browser:
        for i in range(30):
            await rpc(server, "tasks.create", {"tasks": [_one(f"t{i:02d}", f"job {i:02d}")]})
        await rpc(server, "tasks.update", {"task_id": "t07", "status": "cancelled"})
        page = await new_page(browser, server)
        await log_in(page)
        await page.select_option("#tree-size", "25")
        await page.wait_for_selector("#page-info:has-text('Page 1 of 2 · 30 trees')")
        assert await page.get_attribute("#trees-body tr:first-child", "data-id") == "t29"
        await page.select_option("#tree-order", "oldest")
        await page.wait_for_selector('#trees-body tr:first-child[data-id="t00"]')
        await page.click("#next-page")
        await page.wait_for_selector("#page-info:has-text('Page 2 of 2')")
        assert len(await page.query_selector_all("#trees-body tr")) == 5
        await page.click('.chip[data-status="cancelled"]')
        await page.wait_for_selector("#page-info:has-text('1 trees')")
        assert await page.eval_on_selector_all(
            "#trees-body tr", "r => r.map(x => x.dataset.id)"
        ) == ["t07"]
        await page.click('.chip[data-status="all"]')
        await page.fill("#tree-search", "JOB 1")
        await page.wait_for_selector("#page-info:has-text('10 trees')")
        await page.fill("#tree-search", "t2")  # an id prefix
        await page.wait_for_selector("#page-info:has-text('10 trees')")
        assert await page.inner_text('.chip[data-status="pending"] .count') == "10"


# -- the tree view -------------------------------------------------------------------------


async def test_a_running_tree_shows_each_transition_in_order_and_a_screenshot() -> None:
    async with dashboard() as server, chromium() as browser:
        await rpc(server, "tasks.create", {"tasks": _pipeline("p-")})
        page = await new_page(browser, server)
        await log_in(page)
        await _open_tree(page, "p-pipeline")
        for ident in ("pipeline", "fetch", "hold", "transform", "report"):
            await _node_status(page, f"p-{ident}", "pending")
        # The graph is laid out from the dependencies: each column right of what it needs.
        x = {
            ident: (
                await page.eval_on_selector(
                    f'g.node[data-task-id="p-{ident}"]', "g => g.getCTM().e"
                )
            )
            for ident in ("fetch", "hold", "transform", "report")
        }
        assert x["fetch"] < x["hold"] == x["transform"] < x["report"]
        assert len(await page.query_selector_all("#graph path.edge.dependency")) == 4

        collector, ready = await _record_events(server, "p-pipeline")
        await ready.wait()
        await page.click("#run-tree")
        await _node_status(page, "p-hold", "in_progress")
        await _node_status(page, "p-transform", "completed")
        await _node_status(page, "p-report", "pending")  # waits for hold
        assert await page.inner_text("#view") and "hold" in await page.inner_text("#activity")
        Hold.gate("p-gate").set()
        await page.wait_for_selector('#view[data-tree-status="completed"]')
        server_events = await collector
        await page.wait_for_function(
            f"() => document.querySelectorAll('#activity li').length >= {len(server_events)}"
        )
        assert await activity(page) == server_events
        kinds = [kind for kind, _, _ in server_events]
        assert kinds[0] == "tree_started" and kinds[-1] == "tree_finished"
        for ident in ("fetch", "hold", "transform", "report"):
            mine = [s for k, t, s in server_events if t == f"p-{ident}" and k == "task_status"]
            assert mine == ["in_progress", "completed"], (ident, mine)
        # Details, timeline and result of a task.
        await page.click('#graph g.node[data-task-id="p-hold"]')
        await page.wait_for_selector('#details:has-text("released")')
        assert await page.inner_text('#tasks-body tr[data-task-id="p-hold"] td:nth-child(5)') == "1"
        await page.wait_for_selector('#timeline rect.span[data-task-id="p-report"]')
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOTS / "tree-view.png"
        await page.evaluate("document.getElementById('flash').hidden = true")
        await page.screenshot(path=str(shot), full_page=True)
        print(f"\ntree-view screenshot: {shot}")
        assert shot.stat().st_size > 10_000


async def test_cancel_from_the_page_stops_the_running_executor() -> None:
    async with dashboard() as server, chromium() as browser:
        await rpc(server, "tasks.create", {"tasks": _pipeline("c-")})
        page = await new_page(browser, server)
        await log_in(page)
        await _open_tree(page, "c-pipeline")
        await page.click("#run-tree")
        await _node_status(page, "c-hold", "in_progress")
        assert Hold.started == ["c-gate"] and Hold.cancelled == []
        await page.click("#cancel-tree")
        await page.wait_for_selector('#view[data-tree-status="cancelled"]')
        await _node_status(page, "c-hold", "cancelled")
        assert Hold.cancelled == ["c-gate"]  # the executor itself was interrupted
        stored = await rpc(server, "tasks.get", {"task_id": "c-hold"})
        assert stored["status"] == "cancelled"
        assert (await rpc(server, "tasks.get", {"task_id": "c-report"}))["status"] != "completed"


async def test_rerun_failed_and_copy_from_the_page() -> None:
    async with dashboard() as server, chromium() as browser:
        tasks = [
            {"id": "f-root", "name": "flaky tree", "schemas": {"method": "a2a_test_echo"}},
            {
                "id": "f-step",
                "name": "step",
                "parent_id": "f-root",
                "schemas": {"method": "ui_test_flaky"},
                "inputs": {"key": "f"},
            },
        ]
        await rpc(server, "tasks.create", {"tasks": tasks})
        page = await new_page(browser, server)
        await log_in(page)
        await _open_tree(page, "f-root")
        await page.click("#run-tree")
        await _node_status(page, "f-step", "failed")
        await page.click('#graph g.node[data-task-id="f-step"]')
        await page.wait_for_selector("#details .error-block:has-text('first attempt of f fails')")
        await page.wait_for_selector("#rerun-failed:not([disabled])")
        await page.click("#rerun-failed")
        await _node_status(page, "f-step", "completed")
        await page.wait_for_selector('#view[data-tree-status="completed"]')
        assert (await rpc(server, "tasks.get", {"task_id": "f-step"}))["result"] == {
            "key": "f",
            "ok": True,
        }
        await page.click("#copy-tree")
        await page.wait_for_function("() => !location.hash.includes('f-root')")
        copy_id = (await page.evaluate("location.hash")).removeprefix("#/tree/")
        await page.wait_for_selector('#view[data-tree-status="pending"]')
        copy = await rpc(server, "tasks.get", {"task_id": copy_id})
        assert copy["status"] == "pending" and copy["original_task_id"] == "f-root"


# -- executors -----------------------------------------------------------------------------


async def test_the_executors_page_runs_a_one_task_tree_from_the_schema_form() -> None:
    async with dashboard() as server, chromium() as browser:
        page = await new_page(browser, server)
        await log_in(page)
        await page.click('a[data-nav="executors"]')
        echo = 'details[data-executor="a2a_test_echo"]'
        await page.wait_for_selector(echo)
        await page.click(f"{echo} summary")
        assert '"text"' in await page.inner_text(f"{echo} pre.schema")
        await page.fill(f"{echo} #field-text", "hello from the form")
        await page.click(f"{echo} button[type=submit]")
        await page.wait_for_selector('#view[data-tree-status="completed"]')
        await page.wait_for_selector('#details:has-text("hello from the form")')
        root_id = (await page.evaluate("location.hash")).removeprefix("#/tree/").split("?")[0]
        stored = await rpc(server, "tasks.get", {"task_id": root_id})
        assert stored["result"] == {"echo": {"text": "hello from the form"}}
        assert stored["user_id"] == "alice" and stored["parent_id"] is None
        # A required field left empty is refused by the form, nothing is created.
        hold = 'details[data-executor="ui_test_hold"]'
        await page.click('a[data-nav="executors"]')
        await page.click(f"{hold} summary")
        await page.click(f"{hold} button[type=submit]")
        assert await page.evaluate(f"!document.querySelector('{hold} form').checkValidity()")
        assert (await rpc(server, "tasks.count", {"root_only": True}))["total"] == 1


# -- scale ---------------------------------------------------------------------------------


async def test_the_trees_list_of_10000_stored_trees_renders(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with dashboard() as server, chromium() as browser:
        start = datetime(2026, 1, 1, tzinfo=UTC)
        statuses = ["completed", "failed", "pending", "cancelled"]
        trees = [
            TaskModel(
                id=f"bulk-{i:05d}",
                name=f"nightly batch {i:05d}",
                user_id="alice",
                status=statuses[i % 4],
                schemas={"method": "a2a_test_echo"},
                inputs={"n": i},
                result={"rows": i} if i % 4 == 0 else None,
                created_at=start + timedelta(seconds=i),
            )
            for i in range(10_000)
        ]
        await server.app.state.storage.insert_tasks(trees)
        page = await new_page(browser, server)
        await log_in(page)
        figures = {}
        for size in (50, 1000):
            began = time.perf_counter()
            await page.goto(f"/ui/#/trees?size={size}")
            await page.reload()
            await page.wait_for_selector(f'#view[data-rows="{size}"]')
            wall = time.perf_counter() - began
            in_page = int(await page.get_attribute("#view", "data-render-ms") or -1)
            figures[size] = (wall, in_page)
            assert await page.inner_text('.chip[data-status="all"] .count') == "10000"
            assert await page.get_attribute("#trees-body tr:first-child", "data-id") == "bulk-09999"
        await page.click("#next-page")
        await page.wait_for_selector('#trees-body tr:first-child[data-id="bulk-08999"]')
        await page.select_option("#tree-size", "25")
        await page.wait_for_selector('#view[data-rows="25"]')
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOTS / "trees-list.png"
        await page.evaluate("window.scrollTo(0, 0)")
        await page.screenshot(path=str(shot))
        with capsys.disabled():
            print(f"\ntrees-list screenshot: {shot}")
            for size, (wall, in_page) in figures.items():
                print(
                    f"\ntrees list, 10,000 stored trees, page of {size}: {wall * 1000:.0f} ms from "
                    f"load to rows shown; {in_page} ms requests + render inside the page"
                )
