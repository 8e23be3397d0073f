"""Shared httpx clients: one connection pool per client configuration and event loop.

This module imports httpx; the executor imports it on first use only.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import weakref
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpcore
import httpx

from aipartnerupflow.core.errors import ConfigurationError
from aipartnerupflow.extensions.http._redact import install_log_filter
from aipartnerupflow.extensions.http.errors import OutboundPolicyError
from aipartnerupflow.extensions.http.policy import OutboundPolicy

__all__ = [
    "USER_AGENT",
    "ClientKey",
    "aclose_clients",
    "clients_of_running_loop",
    "get_client",
]

USER_AGENT = "aipartnerupflow-rest-executor"


class _LoopPools:
    """The clients of one event loop, and the async generator that closes them at its end."""

    __slots__ = ("clients", "guard")

    def __init__(self) -> None:
        self.clients: dict[ClientKey, httpx.AsyncClient] = {}
        self.guard: AsyncGenerator[None, None] | None = None


#: Pools per event loop: connections belong to the loop that opened them.
_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPools]
_loops = weakref.WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class ClientKey:
    """What makes two requests need different pools: TLS verification, policy and limits."""

    verify: bool
    policy: OutboundPolicy
    max_connections: int = 100
    max_keepalive_connections: int = 20
    keepalive_expiry: float = 5.0


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves each host itself, checks every address against the policy, then connects to
    one of the checked addresses, so no second resolution can swap in an internal address."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host!r} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc.strerror or exc}") from None
        addresses: list[str] = []
        for *_, sockaddr in infos:
            address = str(sockaddr[0])
            self._policy.check_address(host, address)
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise httpcore.ConnectError(f"{host!r} resolved to no address")
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectTimeout as exc:
                last = exc
            except httpcore.ConnectError as exc:
                reason = _os_reason(exc)
                last = httpcore.ConnectError(f"{reason} ({address} port {port})") if reason else exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        raise OutboundPolicyError("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _os_reason(exc: BaseException) -> str | None:
    """The operating system's words for the first errno in an exception's causes."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno:
            return os.strerror(seen.errno)
        seen = seen.__cause__ or seen.__context__
    return None


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with the connection pool built on :class:`_GuardedBackend`."""

    def __init__(self, key: ClientKey, ssl_context: ssl.SSLContext) -> None:
        limits = httpx.Limits(
            max_connections=key.max_connections,
            max_keepalive_connections=key.max_keepalive_connections,
            keepalive_expiry=key.keepalive_expiry,
        )
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        if not hasattr(self, "_pool"):  # fail closed if httpx's internals ever change
            raise ConfigurationError("unsupported httpx version: cannot install the policy guard")
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(key.policy),
        )


def _ssl_context(key: ClientKey) -> ssl.SSLContext:
    if not key.verify:
        return httpx.create_ssl_context(verify=False, trust_env=False)
    context = httpx.create_ssl_context(verify=True, trust_env=False)
    if key.policy.ca_bundle:
        try:
            context.load_verify_locations(cafile=key.policy.ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"cannot load the CA bundle {key.policy.ca_bundle!r}: {exc}"
            ) from None
    return context


def _new_client(key: ClientKey) -> httpx.AsyncClient:
    install_log_filter()
    return httpx.AsyncClient(
        transport=_GuardedTransport(key, _ssl_context(key)),
        headers={"User-Agent": USER_AGENT},
        trust_env=False,  # no proxies, .netrc credentials or SSL_CERT_FILE from the environment
        follow_redirects=False,  # the executor follows redirects itself, checking each hop
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),  # never stores any
    )


async def _close(pools: _LoopPools) -> None:
    clients = list(pools.clients.values())
    pools.clients.clear()
    for client in clients:
        await client.aclose()


async def _guard(pools: _LoopPools) -> AsyncGenerator[None, None]:
    """Started once per loop; ``asyncio.run`` and ``asyncio.Runner`` finalise async generators
    before closing their loop (``shutdown_asyncgens``), which closes the pools cleanly even
    when nobody called :func:`aclose_clients`."""
    try:
        yield
    finally:
        await _close(pools)


async def get_client(key: ClientKey) -> httpx.AsyncClient:
    """The shared client for ``key`` on the running event loop (created on first use)."""
    loop = asyncio.get_running_loop()
    pools = _loops.get(loop)
    if pools is None:
        pools = _loops[loop] = _LoopPools()
        guard = _guard(pools)
        await guard.__anext__()  # runs to its ``yield``: the loop now tracks it
        pools.guard = guard
    client = pools.clients.get(key)
    if client is None or client.is_closed:
        client = pools.clients[key] = _new_client(key)
    return client


def clients_of_running_loop() -> dict[ClientKey, httpx.AsyncClient]:
    """The shared clients of the running event loop (for inspection and tests)."""
    pools = _loops.get(asyncio.get_running_loop())
    return dict(pools.clients) if pools else {}


async def aclose_clients() -> None:
    """Close every shared client of the running event loop (call before the loop ends)."""
    pools = _loops.pop(asyncio.get_running_loop(), None)
    if pools is None:
        return
    guard, pools.guard = pools.guard, None
    if guard is not None:
        await guard.aclose()  # runs its ``finally``: closes the clients
    else:
        await _close(pools)
