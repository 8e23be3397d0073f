"""Authentication kinds; permanent and retryable failures, and retries owned by the engine."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, ClassVar

import pytest
import pytest_asyncio

from aipartnerupflow import TaskManager, create_session
from aipartnerupflow.core.errors import (
    ConfigurationError,
    InputValidationError,
    OutboundPolicyError,
    PermanentError,
    RetryableError,
)
from aipartnerupflow.core.registry import ExecutorRegistry
from aipartnerupflow.extensions.http import (
    HttpConnectionError,
    HttpTimeoutError,
    PermanentHttpStatusError,
    RestExecutor,
    RetryableHttpStatusError,
)
from aipartnerupflow.extensions.http.policy import ENV_SECRET_ENV


async def run(inputs: dict[str, Any]) -> dict[str, Any]:
    return await RestExecutor().execute(inputs)


def sent_headers(server: Any) -> dict[str, str]:
    headers: dict[str, str] = server.state.requests[-1]["headers"]
    return headers


# -- auth -----------------------------------------------------------------------------------


async def test_bearer(http_server: Any) -> None:
    await run({"url": http_server.url + "/echo", "auth": {"type": "bearer", "token": "tok-123"}})
    assert sent_headers(http_server)["authorization"] == "Bearer tok-123"


async def test_basic(http_server: Any) -> None:
    await run(
        {
            "url": http_server.url + "/echo",
            "auth": {"type": "basic", "username": "ann", "password": "pw-456"},
        }
    )
    expected = "Basic " + base64.b64encode(b"ann:pw-456").decode()
    assert sent_headers(http_server)["authorization"] == expected


async def test_basic_from_url_userinfo(http_server: Any) -> None:
    url = http_server.url.replace("http://", "http://bob:pw%40789@") + "/echo"
    result = await run({"url": url})
    expected = "Basic " + base64.b64encode(b"bob:pw@789").decode()
    assert sent_headers(http_server)["authorization"] == expected
    assert result["url"] == http_server.url + "/echo"


@pytest.mark.parametrize(
    ("auth", "header"),
    [
        ({"type": "api_key", "value": "key-1"}, "x-api-key"),
        ({"type": "api_key", "name": "X-Token", "value": "key-1"}, "x-token"),
        ({"type": "apikey", "key": "X-Token", "value": "key-1", "location": "header"}, "x-token"),
    ],
)
async def test_api_key_in_header(http_server: Any, auth: dict[str, Any], header: str) -> None:
    await run({"url": http_server.url + "/echo", "auth": auth})
    assert sent_headers(http_server)[header] == "key-1"


async def test_api_key_in_query(http_server: Any) -> None:
    result = await run(
        {
            "url": http_server.url + "/echo?a=1",
            "auth": {"type": "api_key", "name": "access", "value": "key-2", "in": "query"},
        }
    )
    assert http_server.state.requests[-1]["query"] == [("a", "1"), ("access", "key-2")]
    assert result["url"] == http_server.url + "/echo?a=1&access=***"


async def test_secret_from_an_allowed_environment_variable(
    http_server: Any, monkeypatch: pytest.MonkeyPatch, set_env: Any
) -> None:
    monkeypatch.setenv("MY_API_TOKEN", "env-token-1")
    set_env(ENV_SECRET_ENV, "OTHER, MY_API_TOKEN")
    await run(
        {"url": http_server.url + "/echo", "auth": {"type": "bearer", "token_env": "MY_API_TOKEN"}}
    )
    assert sent_headers(http_server)["authorization"] == "Bearer env-token-1"


async def test_environment_variable_not_listed_is_refused(
    http_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "must-not-leak")
    with pytest.raises(InputValidationError, match=ENV_SECRET_ENV):
        await run(
            {
                "url": http_server.url + "/echo",
                "auth": {"type": "api_key", "value_env": "OPENAI_API_KEY"},
            }
        )
    assert http_server.state.requests == []


async def test_environment_variable_unset(
    http_server: Any, monkeypatch: pytest.MonkeyPatch, set_env: Any
) -> None:
    set_env(ENV_SECRET_ENV, "UNSET_TOKEN_VAR")
    monkeypatch.delenv("UNSET_TOKEN_VAR", raising=False)
    with pytest.raises(ConfigurationError, match="UNSET_TOKEN_VAR"):
        await run(
            {
                "url": http_server.url + "/echo",
                "auth": {"type": "bearer", "token_env": "UNSET_TOKEN_VAR"},
            }
        )


async def test_bearer_without_token(http_server: Any) -> None:
    with pytest.raises(InputValidationError, match="needs 'token'"):
        await run({"url": http_server.url + "/echo", "auth": {"type": "bearer"}})


# -- failures are permanent or retryable; the engine owns retries -------------------------


async def test_retryable_status_carries_retry_after_seconds(http_server: Any) -> None:
    http_server.state.flaky_left = 1
    http_server.state.flaky_retry_after = "3"
    with pytest.raises(RetryableHttpStatusError) as info:
        await run({"url": http_server.url + "/flaky"})
    assert isinstance(info.value, RetryableError)
    assert info.value.status_code == 503
    assert info.value.retry_after == 3.0
    assert len(http_server.state.requests) == 1  # one request per execute(): no own retries


async def test_retryable_status_carries_retry_after_http_date(http_server: Any) -> None:
    http_server.state.flaky_left = 1
    when = datetime.now(UTC) + timedelta(seconds=30)
    http_server.state.flaky_retry_after = format_datetime(when, usegmt=True)
    with pytest.raises(RetryableHttpStatusError) as info:
        await run({"url": http_server.url + "/flaky"})
    assert info.value.retry_after is not None
    assert 0 < info.value.retry_after <= 30


@pytest.mark.parametrize("code", [400, 401, 403, 404, 409, 422, 500, 501])
async def test_other_statuses_are_permanent(http_server: Any, code: int) -> None:
    with pytest.raises(PermanentHttpStatusError) as info:
        await run({"url": http_server.url + f"/status/{code}"})
    assert isinstance(info.value, PermanentError)
    assert not isinstance(info.value, RetryableError)
    assert info.value.status_code == code


async def test_retryable_status_lists_which_statuses_a_retry_may_fix(http_server: Any) -> None:
    with pytest.raises(RetryableHttpStatusError):
        await run({"url": http_server.url + "/status/500", "retryable_status": [500]})
    with pytest.raises(PermanentHttpStatusError):
        await run({"url": http_server.url + "/status/503", "retryable_status": [500]})


async def test_connection_errors_are_retryable(unused_tcp_port: int) -> None:
    with pytest.raises(HttpConnectionError) as info:
        await run({"url": f"http://127.0.0.1:{unused_tcp_port}/"})
    assert isinstance(info.value, RetryableError)
    assert "after" not in str(info.value)  # no attempt counting of its own


async def test_timeouts_are_retryable(http_server: Any) -> None:
    with pytest.raises(HttpTimeoutError) as info:
        await run({"url": http_server.url + "/hang", "timeout": 0.1})
    assert isinstance(info.value, RetryableError)


async def test_policy_refusals_and_input_errors_are_permanent(set_env: Any) -> None:
    set_env("AIPARTNERUPFLOW_HTTP_ALLOW_PRIVATE", None)
    with pytest.raises(OutboundPolicyError) as refused:
        await run({"url": "http://127.0.0.1:9/"})
    assert isinstance(refused.value, PermanentError)
    with pytest.raises(InputValidationError):
        await run({"url": "https://example.com/", "auth": {"type": "bearer"}})


async def test_inputs_retry_is_refused_and_points_to_the_task_retry(http_server: Any) -> None:
    with pytest.raises(InputValidationError) as info:
        await run(
            {
                "url": http_server.url + "/echo",
                "retry": {"attempts": 4, "backoff": 0.25, "max_delay": 10},
            }
        )
    message = str(info.value)
    assert "input 'retry' is not supported" in message
    assert '{"retry": {"max_attempts": 4, "backoff_seconds": 0.25, "max_backoff_seconds": 10}}' in (
        message
    )
    assert http_server.state.requests == []
    with pytest.raises(InputValidationError, match='"max_attempts": 3, "backoff_seconds": 1'):
        await run({"url": http_server.url + "/echo", "retry": "yes please"})


# -- through the engine: one retry mechanism -------------------------------------------------


class CountingRest(RestExecutor):
    """rest_executor that counts how often the engine runs it."""

    calls: ClassVar[int] = 0

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        type(self).calls += 1
        return await super().execute(inputs)


@pytest_asyncio.fixture
async def counting() -> AsyncIterator[tuple[TaskManager, type[CountingRest]]]:
    registry = ExecutorRegistry()
    registry.register(CountingRest, override=True)
    CountingRest.calls = 0
    tm = TaskManager(create_session("duckdb:///:memory:"), registry=registry)
    try:
        yield tm, CountingRest
    finally:
        await tm.close()


def _task(inputs: dict[str, Any], **retry: Any) -> dict[str, Any]:
    return {
        "id": "call",
        "name": "call",
        "schemas": {"method": "rest_executor"},
        "retry": {"max_attempts": 3, "backoff_seconds": 0, "jitter": False, **retry},
        "inputs": inputs,
    }


async def test_malformed_auth_runs_once_despite_task_retries(
    http_server: Any, counting: tuple[TaskManager, type[CountingRest]]
) -> None:
    tm, cls = counting
    result = await tm.run_tasks(
        [_task({"url": http_server.url + "/echo", "auth": {"type": "bearer"}})]
    )
    call = result.task("call")
    assert call.status == "failed"
    assert "needs 'token'" in (call.error or "")
    assert cls.calls == 1
    assert call.attempts == 1
    assert http_server.state.requests == []


async def test_permanent_status_runs_once(
    http_server: Any, counting: tuple[TaskManager, type[CountingRest]]
) -> None:
    tm, cls = counting
    result = await tm.run_tasks([_task({"url": http_server.url + "/status/404"})])
    assert result.task("call").status == "failed"
    assert "returned 404" in (result.task("call").error or "")
    assert cls.calls == 1
    assert len(http_server.state.requests) == 1


async def test_inputs_retry_fails_the_task_once(
    http_server: Any, counting: tuple[TaskManager, type[CountingRest]]
) -> None:
    tm, cls = counting
    result = await tm.run_tasks(
        [_task({"url": http_server.url + "/flaky", "retry": {"attempts": 3}})]
    )
    assert result.task("call").status == "failed"
    assert "task's own retry" in (result.task("call").error or "")
    assert cls.calls == 1
    assert http_server.state.requests == []


async def test_retryable_status_is_retried_by_the_engine(
    http_server: Any, counting: tuple[TaskManager, type[CountingRest]]
) -> None:
    tm, cls = counting
    http_server.state.flaky_left = 2
    http_server.state.flaky_retry_after = "0"
    result = await tm.run_tasks([_task({"url": http_server.url + "/flaky"})])
    call = result.task("call")
    assert call.status == "completed", call.error
    assert call.result["body"] == {"ok": True, "calls": 3}
    assert cls.calls == 3
    assert len(http_server.state.requests) == 3  # exactly max_attempts requests, not 3 x 3


async def test_retries_exhausted(
    http_server: Any, counting: tuple[TaskManager, type[CountingRest]]
) -> None:
    tm, _ = counting
    http_server.state.flaky_left = 5
    result = await tm.run_tasks([_task({"url": http_server.url + "/flaky"}, max_attempts=2)])
    call = result.task("call")
    assert call.status == "failed"
    assert "returned 503 Service Unavailable (expected 2xx)" in (call.error or "")
    assert len(http_server.state.requests) == 2


async def test_retry_after_beyond_the_task_backoff_cap_fails_at_once(
    http_server: Any, counting: tuple[TaskManager, type[CountingRest]]
) -> None:
    tm, _ = counting
    http_server.state.flaky_left = 1
    http_server.state.flaky_retry_after = "3600"
    result = await tm.run_tasks([_task({"url": http_server.url + "/flaky"})])
    call = result.task("call")
    assert call.status == "failed"
    assert "asked to wait 3600s" in (call.error or "")
    assert len(http_server.state.requests) == 1


async def test_connection_errors_are_retried_by_the_engine(
    unused_tcp_port: int, counting: tuple[TaskManager, type[CountingRest]]
) -> None:
    tm, cls = counting
    result = await tm.run_tasks([_task({"url": f"http://127.0.0.1:{unused_tcp_port}/"})])
    assert result.task("call").status == "failed"
    assert "cannot connect" in (result.task("call").error or "")
    assert cls.calls == 3


async def test_a_dependency_named_retry_is_not_mistaken_for_inputs_retry(
    http_server: Any, counting: tuple[TaskManager, type[CountingRest]]
) -> None:
    tm, _ = counting
    result = await tm.run_tasks(
        [
            {
                "id": "retry",
                "name": "retry",
                "schemas": {"method": "rest_executor"},
                "inputs": {"url": http_server.url + "/echo"},
            },
            {
                "id": "after",
                "name": "after",
                "parent_id": "retry",
                "dependencies": ["retry"],
                "schemas": {"method": "rest_executor"},
                "inputs": {"url": http_server.url + "/echo"},
            },
        ]
    )
    assert result.status == "completed", result.to_dict()
