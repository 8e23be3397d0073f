"""Operator settings of ``apflow_api_executor`` (``AIPARTNERUPFLOW_APFLOW_*``).

Remote instances and agents are reached under the outbound policy (``ALLOWED_HOSTS``,
``ALLOW_PRIVATE``): loopback and private addresses are refused unless the operator allows them.
Nothing a task says can widen these.
"""

from __future__ import annotations

from typing import ClassVar

import pydantic

from aipartnerupflow.core.executors.caps import DEFAULT_MAX_OUTPUT_BYTES
from aipartnerupflow.core.executors.settings import OutboundSettings

__all__ = ["ApflowSettings"]


class ApflowSettings(OutboundSettings):
    """Where ``apflow_api_executor`` may connect and how long it may wait."""

    env_prefix: ClassVar[str] = "AIPARTNERUPFLOW_APFLOW_"

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
