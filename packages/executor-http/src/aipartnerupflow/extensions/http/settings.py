"""Settings of ``rest_executor``: ``AIPARTNERUPFLOW_HTTP_*`` variables, read once.

``ALLOW_PRIVATE``, ``ALLOWED_HOSTS`` and ``SECRET_ENV`` fall back to the global
``AIPARTNERUPFLOW_ALLOW_PRIVATE`` / ``AIPARTNERUPFLOW_ALLOWED_HOSTS`` /
``AIPARTNERUPFLOW_SECRET_ENV`` when unset. Read with :meth:`HttpSettings.get` (cached until
:func:`aipartnerupflow.core.settings.reload_settings`).
"""

from __future__ import annotations

from typing import ClassVar

import pydantic

from aipartnerupflow.core.executors.settings import OutboundSettings, SecretEnvSettings

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "HttpSettings"]

#: Largest response body read by default (10 MiB); tasks may ask for less, never more.
DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024


class HttpSettings(OutboundSettings, SecretEnvSettings):
    """Operator settings of ``rest_executor`` (task JSON cannot change them)."""

    env_prefix: ClassVar[str] = "AIPARTNERUPFLOW_HTTP_"

    max_response_bytes: int = pydantic.Field(
        default=DEFAULT_MAX_RESPONSE_BYTES,
        ge=0,
        description="Most body bytes read per response; tasks may ask for less, never more.",
    )
    ca_bundle: str | None = pydantic.Field(
        default=None,
        description="PEM file of extra certificate authorities to trust (added to the defaults).",
    )
