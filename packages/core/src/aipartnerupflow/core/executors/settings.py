"""Settings every network executor shares, declared once.

An executor package's settings model inherits what it needs::

    class WebSocketSettings(OutboundSettings, SecretEnvSettings):
        env_prefix: ClassVar[str] = "AIPARTNERUPFLOW_WEBSOCKET_"

* :class:`OutboundSettings` - ``ALLOWED_HOSTS`` and ``ALLOW_PRIVATE`` (falling back to the
  global ``AIPARTNERUPFLOW_ALLOWED_HOSTS`` / ``AIPARTNERUPFLOW_ALLOW_PRIVATE``) and the
  :class:`~aipartnerupflow.core.executors.policy.OutboundPolicy` they describe;
* :class:`SecretEnvSettings` - ``SECRET_ENV``: the environment variables task inputs may name
  to read a secret, besides the core's ``AIPARTNERUPFLOW_SECRET_ENV``.
"""

from __future__ import annotations

import pydantic

from aipartnerupflow.core.executors.policy import OutboundPolicy
from aipartnerupflow.core.settings import CoreSettings, Settings

__all__ = ["OutboundSettings", "SecretEnvSettings"]


class OutboundSettings(Settings):
    """Where an executor's tasks may connect."""

    allowed_hosts: tuple[str, ...] = pydantic.Field(
        default=(),
        description="Hosts this executor's tasks may reach: names, *.wildcards, addresses or "
        "CIDR networks (empty: every public host). An address inside a listed network is "
        "allowed even when private.",
        json_schema_extra={"fallback": "AIPARTNERUPFLOW_ALLOWED_HOSTS"},
    )
    allow_private: bool = pydantic.Field(
        default=False,
        description="Allow loopback, private and link-local addresses as this executor's targets.",
        json_schema_extra={"fallback": "AIPARTNERUPFLOW_ALLOW_PRIVATE"},
    )

    def policy(self) -> OutboundPolicy:
        """The outbound policy these settings describe (its errors name this model's
        variables)."""
        return OutboundPolicy(
            allowed_hosts=self.allowed_hosts,
            allow_private=self.allow_private,
            setting_prefix=self.env_prefix,
        )


class SecretEnvSettings(Settings):
    """Which environment variables an executor's task inputs may read secrets from."""

    secret_env: tuple[str, ...] = pydantic.Field(
        default=(),
        description="Environment variables this executor's inputs may name to read a secret "
        "(token_env, password_env …), besides AIPARTNERUPFLOW_SECRET_ENV.",
    )

    def readable_env(self) -> tuple[str, ...]:
        """Environment variables task inputs may name: these settings' and the core's."""
        return (*self.secret_env, *CoreSettings.get().secret_env)
