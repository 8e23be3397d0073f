"""Secrets never appear in results, errors or logs."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from aipartnerupflow.core.errors import InputValidationError
from aipartnerupflow.core.executors import SecretScrubber, redact_url
from aipartnerupflow.extensions.http import HttpError, RestExecutor

TOKEN = "tok-SECRET-9f8e7d"
PASSWORD = "pw-SECRET-1a2b3c"
API_KEY = "key-SECRET-4d5e6f"


async def run(inputs: dict[str, Any]) -> dict[str, Any]:
    return await RestExecutor().execute(inputs)


def assert_clean(*texts: str) -> None:
    for text in texts:
        for secret in (TOKEN, PASSWORD, API_KEY):
            assert secret not in text


async def test_server_echo_of_a_token_is_masked(http_server: Any) -> None:
    result = await run(
        {"url": http_server.url + "/secret-echo", "auth": {"type": "bearer", "token": TOKEN}}
    )
    assert result["body"] == {"you_sent": "Bearer ***"}
    assert result["headers"]["x-echo"] == "Bearer ***"
    assert_clean(json.dumps(result))


async def test_sensitive_headers_given_directly_are_masked(http_server: Any) -> None:
    result = await run(
        {
            "url": http_server.url + "/echo",
            "headers": {"Authorization": f"Bearer {TOKEN}", "X-Auth-Token": API_KEY},
        }
    )
    assert result["body"]["headers"]["authorization"] == "***"
    assert result["body"]["headers"]["x-auth-token"] == "***"
    assert_clean(json.dumps(result))


@pytest.mark.parametrize(
    "auth",
    [
        {"type": "bearer", "token": TOKEN},
        {"type": "basic", "username": "u", "password": PASSWORD},
        {"type": "api_key", "value": API_KEY},
        {"type": "api_key", "value": API_KEY, "in": "query"},
    ],
)
async def test_errors_and_logs_are_clean(
    http_server: Any, caplog: pytest.LogCaptureFixture, auth: dict[str, Any]
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(HttpError) as info:
        await run(
            {
                "url": http_server.url + "/secret-echo?token=" + TOKEN,
                "auth": auth,
                "expected_status": 201,
                "retryable_status": [200],
            }
        )
    error = info.value
    assert_clean(str(error), error.url, getattr(error, "body_excerpt", ""), caplog.text)
    assert "token=***" in str(error)
    assert "httpx" in {r.name for r in caplog.records}  # httpx logged, through the scrubbing


async def test_userinfo_password_never_shown(
    http_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = http_server.url.replace("http://", f"http://user:{PASSWORD}@") + "/status/500"
    with pytest.raises(HttpError) as info:
        await run({"url": url})
    assert str(info.value).startswith(f"GET {http_server.url}/status/500 returned 500")
    assert_clean(str(info.value), caplog.text)


async def test_validation_errors_are_clean() -> None:
    with pytest.raises(InputValidationError) as info:
        await run({"url": "http://127.0.0.1/", "headers": {"Authorization": [f"Bearer {TOKEN}"]}})
    assert "headers.Authorization" in str(info.value)
    assert_clean(str(info.value))


@pytest.mark.parametrize(
    "inputs",
    [
        {"headers": {"Authorization": [f"Bearer {TOKEN}"]}},
        {"headers": {"X-Custom": {"nested": TOKEN}}},
        {"auth": {"type": "bearer", "token": [TOKEN]}},
        {"auth": {"type": "basic", "username": "u", "password": {"p": PASSWORD}}},
    ],
)
async def test_engine_validation_errors_are_clean(run_tree: Any, inputs: dict[str, Any]) -> None:
    from aipartnerupflow.core.errors import TaskTreeValidationError

    task = {
        "id": "v",
        "name": "v",
        "schemas": {"method": "rest_executor"},
        "inputs": {"url": "http://127.0.0.1/", **inputs},
    }
    try:
        result = await run_tree([task])
    except TaskTreeValidationError as exc:
        message = str(exc)
    else:
        assert result.task("v").status == "failed"
        message = result.task("v").error or ""
    assert "rest_executor inputs: input '" in message
    assert_clean(message)


async def test_engine_error_and_logs_are_clean(
    http_server: Any, run_tree: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    result = await run_tree(
        [
            {
                "id": "s",
                "name": "s",
                "schemas": {"method": "rest_executor"},
                "inputs": {
                    "url": http_server.url + "/status/401",
                    "auth": {"type": "api_key", "value": API_KEY, "in": "query"},
                },
            }
        ]
    )
    outcome = result.task("s")
    assert outcome.status == "failed"
    assert "returned 401 Unauthorized" in outcome.error
    assert_clean(json.dumps(result.to_dict()), caplog.text)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://u:p@h.example/x?a=1", "https://h.example/x?a=1"),
        (
            "https://h/x?api_key=k&access_token=t&q=ok",
            "https://h/x?api_key=***&access_token=***&q=ok",
        ),
        (
            "https://h/x?Signature=s&sig=s2&X-Amz-Credential=c",
            "https://h/x?Signature=***&sig=***&X-Amz-Credential=***",
        ),
        ("https://h/x#frag", "https://h/x"),
        (
            "https://h/x?author=ann&authors=b&author_id=1&Auth=z&oauth_token=t",
            "https://h/x?author=ann&authors=b&author_id=1&Auth=***&oauth_token=***",
        ),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_scrubber_masks_nested_values_and_ignores_tiny_secrets() -> None:
    scrubber = SecretScrubber(["abc", "long-secret"])
    data = {"k": ["x long-secret y", {"long-secret": 1}], "n": 2, "abc": "abc"}
    assert scrubber.data(data) == {"k": ["x *** y", {"***": 1}], "n": 2, "abc": "abc"}
