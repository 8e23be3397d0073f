"""Outbound network policy: which hosts a task may make the engine connect to.

Task JSON can come from API users, so the policy is operator configuration that task JSON
cannot loosen. By default every public host is allowed and private, loopback, link-local,
multicast and reserved addresses are denied; cloud metadata endpoints (169.254.169.254,
fd00:ec2::254, metadata.google.internal …) are denied even when private addresses are allowed,
unless listed explicitly in ``allowed_hosts``.

The check is made on the host name (allowed hosts) and on every address the name resolves to;
:meth:`OutboundPolicy.resolve` returns the checked addresses and :meth:`OutboundPolicy.connect`
opens a socket to one of them, so no second resolution can swap in an internal address (DNS
rebinding). IP literal tricks (``2130706433``, ``0x7f000001``, ``127.1``, ``::ffff:127.0.0.1``)
are normalised before any check.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aipartnerupflow.core.errors import ConfigurationError, OutboundPolicyError

__all__ = [
    "METADATA_ADDRESSES",
    "METADATA_HOSTS",
    "OutboundPolicy",
    "Target",
    "normalise_host",
]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Cloud instance-metadata addresses: denied unless listed explicitly (never by a network).
METADATA_ADDRESSES: frozenset[str] = frozenset(
    {
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean …
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.123",  # AWS time sync
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (classic)
        "fd00:ec2::254",  # AWS over IPv6
    }
)
#: Cloud instance-metadata host names: denied unless listed explicitly.
METADATA_HOSTS: frozenset[str] = frozenset(
    {
        "metadata.google.internal",
        "metadata.goog",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.internal",
        "metadata.tencentyun.com",
    }
)

_NUMERIC_V4 = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$", re.IGNORECASE)


def _unmap(ip: _Address) -> _Address:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None and ip.sixtofour.is_private:
            return ip.sixtofour
    return ip


def _literal(host: str) -> _Address | None:
    """The address a host string denotes when it is an IP literal in any spelling."""
    text = host.strip().strip("[]").split("%", 1)[0].rstrip(".")
    try:
        return _unmap(ipaddress.ip_address(text))
    except ValueError:
        pass
    if _NUMERIC_V4.match(text):
        try:  # inet_aton accepts what resolvers accept: 127.1, 0x7f.1, 2130706433, 0177.0.0.1
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def normalise_host(host: str) -> str:
    """A host in canonical form: IP literals as their plain address, names lower-case."""
    address = _literal(host)
    if address is not None:
        return str(address)
    return host.strip().strip("[]").lower().rstrip(".")


def _non_public_kind(ip: _Address) -> str | None:
    """A word for why ``ip`` is not a public address, or None when it is public."""
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "non-public"
    return None


def _split(value: str | Iterable[str]) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    return tuple(s.strip() for s in items if s and s.strip())


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: scheme, canonical host, port (the scheme's default when absent)."""

    scheme: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """Where an executor may connect. Immutable and hashable (it can key a client cache).

    ``allowed_hosts``: empty means any public host; otherwise exact names (``api.example.com``),
    sub-domain wildcards (``*.example.com``), IP addresses or CIDR networks (``10.1.0.0/16``).
    An address inside a listed network is allowed even when it is private; a metadata endpoint
    only when its exact address or name is listed.
    ``allow_private``: allow private, loopback, link-local and other non-public addresses.
    ``setting_prefix`` names the settings in error messages (``AIPARTNERUPFLOW_HTTP_``), so the
    operator reads which variable to change.
    """

    allowed_hosts: tuple[str, ...] = ()
    allow_private: bool = False
    setting_prefix: str = field(default="AIPARTNERUPFLOW_", compare=False)
    _names: frozenset[str] = field(default=frozenset(), init=False, repr=False, compare=False)
    _networks: tuple[_Network, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.allowed_hosts, str):
            raise ConfigurationError("allowed_hosts must be a list of hosts, not one string")
        hosts = tuple(normalise_host(h) for h in _split(self.allowed_hosts))
        object.__setattr__(self, "allowed_hosts", hosts)
        networks: list[_Network] = []
        names: set[str] = set()
        for entry in hosts:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                names.add(entry)
            else:
                if "/" not in entry:
                    names.add(entry)  # an exact address: it also lifts the metadata denial
        object.__setattr__(self, "_networks", tuple(networks))
        object.__setattr__(self, "_names", frozenset(names))

    # -- settings names, for messages ------------------------------------------------------

    @property
    def _allowed_var(self) -> str:
        return f"{self.setting_prefix}ALLOWED_HOSTS"

    @property
    def _private_var(self) -> str:
        return f"{self.setting_prefix}ALLOW_PRIVATE"

    # -- checks ----------------------------------------------------------------------------

    def host_allowed(self, host: str) -> bool:
        """Whether ``host`` matches ``allowed_hosts`` (an empty list allows every host)."""
        if not self.allowed_hosts:
            return True
        name = normalise_host(host)
        address = _literal(name)
        if address is not None:
            return name in self._names or self._in_networks(address)
        for entry in self._names:
            if entry in ("*", name):
                return True
            if entry.startswith("*.") and name.endswith(entry[1:]):
                return True
            if entry.startswith(".") and name.endswith(entry):
                return True
        return False

    def check_host(self, host: str) -> str:
        """Refuse a host the policy does not allow; returns its canonical form.

        An IP literal is checked as an address too (no resolution needed).
        """
        if not host or not host.strip().strip("[]"):
            raise OutboundPolicyError("the target has no host")
        name = normalise_host(host)
        if name in METADATA_HOSTS and name not in self._names:
            raise OutboundPolicyError(
                f"host {name!r} is a cloud metadata endpoint, denied by the outbound policy "
                f"(list it exactly in {self._allowed_var} to allow it)"
            )
        if not self.host_allowed(name):
            raise OutboundPolicyError(
                f"host {name!r} is not in the allowed hosts of the outbound policy "
                f"(add it to {self._allowed_var})"
            )
        if _literal(name) is not None:
            self.check_address(name, name)
        return name

    def check_url(self, url: str, *, schemes: Iterable[str] = ("http", "https")) -> Target:
        """Parse ``url`` and refuse it unless its scheme is one of ``schemes`` and its host is
        allowed. Messages never repeat the URL's user-info."""
        allowed = tuple(schemes)
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise OutboundPolicyError(f"not a valid URL: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in allowed:
            raise OutboundPolicyError(
                f"only {' and '.join(allowed)} URLs are allowed, not {scheme or 'none'!r}"
            )
        host = self.check_host(parts.hostname or "")
        default = {"http": 80, "ws": 80, "https": 443, "wss": 443}.get(scheme, 0)
        return Target(scheme, host, port or default)

    def check_address(self, host: str, address: str) -> None:
        """Refuse a resolved ``address`` of ``host`` that the policy does not allow."""
        ip = _literal(address)
        if ip is None:
            raise OutboundPolicyError(f"{host!r} resolved to an unusable address")
        text = str(ip)
        if text in METADATA_ADDRESSES and text not in self._names:
            raise OutboundPolicyError(
                f"connection to {host!r} refused by the outbound policy: {text} is a cloud "
                f"metadata endpoint (list it exactly in {self._allowed_var} to allow it)"
            )
        if self.allow_private or self._in_networks(ip):
            return
        kind = _non_public_kind(ip)
        if kind is None:
            return
        raise OutboundPolicyError(
            f"connection to {host!r} refused by the outbound policy: it resolves to a {kind} "
            f"address, and non-public addresses are denied (set {self._private_var}=true, or "
            f"list the address or its network in {self._allowed_var})"
        )

    def _in_networks(self, ip: _Address) -> bool:
        return any(ip.version == net.version and ip in net for net in self._networks)

    # -- resolution and connection ---------------------------------------------------------

    async def resolve(self, host: str, port: int) -> list[str]:
        """Every address of ``host``, each checked; raises when any one is denied.

        Connect to one of the returned addresses (never to the name again) to keep the
        connection on what was checked.
        """
        name = self.check_host(host)
        literal = _literal(name)
        if literal is not None:
            return [str(literal)]
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(name, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise ConnectionError(f"cannot resolve {name!r}: {exc.strerror or exc}") from None
        addresses: list[str] = []
        for *_, sockaddr in infos:
            address = str(sockaddr[0]).split("%", 1)[0]
            self.check_address(name, address)
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise ConnectionError(f"{name!r} resolved to no address")
        return addresses

    async def connect(self, host: str, port: int, *, timeout: float | None = None) -> socket.socket:  # noqa: ASYNC109
        """A connected non-blocking TCP socket to a checked address of ``host``.

        Hand it to the client library (``sock=``); the caller owns (and closes) it.
        """
        async with asyncio.timeout(timeout):
            addresses = await self.resolve(host, port)
            loop = asyncio.get_running_loop()
            last: OSError | None = None
            for address in addresses:
                family = socket.AF_INET6 if ":" in address else socket.AF_INET
                sock = socket.socket(family, socket.SOCK_STREAM)
                sock.setblocking(False)
                try:
                    await loop.sock_connect(sock, (address, port))
                except OSError as exc:
                    sock.close()
                    last = exc
                    continue
                except BaseException:
                    sock.close()
                    raise
                return sock
        # asyncio's strerror is "Connect call failed (addr)"; the errno's text says why
        reason = (
            (os.strerror(last.errno) if last.errno else last.strerror) if last is not None else None
        ) or "no address answered"
        raise ConnectionError(f"cannot connect to {host!r} port {port}: {reason}")
