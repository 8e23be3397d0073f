"""Authentication kinds and retries (with Retry-After)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from aipartnerupflow.core.errors import ConfigurationError, InputValidationError
from aipartnerupflow.extensions.http import HttpConnectionError, HttpStatusError, RestExecutor
from aipartnerupflow.extensions.http import executor as executor_module
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
    http_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_API_TOKEN", "env-token-1")
    monkeypatch.setenv(ENV_SECRET_ENV, "OTHER, MY_API_TOKEN")
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
    http_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_SECRET_ENV, "UNSET_TOKEN_VAR")
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


# -- retries --------------------------------------------------------------------------------


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The delays the executor waits between attempts (recorded, not waited)."""
    recorded: list[float] = []

    async def fake_sleep(delay: float) -> None:
        recorded.append(delay)

    monkeypatch.setattr(executor_module, "_sleep", fake_sleep)
    return recorded


async def test_retry_after_seconds_is_honoured(http_server: Any, sleeps: list[float]) -> None:
    http_server.state.flaky_left = 2
    http_server.state.flaky_retry_after = "3"
    result = await run({"url": http_server.url + "/flaky", "retry": {"attempts": 3}})
    assert result["status_code"] == 200
    assert result["attempts"] == 3
    assert sleeps == [3.0, 3.0]
    assert len(http_server.state.requests) == 3


async def test_retry_after_http_date_is_honoured(http_server: Any, sleeps: list[float]) -> None:
    http_server.state.flaky_left = 1
    when = datetime.now(UTC) + timedelta(seconds=30)
    http_server.state.flaky_retry_after = format_datetime(when, usegmt=True)
    await run({"url": http_server.url + "/flaky", "retry": {"attempts": 2}})
    assert len(sleeps) == 1
    assert 0 < sleeps[0] <= 30


async def test_exponential_backoff_without_retry_after(
    http_server: Any, sleeps: list[float]
) -> None:
    http_server.state.flaky_left = 3
    result = await run(
        {
            "url": http_server.url + "/flaky",
            "retry": {"attempts": 4, "backoff": 0.25, "backoff_multiplier": 3},
        }
    )
    assert result["attempts"] == 4
    assert sleeps == [0.25, 0.75, 2.25]


async def test_backoff_is_capped_by_max_delay(http_server: Any, sleeps: list[float]) -> None:
    http_server.state.flaky_left = 3
    await run(
        {
            "url": http_server.url + "/flaky",
            "retry": {"attempts": 4, "backoff": 10, "backoff_multiplier": 10, "max_delay": 50},
        }
    )
    assert sleeps == [10.0, 50.0, 50.0]


async def test_retries_exhausted(http_server: Any, sleeps: list[float]) -> None:
    http_server.state.flaky_left = 5
    with pytest.raises(HttpStatusError) as info:
        await run({"url": http_server.url + "/flaky", "retry": {"attempts": 2, "backoff": 0}})
    assert info.value.attempts == 2
    assert "returned 503 Service Unavailable (expected 2xx) after 2 attempts" in str(info.value)
    assert len(http_server.state.requests) == 2


async def test_retry_after_beyond_max_delay_fails_at_once(
    http_server: Any, sleeps: list[float]
) -> None:
    http_server.state.flaky_left = 1
    http_server.state.flaky_retry_after = "3600"
    with pytest.raises(
        HttpStatusError, match=r"asked to wait 3600s, more than retry\.max_delay=60s"
    ) as info:
        await run({"url": http_server.url + "/flaky", "retry": {"attempts": 3}})
    assert info.value.status_code == 503
    assert sleeps == []
    assert len(http_server.state.requests) == 1


async def test_status_not_listed_is_not_retried(http_server: Any, sleeps: list[float]) -> None:
    with pytest.raises(HttpStatusError):
        await run({"url": http_server.url + "/status/500", "retry": {"attempts": 3}})
    assert len(http_server.state.requests) == 1
    await run(
        {
            "url": http_server.url + "/status/500",
            "retry": {"attempts": 2, "retry_on_status": [500]},
            "expected_status": [200, 500],
        }
    )


async def test_listed_status_is_retried(http_server: Any, sleeps: list[float]) -> None:
    with pytest.raises(HttpStatusError, match="after 3 attempts"):
        await run(
            {
                "url": http_server.url + "/status/500",
                "retry": {"attempts": 3, "retry_on_status": [500], "backoff": 1},
            }
        )
    assert sleeps == [1.0, 2.0]


async def test_connection_errors_are_retried(unused_tcp_port: int, sleeps: list[float]) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/"
    with pytest.raises(HttpConnectionError, match="after 3 attempts"):
        await run({"url": url, "retry": {"attempts": 3, "backoff": 0.5}})
    assert sleeps == [0.5, 1.0]


async def test_connection_errors_not_retried_when_excluded(
    unused_tcp_port: int, sleeps: list[float]
) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/"
    with pytest.raises(HttpConnectionError):
        await run({"url": url, "retry": {"attempts": 3, "retry_on": ["timeout"]}})
    assert sleeps == []


async def test_timeouts_are_retried(http_server: Any, sleeps: list[float]) -> None:
    from aipartnerupflow.extensions.http import HttpTimeoutError

    with pytest.raises(HttpTimeoutError, match="after 2 attempts"):
        await run({"url": http_server.url + "/hang", "timeout": 0.1, "retry": {"attempts": 2}})
    assert sleeps == [0.5]
