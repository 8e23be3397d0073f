"""Server settings: keyword arguments first, then ``AIPARTNERUPFLOW_*`` variables, then defaults.

:class:`ServerSettings` is the A2A package's settings model (core's
:class:`~aipartnerupflow.core.settings.Settings`): every variable is declared here once, with
its type and description, and the configuration reference is generated from it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field

from aipartnerupflow.core.errors import ConfigurationError
from aipartnerupflow.core.settings import CoreSettings, Settings

__all__ = ["ServerSettings", "is_loopback_host"]

_NO_ENV: dict[str, Any] = {"env": False}


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ServerSettings(Settings):
    """Everything the A2A server can be configured with.

    Build it with :meth:`from_env`, which reads ``AIPARTNERUPFLOW_*`` variables for every field
    not given as a keyword argument (None means not given).
    """

    host: str = Field(
        default="127.0.0.1",
        description="Address the server binds; a non-loopback address needs JWT auth or "
        "AIPARTNERUPFLOW_INSECURE.",
        json_schema_extra={"env": "AIPARTNERUPFLOW_API_HOST", "fallback": "AIPARTNERUPFLOW_HOST"},
    )
    port: int = Field(
        default=8000,
        ge=0,
        le=65535,
        description="Port the server listens on.",
        json_schema_extra={"env": "AIPARTNERUPFLOW_API_PORT", "fallback": "AIPARTNERUPFLOW_PORT"},
    )
    #: The task database; the variable is the core's AIPARTNERUPFLOW_DATABASE_URL.
    database_url: str | None = Field(default=None, repr=False, json_schema_extra=_NO_ENV)
    base_url: str | None = Field(
        default=None,
        description="Public URL clients use to reach the server, shown in the agent card "
        "(default: http://<host>:<port>).",
    )
    jwt_secret_key: str | None = Field(
        default=None, repr=False, description="HS256 shared secret; enables JWT authentication."
    )
    jwt_public_key: str | None = Field(
        default=None,
        repr=False,
        description="PEM public key (RS256/ES256); enables JWT authentication.",
    )
    jwt_public_key_file: str | None = Field(
        default=None,
        description="File holding the PEM public key, read when AIPARTNERUPFLOW_JWT_PUBLIC_KEY "
        "is unset.",
    )
    jwt_algorithm: str | None = Field(
        default=None,
        description="JWT algorithm (default HS256 with a secret key, RS256 with a public key).",
    )
    jwt_issuer: str | None = Field(default=None, description="Required `iss` claim of tokens.")
    jwt_audience: str | None = Field(default=None, description="Required `aud` claim of tokens.")
    jwt_require_exp: bool = Field(
        default=True, description="Refuse tokens without an `exp` (expiry) claim."
    )
    jwt_roles_claim: str = Field(
        default="roles",
        description="Claim holding the caller's roles; a role named `admin` sees every user's "
        "tasks.",
    )
    cors_origins: tuple[str, ...] = Field(
        default=(), description="Origins browsers may call the server from ('*' is refused)."
    )
    push_allow_private: bool = Field(
        default=False,
        description="Allow push-notification webhooks to loopback, private and link-local "
        "addresses.",
        json_schema_extra={"fallback": "AIPARTNERUPFLOW_ALLOW_PRIVATE"},
    )
    push_allowed_hosts: tuple[str, ...] = Field(
        default=(),
        description="Host names, addresses or CIDR networks push webhooks may always reach "
        "(checked before the private-address rule).",
        json_schema_extra={"fallback": "AIPARTNERUPFLOW_ALLOWED_HOSTS"},
    )
    push_max_attempts: int = Field(
        default=3, ge=1, description="Delivery attempts of one push notification."
    )
    insecure: bool = Field(
        default=False,
        description="Allow a non-loopback bind without authentication (anyone who can reach "
        "the address can run tasks).",
    )
    max_concurrency: int = Field(
        default=64, ge=1, description="Task trees the server runs at the same time."
    )
    max_body_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Largest request body accepted, in bytes."
    )
    max_tasks_per_request: int = Field(
        default=1000, ge=1, description="Most tasks one request may create."
    )
    resume_interrupted: bool = Field(
        default=True,
        description="At start-up, run again the trees a stopped server left unfinished.",
    )
    cluster: bool = Field(
        default=False,
        description="Several replicas share one PostgreSQL database: trees run on every "
        "replica's queue worker, A2A events are logged so any replica can stream, read and "
        "cancel any task, and a killed replica's trees are taken over.",
        json_schema_extra={"env": "AIPARTNERUPFLOW_A2A_CLUSTER"},
    )
    agent: Literal["flow", "tck"] = Field(
        default="flow",
        description="'flow' serves the engine; 'tck' the A2A conformance sample agent.",
        json_schema_extra={"env": "AIPARTNERUPFLOW_A2A_AGENT"},
    )
    agent_name: str = Field(default="aipartnerupflow", description="Name in the agent card.")
    ui: bool = Field(
        default=False,
        description="Serve the live dashboard at /ui (same authentication as the API; needs "
        "the 'flow' agent).",
    )
    card_cache_seconds: int = Field(
        default=300,
        ge=0,
        description="How long clients may cache the agent card (its Cache-Control max-age; 0 "
        "sends no-cache).",
    )
    advertise_v0_3: bool = Field(
        default=False,
        description="Also list a JSON-RPC interface of protocol 0.3 in the agent card (with "
        "the 0.3 card fields), so 0.3 clients find the endpoint; A2A 1.0 wants only 1.0 "
        "interfaces, so strict 1.0 checks flag it.",
        json_schema_extra={"env": "AIPARTNERUPFLOW_A2A_ADVERTISE_V0_3"},
    )
    #: uvicorn's log level; the variable is the core's AIPARTNERUPFLOW_LOG_LEVEL (unset: info).
    log_level: str = Field(default="info", json_schema_extra=_NO_ENV)
    tck_streaming_timeout: float = Field(
        default=2.0,
        gt=0,
        allow_inf_nan=False,
        description="Seconds the 'tck' agent's delayed scenarios wait (the TCK's own variable).",
        json_schema_extra={"env": "TCK_STREAMING_TIMEOUT"},
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """Settings from ``AIPARTNERUPFLOW_*`` variables, with keyword arguments winning."""
        unknown = set(overrides) - set(cls.model_fields)
        if unknown:
            raise ConfigurationError(
                "unknown server option(s): "
                + ", ".join(sorted(unknown))
                + ". Known options: "
                + ", ".join(sorted(cls.model_fields))
            )
        given = {k: v for k, v in overrides.items() if v is not None}
        for key in ("cors_origins", "push_allowed_hosts"):
            if isinstance(given.get(key), str):
                given[key] = tuple(s for s in given[key].replace(",", " ").split() if s)
            elif key in given:
                given[key] = tuple(given[key])
        if "log_level" not in given:
            core_level = CoreSettings.from_env(environ).log_level
            given["log_level"] = (core_level or "info").lower()
        settings = super().from_env(environ, **given)
        if not settings.jwt_public_key and settings.jwt_public_key_file:
            try:
                key = Path(settings.jwt_public_key_file).expanduser().read_text()
            except OSError as exc:
                raise ConfigurationError(
                    "cannot read AIPARTNERUPFLOW_JWT_PUBLIC_KEY_FILE="
                    f"{settings.jwt_public_key_file!r}: {exc.strerror}"
                ) from None
            settings = settings.model_copy(update={"jwt_public_key": key})
        settings.check()
        return settings

    @property
    def auth_enabled(self) -> bool:
        """True when a JWT key is configured."""
        return bool(self.jwt_secret_key or self.jwt_public_key)

    @property
    def public_base_url(self) -> str:
        """The URL clients use to reach the server (for the agent card)."""
        if self.base_url:
            return self.base_url.rstrip("/")
        host = self.host
        if host in {"0.0.0.0", "::", ""}:
            host = "127.0.0.1"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def check(self) -> None:
        """Raise :class:`ConfigurationError` for contradictory or unsafe settings."""
        if self.agent not in {"flow", "tck"}:
            raise ConfigurationError(
                f"unknown agent {self.agent!r}: use 'flow' (the engine) or 'tck' (conformance)"
            )
        if self.ui and self.agent != "flow":
            raise ConfigurationError(
                "the dashboard (AIPARTNERUPFLOW_UI) needs the 'flow' agent: unset "
                "AIPARTNERUPFLOW_A2A_AGENT or turn the dashboard off"
            )
        if not 0 <= self.port <= 65535:
            raise ConfigurationError(f"port {self.port} is out of range 0-65535")
        if self.jwt_secret_key and self.jwt_public_key:
            raise ConfigurationError(
                "set either AIPARTNERUPFLOW_JWT_SECRET_KEY (HS256) or "
                "AIPARTNERUPFLOW_JWT_PUBLIC_KEY (RS256/ES256), not both"
            )
        if "*" in self.cors_origins:
            raise ConfigurationError(
                "AIPARTNERUPFLOW_CORS_ORIGINS='*' is refused: list the allowed origins"
            )
        if self.max_concurrency < 1 or self.max_body_bytes < 1024 or self.push_max_attempts < 1:
            raise ConfigurationError(
                "max_concurrency and push_max_attempts must be at least 1 and max_body_bytes at "
                "least 1024"
            )

    def check_bind(self) -> None:
        """Refuse a non-loopback bind without authentication, unless ``insecure`` is set."""
        if is_loopback_host(self.host) or self.auth_enabled or self.insecure:
            return
        raise ConfigurationError(
            f"refusing to listen on {self.host}: it is reachable from other machines and no "
            "authentication is configured. Set AIPARTNERUPFLOW_JWT_SECRET_KEY (or "
            "AIPARTNERUPFLOW_JWT_PUBLIC_KEY), bind 127.0.0.1, or pass --insecure to accept "
            "unauthenticated remote access."
        )
