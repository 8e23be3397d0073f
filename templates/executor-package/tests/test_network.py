"""Behaviour of example_fetch itself (the contract suite is in test_contract.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aipartnerupflow.core.errors import OutboundPolicyError, PermanentError, RetryableError
from aipartnerupflow.core.settings import reload_settings
from aipartnerupflow.extensions.example.network import ExampleFetchExecutor
from aipartnerupflow.testing.fixtures import RunTree
from aipartnerupflow.testing.http_target import HttpTarget


@pytest.fixture(autouse=True)
def _allow_loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AIPARTNERUPFLOW_EXAMPLE_ALLOW_PRIVATE", "1")
    reload_settings()
    yield
    reload_settings()


async def test_fetches_a_page(http_target: HttpTarget) -> None:
    result = await ExampleFetchExecutor().execute({"url": f"{http_target.url}/text"})
    assert result["status"] == 200
    assert result["body"] == "héllo wörld"
    assert result["body_truncated"] is False


async def test_body_is_capped(http_target: HttpTarget) -> None:
    url = f"{http_target.url}/big/5000"
    result = await ExampleFetchExecutor().execute({"url": url, "max_bytes": 10})
    assert (result["body"], result["body_truncated"], result["body_size"]) == ("y" * 10, True, 5000)


async def test_errors_are_permanent_or_retryable(http_target: HttpTarget) -> None:
    with pytest.raises(PermanentError, match="404"):
        await ExampleFetchExecutor().execute({"url": f"{http_target.url}/status/404"})
    with pytest.raises(RetryableError) as retry:
        await ExampleFetchExecutor().execute({"url": f"{http_target.url}/status/503?retry_after=7"})
    assert retry.value.retry_after == 7


async def test_loopback_is_denied_unless_allowed(
    http_target: HttpTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIPARTNERUPFLOW_EXAMPLE_ALLOW_PRIVATE")
    reload_settings()
    with pytest.raises(OutboundPolicyError, match="AIPARTNERUPFLOW_EXAMPLE_ALLOW_PRIVATE"):
        await ExampleFetchExecutor().execute({"url": f"{http_target.url}/echo"})
    assert http_target.state.requests == []


async def test_runs_in_a_task_tree_after_a_dependency(
    run_tree: RunTree, http_target: HttpTarget
) -> None:
    result = await run_tree(
        [
            {
                "id": "a",
                "name": "first",
                "schemas": {"method": "example_fetch"},
                "inputs": {"url": f"{http_target.url}/text"},
            },
            {
                "id": "b",
                "name": "second",
                "schemas": {"method": "example_fetch"},
                "parent_id": "a",
                "dependencies": [{"id": "a"}],
                "inputs": {"url": f"{http_target.url}/echo"},
            },
        ]
    )
    assert result.status == "completed", result.task("b").error
    assert result.task("b").result["status"] == 200
