"""The package's settings: one typed model, read once from ``AIPARTNERUPFLOW_EXAMPLE_*``.

Listed in the ``aipartnerupflow.settings`` entry-point group (pyproject.toml), so the
configuration reference shows its variables. ``ALLOW_PRIVATE`` and ``ALLOWED_HOSTS`` fall back
to the global ``AIPARTNERUPFLOW_ALLOW_PRIVATE`` / ``AIPARTNERUPFLOW_ALLOWED_HOSTS``.
"""

from __future__ import annotations

from typing import ClassVar

import pydantic

from aipartnerupflow.core.executors import DEFAULT_MAX_OUTPUT_BYTES, OutboundPolicy
from aipartnerupflow.core.settings import Settings

__all__ = ["ExampleSettings"]


class ExampleSettings(Settings):
    """Settings of the example executors."""

    env_prefix: ClassVar[str] = "AIPARTNERUPFLOW_EXAMPLE_"

    allow_private: bool = pydantic.Field(
        default=False,
        description="example_fetch may reach loopback and private addresses.",
        json_schema_extra={"fallback": "AIPARTNERUPFLOW_ALLOW_PRIVATE"},
    )
    allowed_hosts: tuple[str, ...] = pydantic.Field(
        default=(),
        description="Hosts example_fetch may reach (names, *.wildcards, addresses, CIDR); "
        "empty: every public host.",
        json_schema_extra={"fallback": "AIPARTNERUPFLOW_ALLOWED_HOSTS"},
    )
    secret_env: tuple[str, ...] = pydantic.Field(
        default=(),
        description="Environment variables the example executors' inputs may name to read a "
        "secret (token_env, secret_env), besides AIPARTNERUPFLOW_SECRET_ENV.",
    )
    max_output_bytes: int = pydantic.Field(
        default=DEFAULT_MAX_OUTPUT_BYTES,
        ge=0,
        description="Most bytes of a response body or program output kept in a result.",
    )

    def policy(self) -> OutboundPolicy:
        """The outbound policy these settings describe."""
        return OutboundPolicy(
            allowed_hosts=self.allowed_hosts,
            allow_private=self.allow_private,
            setting_prefix=self.env_prefix,
        )

    def readable_env(self) -> tuple[str, ...]:
        """Every environment variable inputs may name: ours and the core's list."""
        from aipartnerupflow.core.settings import CoreSettings

        return (*self.secret_env, *CoreSettings.get().secret_env)
