"""Outbound policy of ``rest_executor``: the kit's policy plus HTTP limits.

Task JSON can come from API users, so the policy is operator configuration that task JSON
cannot loosen. It comes, first match wins, from:

1. ``RestExecutor(policy=...)`` or the ``RestExecutor.policy`` class attribute (Python only);
2. :func:`set_default_policy` (call it from your application's start-up code);
3. the ``AIPARTNERUPFLOW_HTTP_*`` settings (:class:`~.settings.HttpSettings`), read once.

Where requests may go is decided by :class:`aipartnerupflow.core.executors.OutboundPolicy`
(non-public addresses and cloud metadata endpoints denied by default, every resolved address
checked, the connection pinned to a checked address); this subclass adds the response size
limit, extra CA certificates and the environment variables tasks may read secrets from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aipartnerupflow.core.errors import ConfigurationError
from aipartnerupflow.core.executors.policy import OutboundPolicy as _KitPolicy
from aipartnerupflow.core.settings import CoreSettings
from aipartnerupflow.extensions.http.settings import DEFAULT_MAX_RESPONSE_BYTES, HttpSettings

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

ENV_ALLOWED_HOSTS = HttpSettings.env_name("allowed_hosts")
ENV_ALLOW_PRIVATE = HttpSettings.env_name("allow_private")
ENV_MAX_RESPONSE_BYTES = HttpSettings.env_name("max_response_bytes")
ENV_CA_BUNDLE = HttpSettings.env_name("ca_bundle")
ENV_SECRET_ENV = HttpSettings.env_name("secret_env")


@dataclass(frozen=True, slots=True)
class OutboundPolicy(_KitPolicy):
    """Where ``rest_executor`` may connect, and how much it may read. Immutable, hashable.

    ``allowed_hosts`` and ``allow_private``: see the kit's ``OutboundPolicy``.
    ``max_response_bytes``: the most body bytes read; the rest is cut and the result says so.
    ``ca_bundle``: a PEM file of extra certificate authorities to trust (added to the defaults).
    ``secret_env``: environment variables task inputs may name for auth secrets
    (``token_env``, ``password_env``, ``value_env``), so secrets stay out of task JSON.
    """

    setting_prefix: str = field(default=HttpSettings.env_prefix, compare=False)
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    ca_bundle: str | None = None
    secret_env: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super(OutboundPolicy, self).__post_init__()
        object.__setattr__(self, "secret_env", tuple(s.strip() for s in self.secret_env if s))
        if self.max_response_bytes < 0:
            raise ConfigurationError("max_response_bytes must be zero or more")

    @classmethod
    def from_settings(
        cls, settings: HttpSettings, core: CoreSettings | None = None
    ) -> OutboundPolicy:
        """The policy the settings describe (secret variables: these and ``core``'s, by default
        the process's core settings)."""
        secret_env = (*settings.secret_env, *(core or CoreSettings.get()).secret_env)
        return cls(
            allowed_hosts=settings.allowed_hosts,
            allow_private=settings.allow_private,
            max_response_bytes=settings.max_response_bytes,
            ca_bundle=settings.ca_bundle or None,
            secret_env=secret_env,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OutboundPolicy:
        """The policy of the ``AIPARTNERUPFLOW_HTTP_*`` variables of ``environ`` (default: the
        settings read once from the process environment)."""
        if environ is None:
            return cls.from_settings(HttpSettings.get())
        return cls.from_settings(HttpSettings.from_env(environ), CoreSettings.from_env(environ))


_default_policy: OutboundPolicy | None = None
_from_settings: tuple[HttpSettings, OutboundPolicy] | None = None


def set_default_policy(policy: OutboundPolicy | None) -> None:
    """Set the process-wide policy (``None`` goes back to the settings)."""
    global _default_policy
    if policy is not None and not isinstance(policy, OutboundPolicy):
        raise ConfigurationError("set_default_policy() takes an OutboundPolicy or None")
    _default_policy = policy


def get_default_policy() -> OutboundPolicy:
    """The policy set with :func:`set_default_policy`, else the one from the settings."""
    global _from_settings
    if _default_policy is not None:
        return _default_policy
    settings = HttpSettings.get()
    if _from_settings is None or _from_settings[0] is not settings:
        _from_settings = (settings, OutboundPolicy.from_settings(settings))
    return _from_settings[1]
