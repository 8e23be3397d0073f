"""Operator settings of ``apflow_api_executor`` (``AIPARTNERUPFLOW_APFLOW_*``).

Remote instances and agents are reached under the outbound policy (``ALLOWED_HOSTS``,
``ALLOW_PRIVATE``): loopback and private addresses are refused unless the operator allows them.
Nothing a task says can widen these.
"""

from __future__ import annotations

from typing import ClassVar

import pydantic

from aipartnerupflow.core.executors.caps import DEFAULT_MAX_OUTPUT_BYTES
from aipartnerupflow.core.executors.policy import OutboundPolicy
from aipartnerupflow.core.settings import Settings

__all__ = ["ApflowSettings"]


class ApflowSettings(Settings):
    """Where ``apflow_api_executor`` may connect and how long it may wait."""

    env_prefix: ClassVar[str] = "AIPARTNERUPFLOW_APFLOW_"

    allowed_hosts: tuple[str, ...] = pydantic.Field(
        default=(),
        description="Hosts, *.wildcards, addresses or CIDR networks remote instances and "
        "agents may be on (empty: every public host).",
        json_schema_extra={"fallback": "AIPARTNERUPFLOW_ALLOWED_HOSTS"},
    )
    allow_private: bool = pydantic.Field(
        default=False,
        description="Allow loopback, private and link-local remote instances.",
        json_schema_extra={"fallback": "AIPARTNERUPFLOW_ALLOW_PRIVATE"},
    )
    max_timeout: float = pydantic.Field(
        default=86400.0, gt=0, description="Longest timeout (seconds) a task may ask for."
    )
    request_timeout: float = pydantic.Field(
        default=30.0,
        gt=0,
        description="Seconds for one request (agent card, submit, status, cancel); a stream of "
        "events may stay open longer, up to the task's timeout.",
    )
    cancel_timeout: float = pydantic.Field(
        default=10.0,
        gt=0,
        description="Seconds to ask the remote side to cancel when the local task is cancelled "
        "or times out.",
    )
    max_output_bytes: int = pydantic.Field(
        default=DEFAULT_MAX_OUTPUT_BYTES,
        ge=0,
        description="Most bytes of JSON kept of the remote results; a task's max_output_bytes "
        "can only lower it (results beyond it are replaced by a truncation note).",
    )

    def policy(self) -> OutboundPolicy:
        """The outbound policy these settings describe."""
        return OutboundPolicy(
            allowed_hosts=self.allowed_hosts,
            allow_private=self.allow_private,
            setting_prefix=self.env_prefix,
        )
