"""A fake DNS resolver for tests: made-up names resolve to the addresses a test chooses.

The outbound policy (:class:`~aipartnerupflow.core.executors.OutboundPolicy`) resolves names
with the running loop's ``getaddrinfo``; :meth:`FakeResolver.install` replaces that method on
the running loop (pytest's ``monkeypatch`` undoes it), so a test can make ``rebind.test``
resolve to a public and a loopback address, and check which address was connected to. This is
the one mock of the kit: no test DNS server can answer for arbitrary names without root.

    resolver = FakeResolver().install(monkeypatch)     # inside an async test or fixture
    resolver.add("service.test", "127.0.0.1")
    ...
    assert resolver.calls == [("service.test", 443)]
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any, Self

import pytest

__all__ = ["FakeResolver"]

_Info = tuple[int, int, int, str, tuple[Any, ...]]


class FakeResolver:
    """Answers ``getaddrinfo`` from a mapping of host name to addresses.

    A name not in the mapping fails as an unknown name (``socket.gaierror``), unless
    ``fallback`` is true, in which case the real resolver answers it. ``calls`` lists every
    ``(host, port)`` asked, in order.
    """

    def __init__(
        self, mapping: dict[str, list[str]] | None = None, *, fallback: bool = False
    ) -> None:
        self.mapping: dict[str, list[str]] = {}
        self.fallback = fallback
        self.calls: list[tuple[str, Any]] = []
        self._real: Any = None
        for host, addresses in (mapping or {}).items():
            self.add(host, *addresses)

    def add(self, host: str, *addresses: str) -> Self:
        """Make ``host`` resolve to ``addresses`` (in that order)."""
        for address in addresses:
            ipaddress.ip_address(address)  # a typo in a test fails here, not in the code
        self.mapping[host.lower().rstrip(".")] = list(addresses)
        return self

    async def getaddrinfo(
        self,
        host: Any,
        port: Any,
        *,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[_Info]:
        """The loop method's signature; returns ``SOCK_STREAM`` entries."""
        name = host.decode() if isinstance(host, bytes) else str(host)
        self.calls.append((name, port))
        addresses = self.mapping.get(name.lower().rstrip("."))
        if addresses is None:
            if self.fallback and self._real is not None:
                infos: list[_Info] = await self._real(
                    host, port, family=family, type=type, proto=proto, flags=flags
                )
                return infos
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        number = int(port or 0) if not isinstance(port, str) or port.isdigit() else 0
        out: list[_Info] = []
        for address in addresses:
            ip = ipaddress.ip_address(address)
            if ip.version == 6:
                if family not in (0, socket.AF_INET6):
                    continue
                out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, number, 0, 0)))
            else:
                if family not in (0, socket.AF_INET):
                    continue
                out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, number)))
        if not out:
            raise socket.gaierror(socket.EAI_NODATA, "No address associated with hostname")
        return out

    def install(
        self, monkeypatch: pytest.MonkeyPatch, loop: asyncio.AbstractEventLoop | None = None
    ) -> Self:
        """Replace ``getaddrinfo`` of ``loop`` (default: the running loop) until the test ends."""
        target = loop or asyncio.get_running_loop()
        self._real = target.getaddrinfo
        monkeypatch.setattr(target, "getaddrinfo", self.getaddrinfo)
        return self
