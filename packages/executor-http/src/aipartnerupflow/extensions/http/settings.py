"""Settings of ``rest_executor``: ``AIPARTNERUPFLOW_HTTP_*`` variables, read once.

``ALLOW_PRIVATE``, ``ALLOWED_HOSTS`` and ``SECRET_ENV`` fall back to the global
``AIPARTNERUPFLOW_ALLOW_PRIVATE`` / ``AIPARTNERUPFLOW_ALLOWED_HOSTS`` /
``AIPARTNERUPFLOW_SECRET_ENV`` when unset. Read with :meth:`HttpSettings.get` (cached until
:func:`aipartnerupflow.core.settings.reload_settings`).
"""

from __future__ import annotations

from typing import ClassVar

import pydantic

from aipartnerupflow.core.settings import Settings

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "HttpSettings"]

#: Largest response body read by default (10 MiB); tasks may ask for less, never more.
DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024


class HttpSettings(Settings):
    """Operator settings of ``rest_executor`` (task JSON cannot change them)."""

    env_prefix: ClassVar[str] = "AIPARTNERUPFLOW_HTTP_"

    allowed_hosts: tuple[str, ...] = pydantic.Field(
        default=(),
        description="Hosts requests may reach: names, *.wildcards, addresses or CIDR networks "
        "(empty: every public host). An address inside a listed network is allowed even when "
        "private.",
        json_schema_extra={"fallback": "AIPARTNERUPFLOW_ALLOWED_HOSTS"},
    )
    allow_private: bool = pydantic.Field(
        default=False,
        description="Allow loopback, private, link-local and other non-public addresses.",
        json_schema_extra={"fallback": "AIPARTNERUPFLOW_ALLOW_PRIVATE"},
    )
    max_response_bytes: int = pydantic.Field(
        default=DEFAULT_MAX_RESPONSE_BYTES,
        ge=0,
        description="Most body bytes read per response; tasks may ask for less, never more.",
    )
    ca_bundle: str | None = pydantic.Field(
        default=None,
        description="PEM file of extra certificate authorities to trust (added to the defaults).",
    )
    secret_env: tuple[str, ...] = pydantic.Field(
        default=(),
        description="Environment variables task inputs may name for auth secrets (token_env, "
        "password_env, value_env).",
        json_schema_extra={"fallback": "AIPARTNERUPFLOW_SECRET_ENV"},
    )
