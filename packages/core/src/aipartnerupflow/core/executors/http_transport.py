"""An httpx transport that applies an :class:`OutboundPolicy` to every connection.

Needs httpx (``pip install "aipartnerupflow-core[httpx]"``); the core itself never imports this
module. Built on httpx's public :class:`httpx.AsyncBaseTransport` and httpcore's public
connection pool with a network backend that resolves each host itself, checks every address
against the policy and connects to a checked address, so no second resolution can swap in an
internal one (DNS rebinding). Redirect targets go through the same check, as each hop opens
its own connection.

    transport = PolicyTransport(OutboundPolicy(allow_private=False))
    async with httpx.AsyncClient(transport=transport) as client: ...
"""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

from aipartnerupflow.core.errors import OutboundPolicyError
from aipartnerupflow.core.executors.policy import OutboundPolicy

__all__ = ["PolicyTransport", "policy_client"]

_DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)

# httpcore's exceptions and their httpx counterparts, most specific first.
_EXCEPTIONS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except OutboundPolicyError:
        raise
    except Exception as exc:
        for source, target in _EXCEPTIONS:
            if isinstance(exc, source):
                raise target(str(exc) or type(exc).__name__) from exc
        raise


def _os_reason(exc: BaseException) -> str | None:
    """The operating system's words for the first errno in an exception's causes."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno:
            return os.strerror(seen.errno)
        seen = seen.__cause__ or seen.__context__
    return None


class _PolicyBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks every address against the policy, connects to a checked one."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self._policy.resolve(host, port)
        except ConnectionError as exc:
            raise httpcore.ConnectError(str(exc)) from None
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
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise OutboundPolicyError("unix sockets are not allowed by the outbound policy")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _Stream(httpx.AsyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            await close()


class PolicyTransport(httpx.AsyncBaseTransport):
    """An httpx transport whose every connection is checked by ``policy`` (no proxies)."""

    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        verify: ssl.SSLContext | bool = True,
        limits: httpx.Limits = _DEFAULT_LIMITS,
        http2: bool = False,
    ) -> None:
        if isinstance(verify, ssl.SSLContext):
            context = verify
        else:
            context = httpx.create_ssl_context(verify=verify, trust_env=False)
        self.policy = policy
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=http2,
            network_backend=_PolicyBackend(policy),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(request.stream, httpx.AsyncByteStream):
            raise TypeError("PolicyTransport needs an async request body")
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _mapped():
            response = await self._pool.handle_async_request(core_request)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Stream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


def policy_client(policy: OutboundPolicy, **kwargs: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` on a :class:`PolicyTransport`: no proxies or ``.netrc`` from
    the environment, no redirects followed unless asked (each hop is checked anyway)."""
    verify = kwargs.pop("verify", True)
    limits = kwargs.pop("limits", _DEFAULT_LIMITS)
    kwargs.setdefault("follow_redirects", False)
    return httpx.AsyncClient(
        transport=PolicyTransport(policy, verify=verify, limits=limits),
        trust_env=False,
        **kwargs,
    )
