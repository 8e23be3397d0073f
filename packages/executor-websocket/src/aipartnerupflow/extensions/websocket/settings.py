"""Operator settings of ``websocket_executor`` (``AIPARTNERUPFLOW_WEBSOCKET_*``)."""

from __future__ import annotations

from typing import ClassVar

import pydantic

from aipartnerupflow.core.executors.policy import OutboundPolicy
from aipartnerupflow.core.settings import CoreSettings, Settings

__all__ = ["ENV_PREFIX", "WebSocketSettings"]

ENV_PREFIX = "AIPARTNERUPFLOW_WEBSOCKET_"


class WebSocketSettings(Settings):
    """Where ``websocket_executor`` may connect and how much it may receive.

    Task inputs can only lower the limits set here, never raise them.
    """

    env_prefix: ClassVar[str] = ENV_PREFIX

    allowed_hosts: tuple[str, ...] = pydantic.Field(
        default=(),
        description="Hosts WebSocket tasks may connect to: names, *.wildcards, addresses or "
        "CIDR networks (empty: every public host).",
        json_schema_extra={"fallback": "AIPARTNERUPFLOW_ALLOWED_HOSTS"},
    )
    allow_private: bool = pydantic.Field(
        default=False,
        description="Allow loopback, private and link-local addresses as WebSocket targets.",
        json_schema_extra={"fallback": "AIPARTNERUPFLOW_ALLOW_PRIVATE"},
    )
    max_message_bytes: int = pydantic.Field(
        default=1024 * 1024,
        ge=1,
        description="Largest message a task may receive, in bytes (a larger one fails the "
        "task); the ceiling of the max_message_bytes input.",
    )
    max_messages: int = pydantic.Field(
        default=1000,
        ge=1,
        description="Most messages one task may receive; the ceiling of the max_messages input.",
    )
    max_total_bytes: int = pydantic.Field(
        default=16 * 1024 * 1024,
        ge=1,
        description="Most bytes one task may receive over all its messages.",
    )
    ca_bundle: str | None = pydantic.Field(
        default=None,
        description="PEM file of the certificate authorities trusted for wss:// (default: the "
        "system's).",
    )
    secret_env: tuple[str, ...] = pydantic.Field(
        default=(),
        description="Environment variables the token_env and headers_env inputs may read "
        "(besides AIPARTNERUPFLOW_SECRET_ENV).",
    )

    def policy(self) -> OutboundPolicy:
        """The outbound policy these settings describe."""
        return OutboundPolicy(
            allowed_hosts=self.allowed_hosts,
            allow_private=self.allow_private,
            setting_prefix=ENV_PREFIX,
        )

    def readable_env(self) -> tuple[str, ...]:
        """Environment variables task inputs may name: these settings' and the core's."""
        return (*self.secret_env, *CoreSettings.get().secret_env)
