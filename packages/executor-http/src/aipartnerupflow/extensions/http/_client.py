"""Shared httpx clients: one per configuration and event loop, through the executor kit.

Each client sends through the kit's :class:`PolicyTransport`, which checks every resolved
address against the outbound policy and connects to a checked one. This module imports
httpx; the executor imports it on first use only.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx

from aipartnerupflow.core.errors import ConfigurationError
from aipartnerupflow.core.executors.http_transport import policy_client
from aipartnerupflow.core.executors.resources import (
    forget_loop_resource,
    loop_resource,
    loop_resources,
)
from aipartnerupflow.extensions.http.policy import OutboundPolicy

__all__ = [
    "LIMITS",
    "USER_AGENT",
    "ClientKey",
    "aclose_clients",
    "clients_of_running_loop",
    "get_client",
]

USER_AGENT = "aipartnerupflow-rest-executor"
_KIND = "rest_executor"

#: Connections per pool; idle ones kept up to the engine's default concurrency (64), so a
#: fan-out to one host reuses its connections instead of reopening most of them.
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=64)


@dataclass(frozen=True, slots=True)
class ClientKey:
    """What makes two requests need different pools: TLS verification and the policy."""

    verify: bool
    policy: OutboundPolicy


def _ssl_context(key: ClientKey) -> ssl.SSLContext:
    context = httpx.create_ssl_context(verify=key.verify, trust_env=False)
    if key.verify and key.policy.ca_bundle:
        try:
            context.load_verify_locations(cafile=key.policy.ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"cannot load the CA bundle {key.policy.ca_bundle!r}: {exc}"
            ) from None
    return context


def _new_client(key: ClientKey) -> httpx.AsyncClient:
    return policy_client(
        key.policy,
        verify=_ssl_context(key),
        limits=LIMITS,
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,  # the executor follows redirects itself, checking each hop
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),  # never stores any
    )


async def _close(client: httpx.AsyncClient) -> None:
    await client.aclose()


async def get_client(key: ClientKey) -> httpx.AsyncClient:
    """The shared client for ``key`` on the running event loop (created on first use)."""
    client: httpx.AsyncClient = await loop_resource((_KIND, key), lambda: _new_client(key), _close)
    if client.is_closed:  # closed by someone else: replace it
        await forget_loop_resource((_KIND, key))
        client = await loop_resource((_KIND, key), lambda: _new_client(key), _close)
    return client


def clients_of_running_loop() -> dict[ClientKey, Any]:
    """The shared clients of the running event loop (for inspection and tests)."""
    return {k[1]: v for k, v in loop_resources().items() if isinstance(k, tuple) and k[0] == _KIND}


async def aclose_clients() -> None:
    """Close the shared clients of the running event loop (other executors' resources stay)."""
    for key in clients_of_running_loop():
        await forget_loop_resource((_KIND, key))
