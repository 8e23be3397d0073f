"""The outbound policy (default denial, allow-lists, pinned resolution); wss:// with a test CA."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aipartnerupflow.core.errors import (
    ConfigurationError,
    OutboundPolicyError,
    PermanentError,
    RetryableError,
)
from aipartnerupflow.extensions.websocket import WebSocketExecutor

from .conftest import WsServer

PRIVATE = "AIPARTNERUPFLOW_WEBSOCKET_ALLOW_PRIVATE"


async def run(inputs: dict[str, Any]) -> dict[str, Any]:
    return await WebSocketExecutor().execute(inputs)


async def test_loopback_is_denied_by_default(ws_server: WsServer, set_env: Any) -> None:
    set_env(**{PRIVATE: None})
    with pytest.raises(OutboundPolicyError) as info:
        await run({"url": ws_server.url("/echo"), "message": "x"})
    assert "resolves to a loopback address, and non-public addresses are denied" in str(info.value)
    assert "set AIPARTNERUPFLOW_WEBSOCKET_ALLOW_PRIVATE=true" in str(info.value)
    assert ws_server.handshakes == 0 and not ws_server.connections


async def test_default_denial_fails_the_task(
    ws_server: WsServer, set_env: Any, run_tree: Any
) -> None:
    set_env(**{PRIVATE: None})
    tree = await run_tree(
        [
            {
                "id": "t",
                "name": "t",
                "schemas": {"method": "websocket_executor"},
                "inputs": {"url": ws_server.url("/echo")},
                "retry": {"max_attempts": 3},
            }
        ]
    )
    outcome = tree.task("t")
    assert outcome.status == "failed"
    assert "refused by the outbound policy" in (outcome.error or "")
    assert "attempts" not in (outcome.error or "")  # permanent: not retried


@pytest.mark.parametrize(
    "host",
    ["localhost", "2130706433", "0x7f.1", "[::ffff:127.0.0.1]", "10.1.2.3", "169.254.1.1"],
)
async def test_non_public_spellings_are_denied(host: str, set_env: Any) -> None:
    set_env(**{PRIVATE: None})
    with pytest.raises(OutboundPolicyError):
        await run({"url": f"ws://{host}:9/"})


async def test_metadata_endpoint_is_denied_even_with_private_allowed() -> None:
    with pytest.raises(OutboundPolicyError, match="cloud metadata endpoint"):
        await run({"url": "ws://169.254.169.254/latest"})


async def test_global_fallback_allows_private(ws_server: WsServer, set_env: Any) -> None:
    set_env(**{PRIVATE: None, "AIPARTNERUPFLOW_ALLOW_PRIVATE": "true"})
    result = await run({"url": ws_server.url("/echo"), "message": "x"})
    assert result["response"] == "x"


async def test_own_setting_beats_the_global_one(ws_server: WsServer, set_env: Any) -> None:
    set_env(**{PRIVATE: "false", "AIPARTNERUPFLOW_ALLOW_PRIVATE": "true"})
    with pytest.raises(OutboundPolicyError):
        await run({"url": ws_server.url("/echo")})


async def test_allowed_hosts(ws_server: WsServer, set_env: Any) -> None:
    set_env(**{PRIVATE: None, "AIPARTNERUPFLOW_WEBSOCKET_ALLOWED_HOSTS": "127.0.0.1"})
    result = await run({"url": ws_server.url("/echo"), "message": "listed"})
    assert result["response"] == "listed"

    set_env(AIPARTNERUPFLOW_WEBSOCKET_ALLOWED_HOSTS="ws.example.com, *.example.org")
    with pytest.raises(OutboundPolicyError, match="not in the allowed hosts") as info:
        await run({"url": ws_server.url("/echo")})
    assert "AIPARTNERUPFLOW_WEBSOCKET_ALLOWED_HOSTS" in str(info.value)


async def test_the_connection_goes_to_the_checked_address(
    ws_server: WsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name is resolved once (by the policy); websockets gets the connected socket."""
    loop = asyncio.get_running_loop()
    calls: list[Any] = []
    original = loop.getaddrinfo

    async def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[0])
        return await original(*args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", counting)
    result = await run({"url": f"ws://localhost:{ws_server.port}/echo", "message": "pinned"})
    assert result["response"] == "pinned"
    assert calls == ["localhost"]
    assert ws_server.connections[0].headers["Host"] == f"localhost:{ws_server.port}"


async def test_proxy_variables_are_not_used(
    ws_server: WsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    result = await run({"url": ws_server.url("/echo"), "message": "direct"})
    assert result["response"] == "direct"


async def test_wss_with_the_test_ca(wss_server: WsServer, ca_bundle: str, set_env: Any) -> None:
    set_env(AIPARTNERUPFLOW_WEBSOCKET_CA_BUNDLE=ca_bundle)
    result = await run({"url": wss_server.url("/echo"), "message": {"secure": True}})
    assert result["response"] == {"secure": True}
    assert result["url"].startswith("wss://127.0.0.1:")
    name = await run({"url": f"wss://localhost:{wss_server.port}/echo", "message": "by name"})
    assert name["response"] == "by name"


async def test_wss_with_an_unknown_ca_is_refused(wss_server: WsServer) -> None:
    with pytest.raises(PermanentError) as info:
        await run({"url": wss_server.url("/echo")})
    assert "the TLS certificate of wss://127.0.0.1:" in str(info.value)
    assert "cannot be verified" in str(info.value)
    assert "AIPARTNERUPFLOW_WEBSOCKET_CA_BUNDLE" in str(info.value)
    assert not wss_server.connections


async def test_wss_to_a_plain_server_fails(ws_server: WsServer) -> None:
    """The plain server drops the TLS hello: a reset, which a retry might fix (retryable)."""
    with pytest.raises(RetryableError, match=r"handshake with wss://127.0.0.1:.* broke off: \w+"):
        await run({"url": f"wss://127.0.0.1:{ws_server.port}/echo"})


async def test_unreadable_ca_bundle(wss_server: WsServer, set_env: Any, tmp_path: Any) -> None:
    set_env(AIPARTNERUPFLOW_WEBSOCKET_CA_BUNDLE=str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigurationError, match="AIPARTNERUPFLOW_WEBSOCKET_CA_BUNDLE="):
        await run({"url": wss_server.url("/echo")})


async def test_bad_setting_names_the_variable(set_env: Any) -> None:
    set_env(AIPARTNERUPFLOW_WEBSOCKET_MAX_MESSAGES="lots")
    with pytest.raises(ConfigurationError, match="AIPARTNERUPFLOW_WEBSOCKET_MAX_MESSAGES='lots'"):
        await run({"url": "ws://127.0.0.1:9/"})
