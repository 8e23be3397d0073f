"""Operator settings of ``grpc_executor`` (``AIPARTNERUPFLOW_GRPC_*``)."""

from __future__ import annotations

from pydantic import Field

from aipartnerupflow.core.executors.settings import OutboundSettings

__all__ = ["GrpcSettings"]


class GrpcSettings(OutboundSettings):
    """Where ``grpc_executor`` may connect, what it trusts and how much it reads."""

    env_prefix = "AIPARTNERUPFLOW_GRPC_"

    ca_bundle: str | None = Field(
        default=None,
        description="PEM file of certificate authorities trusted for TLS targets (instead of "
        "the system roots).",
    )
    descriptor_sets: tuple[str, ...] = Field(
        default=(),
        description="Serialized FileDescriptorSet files (protoc --descriptor_set_out, with "
        "--include_imports) that give message types without server reflection.",
    )
    max_messages: int = Field(
        default=1000, ge=1, description="Most responses collected from a server stream."
    )
    max_response_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1,
        description="Most response bytes read per call (one message, or a whole stream).",
    )
