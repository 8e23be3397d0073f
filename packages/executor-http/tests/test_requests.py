"""rest_executor against a real server on loopback: methods, bodies, responses, redirects."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from aipartnerupflow.core.errors import InputValidationError, PermanentError
from aipartnerupflow.extensions.http import (
    HttpConnectionError,
    HttpRedirectError,
    HttpStatusError,
    HttpTimeoutError,
    RestExecutor,
)
from aipartnerupflow.extensions.http import _client as client_module
from aipartnerupflow.extensions.http.policy import ENV_MAX_RESPONSE_BYTES

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


async def run(inputs: dict[str, Any]) -> dict[str, Any]:
    return await RestExecutor().execute(inputs)


@pytest.mark.parametrize("method", METHODS)
async def test_every_method(http_server: Any, method: str) -> None:
    result = await run({"url": http_server.url + "/echo", "method": method})
    assert result["status_code"] == 200
    assert result["method"] == method
    assert http_server.state.requests[-1]["method"] == method
    if method == "HEAD":
        assert result["body"] is None
        assert result["body_type"] == "empty"
    else:
        assert result["body"]["method"] == method
        assert result["body_type"] == "json"
    json.dumps(result, allow_nan=False)


async def test_lower_case_method(http_server: Any) -> None:
    result = await run({"url": http_server.url + "/echo", "method": "post"})
    assert result["method"] == "POST"


async def test_query_params_are_added_to_the_url(http_server: Any) -> None:
    await run(
        {
            "url": http_server.url + "/echo?x=1",
            "params": {"y": [1, 2], "flag": True, "empty": None, "word": "a b"},
        }
    )
    query = http_server.state.requests[-1]["query"]
    assert query == [
        ("x", "1"),
        ("y", "1"),
        ("y", "2"),
        ("flag", "true"),
        ("empty", ""),
        ("word", "a b"),
    ]


async def test_headers_are_sent(http_server: Any) -> None:
    await run({"url": http_server.url + "/echo", "headers": {"X-Trace": "abc", "X-Num": 7}})
    headers = http_server.state.requests[-1]["headers"]
    assert headers["x-trace"] == "abc"
    assert headers["x-num"] == "7"
    assert headers["user-agent"] == client_module.USER_AGENT


async def test_json_body(http_server: Any) -> None:
    result = await run(
        {"url": http_server.url + "/echo", "method": "POST", "json": {"a": [1, None, "é"]}}
    )
    sent = http_server.state.requests[-1]
    assert json.loads(sent["body"]) == {"a": [1, None, "é"]}
    assert sent["headers"]["content-type"] == "application/json"
    assert result["body"]["method"] == "POST"


@pytest.mark.parametrize("key", ["form", "data"])
async def test_form_body(http_server: Any, key: str) -> None:
    await run({"url": http_server.url + "/echo", "method": "POST", key: {"a": "1", "b": [2, 3]}})
    sent = http_server.state.requests[-1]
    assert sent["body"] == "a=1&b=2&b=3"
    assert sent["headers"]["content-type"] == "application/x-www-form-urlencoded"


async def test_raw_string_body(http_server: Any) -> None:
    await run(
        {
            "url": http_server.url + "/echo",
            "method": "PUT",
            "data": "<x>1</x>",
            "headers": {"Content-Type": "application/xml"},
        }
    )
    sent = http_server.state.requests[-1]
    assert sent["body"] == "<x>1</x>"
    assert sent["headers"]["content-type"] == "application/xml"


async def test_only_one_body_is_accepted(http_server: Any) -> None:
    with pytest.raises(InputValidationError, match="json and data"):
        await run({"url": http_server.url + "/echo", "json": {}, "data": "x"})


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ({}, "url"),
        ({"url": "http://127.0.0.1/", "method": "FETCH"}, "method"),
        ({"url": "http://127.0.0.1/", "timeout": 0}, "timeout"),
        ({"url": "http://127.0.0.1/", "retryable_status": [700]}, "retryable_status.0"),
        ({"url": "http://127.0.0.1/", "expected_status": "2zz"}, "expected_status"),
        ({"url": "http://127.0.0.1/", "auth": {"type": "digest"}}, "auth.type"),
        ({"url": "http://127.0.0.1/", "headers": {"X": ["a"]}}, "headers.X"),
    ],
)
async def test_invalid_inputs_name_the_field(inputs: dict[str, Any], field: str) -> None:
    with pytest.raises(InputValidationError, match=f"input '{field}'"):
        await run(inputs)


@pytest.mark.parametrize("url", ["example.com/x", "http://a:b/", "http://"])
async def test_not_a_url_is_rejected(url: str) -> None:
    with pytest.raises(InputValidationError, match="input 'url'"):
        await run({"url": url})


@pytest.mark.parametrize(
    "headers", [{"X-Injected": "a\r\nEvil: 1"}, {"X-Name": "é"}, {"Bad Name": "v"}]
)
async def test_unsendable_headers_are_input_errors(
    http_server: Any, headers: dict[str, str]
) -> None:
    with pytest.raises(InputValidationError, match="rest_executor inputs"):
        await run({"url": http_server.url + "/echo", "headers": headers})
    assert http_server.state.requests == []


# -- responses ------------------------------------------------------------------------------


async def test_text_body(http_server: Any) -> None:
    result = await run({"url": http_server.url + "/text"})
    assert result["body"] == "héllo wörld"
    assert result["body_type"] == "text"
    assert result["headers"]["content-type"].startswith("text/plain")


async def test_html_body(http_server: Any) -> None:
    result = await run({"url": http_server.url + "/html"})
    assert (result["body"], result["body_type"]) == ("<p>hi</p>", "text")


async def test_binary_body_is_base64(http_server: Any) -> None:
    result = await run({"url": http_server.url + "/binary"})
    assert result["body_type"] == "base64"
    assert base64.b64decode(result["body"]) == bytes(range(256))


async def test_invalid_json_falls_back_to_text(http_server: Any) -> None:
    result = await run({"url": http_server.url + "/bad-json"})
    assert (result["body"], result["body_type"]) == ("{not json", "text")


async def test_empty_body(http_server: Any) -> None:
    result = await run({"url": http_server.url + "/status/204"})
    assert result["status_code"] == 204
    assert (result["body"], result["body_type"]) == (None, "empty")


async def test_large_body_is_cut_at_the_limit(http_server: Any) -> None:
    result = await run({"url": http_server.url + "/big/50000", "max_response_bytes": 1000})
    assert result["truncated"] is True
    assert result["size"] == 1000
    assert result["max_response_bytes"] == 1000
    assert result["body"] == "y" * 1000


async def test_large_json_body_cut_is_text(http_server: Any) -> None:
    result = await run({"url": http_server.url + "/big/50000?kind=json", "max_response_bytes": 100})
    assert result["truncated"] is True
    assert result["body_type"] == "text"
    assert result["body"].startswith('{"data": "xxx')


async def test_body_within_the_limit_is_whole(http_server: Any) -> None:
    result = await run({"url": http_server.url + "/big/1000", "max_response_bytes": 1000})
    assert result["truncated"] is False
    assert result["size"] == 1000


async def test_policy_caps_the_limit(http_server: Any, set_env: Any) -> None:
    set_env(ENV_MAX_RESPONSE_BYTES, "200")
    result = await run({"url": http_server.url + "/big/50000", "max_response_bytes": 5000})
    assert result["max_response_bytes"] == 200
    assert result["size"] == 200
    assert result["truncated"] is True


# -- statuses -------------------------------------------------------------------------------


async def test_error_status_fails_with_a_readable_message(http_server: Any) -> None:
    with pytest.raises(HttpStatusError) as info:
        await run({"url": http_server.url + "/status/404?q=1", "method": "DELETE"})
    error = info.value
    assert error.status_code == 404
    assert error.body_excerpt == "status 404 body"
    assert str(error) == (
        f"DELETE {http_server.url}/status/404?q=1 returned 404 Not Found (expected 2xx): "
        "status 404 body"
    )


@pytest.mark.parametrize("expected", [404, "404", "4xx", [200, "4xx"]])
async def test_expected_status(http_server: Any, expected: Any) -> None:
    result = await run({"url": http_server.url + "/status/404", "expected_status": expected})
    assert result["status_code"] == 404
    assert result["body"] == "status 404 body"


async def test_unexpected_success_status_fails(http_server: Any) -> None:
    with pytest.raises(HttpStatusError, match=r"returned 200 OK \(expected 201\)"):
        await run({"url": http_server.url + "/echo", "expected_status": 201})


# -- redirects ------------------------------------------------------------------------------


async def test_redirects_are_not_followed_by_default(http_server: Any) -> None:
    with pytest.raises(HttpStatusError) as info:
        await run({"url": http_server.url + "/redirect?to=/echo"})
    message = str(info.value)
    assert "returned 302 Found" in message
    assert f"redirecting to {http_server.url}/echo" in message
    assert "follow_redirects: true" in message


async def test_redirects_followed_when_asked(http_server: Any) -> None:
    result = await run(
        {"url": http_server.url + "/redirect?to=/echo/next", "follow_redirects": True}
    )
    assert result["status_code"] == 200
    assert result["url"] == http_server.url + "/echo/next"
    assert [r["path"] for r in http_server.state.requests] == ["/redirect", "/echo/next"]


@pytest.mark.parametrize(("status", "method"), [(303, "GET"), (302, "GET"), (307, "POST")])
async def test_redirect_method_rules(http_server: Any, status: int, method: str) -> None:
    await run(
        {
            "url": f"{http_server.url}/redirect?to=/echo&status={status}",
            "method": "POST",
            "json": {"a": 1},
            "follow_redirects": True,
        }
    )
    last = http_server.state.requests[-1]
    assert last["method"] == method
    assert (last["body"] == "") == (method == "GET")


async def test_too_many_redirects(http_server: Any) -> None:
    url = http_server.url + "/redirect?to=/redirect%3Fto%3D/echo"
    with pytest.raises(HttpRedirectError, match="more than 1 redirects") as info:
        await run({"url": url, "follow_redirects": True, "max_redirects": 1})
    assert isinstance(info.value, PermanentError)


async def test_credentials_dropped_on_cross_origin_redirect(http_server: Any) -> None:
    other = http_server.url.replace("127.0.0.1", "localhost")
    await run(
        {
            "url": f"{http_server.url}/redirect?to={other}/echo",
            "follow_redirects": True,
            "auth": {"type": "bearer", "token": "redirect-token-1"},
            "headers": {"X-Api-Key": "header-key-1", "X-Plain": "kept"},
        }
    )
    first, second = http_server.state.requests
    assert first["headers"]["authorization"] == "Bearer redirect-token-1"
    assert first["headers"]["x-api-key"] == "header-key-1"
    assert "authorization" not in second["headers"]
    assert "x-api-key" not in second["headers"]
    assert second["headers"]["x-plain"] == "kept"


async def test_credentials_kept_on_same_origin_redirect(http_server: Any) -> None:
    await run(
        {
            "url": f"{http_server.url}/redirect?to=/echo",
            "follow_redirects": True,
            "auth": {"type": "bearer", "token": "same-origin-token"},
        }
    )
    assert http_server.state.requests[-1]["headers"]["authorization"] == "Bearer same-origin-token"


# -- connection behaviour -------------------------------------------------------------------


async def test_cookies_are_not_shared_between_requests(http_server: Any) -> None:
    result = await run({"url": http_server.url + "/set-cookie"})
    assert "session_id" in result["headers"]["set-cookie"]
    await run({"url": http_server.url + "/echo"})
    assert "cookie" not in http_server.state.requests[-1]["headers"]


async def test_one_pool_per_configuration(http_server: Any) -> None:
    await run({"url": http_server.url + "/echo"})
    await run({"url": http_server.url + "/echo"})
    await run({"url": http_server.url + "/echo", "verify": False})
    pools = client_module.clients_of_running_loop()
    assert len(pools) == 2
    assert {key.verify for key in pools} == {True, False}


async def test_connection_refused(unused_tcp_port: int) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/x"
    with pytest.raises(HttpConnectionError) as info:
        await run({"url": url, "method": "POST"})
    assert str(info.value).startswith(f"POST {url} failed: cannot connect: Connection refused")


async def test_timeout_interrupts_the_request(http_server: Any) -> None:
    with pytest.raises(HttpTimeoutError) as info:
        await run({"url": http_server.url + "/hang", "timeout": 0.2})
    assert str(info.value).startswith(f"GET {http_server.url}/hang timed out")
    assert await http_server.state.wait_disconnected()


async def test_timeout_per_phase(http_server: Any) -> None:
    with pytest.raises(HttpTimeoutError, match="waiting for the response"):
        await run({"url": http_server.url + "/hang", "timeout": {"read": 0.2}})


async def test_cancel_interrupts_the_request_in_flight(http_server: Any) -> None:
    executor = RestExecutor()
    job = asyncio.create_task(executor.execute({"url": http_server.url + "/hang"}))
    await http_server.state.wait_received()
    await executor.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert await http_server.state.wait_disconnected()


def test_pools_are_closed_when_the_event_loop_ends(http_server: Any) -> None:
    async def main() -> list[Any]:
        await run({"url": http_server.url + "/echo"})
        return list(client_module.clients_of_running_loop().values())

    clients = asyncio.run(main())
    assert len(clients) == 1
    assert clients[0].is_closed


async def test_aclose_clients(http_server: Any) -> None:
    from aipartnerupflow.extensions.http import aclose_clients

    await run({"url": http_server.url + "/echo"})
    (client,) = client_module.clients_of_running_loop().values()
    await aclose_clients()
    assert client.is_closed
    assert client_module.clients_of_running_loop() == {}
    assert (await run({"url": http_server.url + "/echo"}))["status_code"] == 200
    await aclose_clients()


def test_params_are_refused() -> None:
    with pytest.raises(TypeError, match="takes no params"):
        RestExecutor(url="http://example.com")
    with pytest.raises(TypeError, match="only be set from Python"):
        RestExecutor(policy={"allow_private": True})  # type: ignore[arg-type]


def test_input_schema_is_valid() -> None:
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(RestExecutor().get_input_schema())
