"""PolicyTransport against a real HTTP server on loopback (aipartnerupflow-testing's target)."""

from __future__ import annotations

import socket
from urllib.parse import quote

import httpx
import pytest

from aipartnerupflow.core.errors import OutboundPolicyError
from aipartnerupflow.core.executors import OutboundPolicy
from aipartnerupflow.core.executors.http_transport import PolicyTransport, policy_client
from aipartnerupflow.testing.http_target import HttpTarget
from aipartnerupflow.testing.resolver import FakeResolver


async def test_loopback_target_is_reached_when_private_is_allowed(http_target: HttpTarget) -> None:
    async with policy_client(OutboundPolicy(allow_private=True)) as client:
        response = await client.post(f"{http_target.url}/echo/x?a=1", content=b"hello")
    assert response.status_code == 200
    assert response.json()["body"] == "hello"
    assert [r["path"] for r in http_target.state.requests] == ["/echo/x"]


async def test_loopback_target_is_denied_by_default(http_target: HttpTarget) -> None:
    async with policy_client(OutboundPolicy()) as client:
        with pytest.raises(OutboundPolicyError, match="loopback"):
            await client.get(f"{http_target.url}/echo")
    assert http_target.state.requests == []


async def test_an_ip_literal_trick_is_denied(http_target: HttpTarget) -> None:
    url = http_target.url.replace("127.0.0.1", "2130706433")
    async with httpx.AsyncClient(transport=PolicyTransport(OutboundPolicy())) as client:
        with pytest.raises(OutboundPolicyError, match="loopback"):
            await client.get(f"{url}/echo")
    assert http_target.state.requests == []


async def test_redirect_to_a_loopback_address_is_denied(
    http_target: HttpTarget, fake_resolver: FakeResolver
) -> None:
    port = http_target.server.port
    # The first hop's address is allowed by network; the redirect names a host whose only
    # address is another loopback address, outside that network.
    fake_resolver.add("next.test", "127.0.0.2")
    policy = OutboundPolicy(allowed_hosts=("127.0.0.1/32", "next.test"))
    to = quote(f"http://next.test:{port}/echo", safe="")
    async with policy_client(policy, follow_redirects=True) as client:
        with pytest.raises(OutboundPolicyError, match="loopback"):
            await client.get(f"{http_target.url}/redirect?to={to}")
    assert [r["path"] for r in http_target.state.requests] == ["/redirect"]


async def test_redirect_to_a_literal_loopback_spelling_is_denied(http_target: HttpTarget) -> None:
    policy = OutboundPolicy(allowed_hosts=("127.0.0.1/32",))
    to = quote(f"http://0x7f000002:{http_target.server.port}/echo", safe="")
    async with policy_client(policy, follow_redirects=True) as client:
        with pytest.raises(OutboundPolicyError):
            await client.get(f"{http_target.url}/redirect?to={to}")
    assert [r["path"] for r in http_target.state.requests] == ["/redirect"]


async def test_allowed_redirects_are_followed(http_target: HttpTarget) -> None:
    to = quote(f"{http_target.url}/echo/next", safe="")
    async with policy_client(OutboundPolicy(allow_private=True), follow_redirects=True) as client:
        response = await client.get(f"{http_target.url}/redirect?to={to}")
    assert response.status_code == 200
    assert [r["path"] for r in http_target.state.requests] == ["/redirect", "/echo/next"]


async def test_redirects_are_not_followed_unless_asked(http_target: HttpTarget) -> None:
    to = quote(f"{http_target.url}/echo", safe="")
    async with policy_client(OutboundPolicy(allow_private=True)) as client:
        response = await client.get(f"{http_target.url}/redirect?to={to}")
    assert response.status_code == 302


async def test_connection_is_pinned_to_the_resolved_address(
    http_target: HttpTarget, fake_resolver: FakeResolver
) -> None:
    port = http_target.server.port
    fake_resolver.add("service.test", "127.0.0.1")
    async with policy_client(OutboundPolicy(allow_private=True)) as client:
        response = await client.get(f"http://service.test:{port}/echo")
    assert response.status_code == 200
    assert response.json()["headers"]["host"] == f"service.test:{port}"
    assert fake_resolver.calls == [("service.test", port)]


async def test_rebinding_answer_with_one_bad_address_is_denied(
    http_target: HttpTarget, fake_resolver: FakeResolver
) -> None:
    fake_resolver.add("rebind.test", "93.184.215.14", "127.0.0.1")
    async with policy_client(OutboundPolicy()) as client:
        with pytest.raises(OutboundPolicyError):
            await client.get(f"http://rebind.test:{http_target.server.port}/echo")
    assert http_target.state.requests == []


async def test_refused_connection_is_an_httpx_connect_error() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    async with policy_client(OutboundPolicy(allow_private=True)) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/")


async def test_streamed_body_is_read_through_the_transport(http_target: HttpTarget) -> None:
    async with (
        policy_client(OutboundPolicy(allow_private=True)) as client,
        client.stream("GET", f"{http_target.url}/big/200000") as response,
    ):
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
    assert size == 200_000
