"""Operator settings of ``websocket_executor`` (``AIPARTNERUPFLOW_WEBSOCKET_*``)."""

from __future__ import annotations

from typing import ClassVar

import pydantic

from aipartnerupflow.core.executors.settings import OutboundSettings, SecretEnvSettings

__all__ = ["ENV_PREFIX", "WebSocketSettings"]

ENV_PREFIX = "AIPARTNERUPFLOW_WEBSOCKET_"


class WebSocketSettings(OutboundSettings, SecretEnvSettings):
    """Where ``websocket_executor`` may connect and how much it may receive.

    Task inputs can only lower the limits set here, never raise them.
    """

    env_prefix: ClassVar[str] = ENV_PREFIX

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
