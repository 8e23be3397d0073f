"""Outbound policy: which targets ``rest_executor`` may reach, and how much it may read.

Task JSON can come from API users, so the policy is operator configuration that task JSON
cannot loosen. It comes, first match wins, from:

1. ``RestExecutor.policy`` (a class attribute; set it on a subclass you register yourself);
2. :func:`set_default_policy` (call it from your application's start-up code);
3. environment variables, read at each request (:meth:`OutboundPolicy.from_env`).

By default private, loopback, link-local and other non-public addresses are denied and every
public host is allowed. The check is made twice: on the URL's host name (allowed hosts), and on
every address the name resolves to when the connection is opened (so DNS tricks and redirects
cannot reach an internal service); the connection then goes to the address that was checked.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aipartnerupflow.core.errors import ConfigurationError
from aipartnerupflow.extensions.http.errors import OutboundPolicyError

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "ENV_ALLOWED_HOSTS",
    "ENV_ALLOW_PRIVATE",
    "ENV_CA_BUNDLE",
    "ENV_MAX_RESPONSE_BYTES",
    "ENV_SECRET_ENV",
    "OutboundPolicy",
    "get_default_policy",
    "set_default_policy",
]

ENV_ALLOWED_HOSTS = "AIPARTNERUPFLOW_HTTP_ALLOWED_HOSTS"
ENV_ALLOW_PRIVATE = "AIPARTNERUPFLOW_HTTP_ALLOW_PRIVATE"
ENV_MAX_RESPONSE_BYTES = "AIPARTNERUPFLOW_HTTP_MAX_RESPONSE_BYTES"
ENV_CA_BUNDLE = "AIPARTNERUPFLOW_HTTP_CA_BUNDLE"
ENV_SECRET_ENV = "AIPARTNERUPFLOW_HTTP_SECRET_ENV"

#: Largest response body read by default (10 MiB); tasks may ask for less, never more.
DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def _split(value: str | Iterable[str]) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    return tuple(s.strip().lower().rstrip(".") for s in items if s and s.strip())


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """Where ``rest_executor`` may connect. Immutable and hashable (it keys the client cache).

    ``allowed_hosts``: empty means any host; otherwise exact names (``api.example.com``),
    sub-domain wildcards (``*.example.com``), IP addresses or CIDR networks (``10.1.0.0/16``).
    An address inside a listed network is allowed even when it is private.
    ``allow_private``: allow private, loopback, link-local and other non-public addresses.
    ``max_response_bytes``: the most body bytes read; the rest is cut and the result says so.
    ``ca_bundle``: a PEM file of extra certificate authorities to trust (added to the defaults).
    ``secret_env``: names of environment variables that task inputs may reference for auth
    secrets (``token_env``, ``password_env``, ``value_env``), so secrets stay out of task JSON.
    """

    allowed_hosts: tuple[str, ...] = ()
    allow_private: bool = False
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    ca_bundle: str | None = None
    secret_env: tuple[str, ...] = ()
    _networks: tuple[_Network, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        hosts = _split(self.allowed_hosts)
        object.__setattr__(self, "allowed_hosts", hosts)
        object.__setattr__(self, "secret_env", tuple(s.strip() for s in self.secret_env if s))
        if self.max_response_bytes < 0:
            raise ConfigurationError("max_response_bytes must be zero or more")
        networks: list[_Network] = []
        for entry in hosts:
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                continue
        object.__setattr__(self, "_networks", tuple(networks))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OutboundPolicy:
        """Build the policy from ``AIPARTNERUPFLOW_HTTP_*`` environment variables."""
        env = os.environ if environ is None else environ
        raw_private = env.get(ENV_ALLOW_PRIVATE, "").strip().lower()
        if raw_private in _TRUE:
            allow_private = True
        elif raw_private in _FALSE:
            allow_private = False
        else:
            raise ConfigurationError(
                f"{ENV_ALLOW_PRIVATE}={env.get(ENV_ALLOW_PRIVATE)!r} is not a boolean; "
                "use 1/true/yes or 0/false/no"
            )
        raw_max = env.get(ENV_MAX_RESPONSE_BYTES, "").strip()
        try:
            max_bytes = int(raw_max) if raw_max else DEFAULT_MAX_RESPONSE_BYTES
        except ValueError:
            raise ConfigurationError(
                f"{ENV_MAX_RESPONSE_BYTES}={raw_max!r} is not a whole number of bytes"
            ) from None
        return cls(
            allowed_hosts=_split(env.get(ENV_ALLOWED_HOSTS, "")),
            allow_private=allow_private,
            max_response_bytes=max_bytes,
            ca_bundle=env.get(ENV_CA_BUNDLE, "").strip() or None,
            secret_env=tuple(
                s.strip() for s in env.get(ENV_SECRET_ENV, "").split(",") if s.strip()
            ),
        )

    # -- checks -------------------------------------------------------------------------------

    def check_target(self, scheme: str, host: str, *, method: str = "", url: str = "") -> None:
        """Refuse a URL whose scheme is not http(s) or whose host is not allowed."""
        if scheme not in ("http", "https"):
            raise OutboundPolicyError(
                f"{method} {url}: only http and https URLs are allowed, not {scheme or 'none'!r}",
                method=method,
                url=url,
            )
        if not host:
            raise OutboundPolicyError(
                f"{method} {url}: the URL has no host", method=method, url=url
            )
        if not self.allowed_hosts or self.host_allowed(host):
            return
        raise OutboundPolicyError(
            f"{method} {url}: host {host!r} is not in the allowed hosts of the outbound policy "
            f"(set {ENV_ALLOWED_HOSTS} to allow it)",
            method=method,
            url=url,
        )

    def host_allowed(self, host: str) -> bool:
        """Whether ``host`` matches ``allowed_hosts`` (an empty list allows every host)."""
        if not self.allowed_hosts:
            return True
        name = host.strip("[]").lower().rstrip(".")
        try:
            address: _Address | None = _unmap(ipaddress.ip_address(name))
        except ValueError:
            address = None
        if address is not None:
            return self._in_networks(address)
        for entry in self.allowed_hosts:
            if entry == "*" or entry == name:
                return True
            if entry.startswith("*.") and name.endswith(entry[1:]):
                return True
            if entry.startswith(".") and name.endswith(entry):
                return True
        return False

    def check_address(self, host: str, address: str) -> None:
        """Refuse a resolved ``address`` of ``host`` that the policy does not allow."""
        try:
            ip = _unmap(ipaddress.ip_address(address.split("%", 1)[0]))
        except ValueError:
            raise OutboundPolicyError(f"{host!r} resolved to an unusable address") from None
        if self.allow_private or self._in_networks(ip):
            return
        kind = _non_public_kind(ip)
        if kind is None:
            return
        raise OutboundPolicyError(
            f"connection to {host!r} refused by the outbound policy: it resolves to a {kind} "
            f"address, and non-public addresses are denied (set {ENV_ALLOW_PRIVATE}=1, or list "
            f"the address or its network in {ENV_ALLOWED_HOSTS})"
        )

    def _in_networks(self, ip: _Address) -> bool:
        return any(ip.version == net.version and ip in net for net in self._networks)

    def effective_max_bytes(self, requested: Any) -> int:
        """The response limit for one task: what it asks for, never above the policy's."""
        if isinstance(requested, int) and not isinstance(requested, bool) and requested >= 0:
            return min(requested, self.max_response_bytes)
        return self.max_response_bytes


def _unmap(ip: _Address) -> _Address:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


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


_default_policy: OutboundPolicy | None = None


def set_default_policy(policy: OutboundPolicy | None) -> None:
    """Set the process-wide policy (``None`` goes back to the environment variables)."""
    global _default_policy
    if policy is not None and not isinstance(policy, OutboundPolicy):
        raise ConfigurationError("set_default_policy() takes an OutboundPolicy or None")
    _default_policy = policy


def get_default_policy() -> OutboundPolicy:
    """The policy set with :func:`set_default_policy`, else the one from the environment."""
    return _default_policy if _default_policy is not None else OutboundPolicy.from_env()
