"""Server settings: keyword arguments first, then ``AIPARTNERUPFLOW_*`` variables, then defaults."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from aipartnerupflow.core.errors import ConfigurationError

__all__ = ["ServerSettings", "is_loopback_host"]

_ENV = "AIPARTNERUPFLOW_"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _env(name: str) -> str | None:
    value = os.environ.get(_ENV + name)
    return value.strip() if value is not None else None


def _flag(name: str, default: bool) -> bool:
    value = _env(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ConfigurationError(f"{_ENV}{name}={value!r} is not a boolean: use true or false")


def _int(name: str, default: int) -> int:
    value = _env(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigurationError(f"{_ENV}{name}={value!r} is not an integer") from None


def _list(name: str) -> tuple[str, ...]:
    value = _env(name) or ""
    return tuple(item.strip() for item in value.split(",") if item.strip())


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Everything the A2A server can be configured with.

    Build it with :meth:`from_env`, which reads ``AIPARTNERUPFLOW_*`` variables for every field
    not given as a keyword argument.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str | None = None
    base_url: str | None = None
    #: HS256 shared secret; enables JWT auth.
    jwt_secret_key: str | None = field(default=None, repr=False)
    #: PEM public key (RS256/ES256...); enables JWT auth.
    jwt_public_key: str | None = field(default=None, repr=False)
    jwt_algorithm: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_require_exp: bool = True
    #: Claim holding the caller's roles; a role named ``admin`` sees every user's tasks.
    jwt_roles_claim: str = "roles"
    cors_origins: tuple[str, ...] = ()
    #: Push targets on loopback/private/link-local addresses are refused unless this is set.
    push_allow_private: bool = False
    #: Host names or IP networks push notifications may always reach (checked before the
    #: private-address rule).
    push_allowed_hosts: tuple[str, ...] = ()
    push_max_attempts: int = 3
    insecure: bool = False
    max_concurrency: int = 64
    max_body_bytes: int = 10 * 1024 * 1024
    max_tasks_per_request: int = 1000
    #: Run again, at start-up, the trees a stopped server left unfinished.
    resume_interrupted: bool = True
    #: ``flow`` (the engine) or ``tck`` (the conformance sample agent).
    agent: str = "flow"
    agent_name: str = "aipartnerupflow"
    log_level: str = "info"

    @classmethod
    def from_env(cls, **overrides: Any) -> ServerSettings:
        """Settings from ``AIPARTNERUPFLOW_*`` variables, with keyword arguments winning."""
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigurationError(
                "unknown server option(s): "
                + ", ".join(sorted(unknown))
                + ". Known options: "
                + ", ".join(sorted(known))
            )
        public_key = _env("JWT_PUBLIC_KEY")
        key_file = _env("JWT_PUBLIC_KEY_FILE")
        if not public_key and key_file:
            try:
                public_key = Path(key_file).expanduser().read_text()
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot read {_ENV}JWT_PUBLIC_KEY_FILE={key_file!r}: {exc.strerror}"
                ) from None
        d = cls()
        env = cls(
            host=_env("API_HOST") or _env("HOST") or d.host,
            port=_int("API_PORT", _int("PORT", d.port)),
            database_url=_env("DATABASE_URL") or None,
            base_url=_env("BASE_URL") or None,
            jwt_secret_key=_env("JWT_SECRET_KEY") or None,
            jwt_public_key=public_key or None,
            jwt_algorithm=_env("JWT_ALGORITHM") or None,
            jwt_issuer=_env("JWT_ISSUER") or None,
            jwt_audience=_env("JWT_AUDIENCE") or None,
            jwt_require_exp=_flag("JWT_REQUIRE_EXP", True),
            jwt_roles_claim=_env("JWT_ROLES_CLAIM") or d.jwt_roles_claim,
            cors_origins=_list("CORS_ORIGINS"),
            push_allow_private=_flag("PUSH_ALLOW_PRIVATE", False),
            push_allowed_hosts=_list("PUSH_ALLOWED_HOSTS"),
            push_max_attempts=_int("PUSH_MAX_ATTEMPTS", d.push_max_attempts),
            insecure=_flag("INSECURE", False),
            max_concurrency=_int("MAX_CONCURRENCY", d.max_concurrency),
            max_body_bytes=_int("MAX_BODY_BYTES", d.max_body_bytes),
            max_tasks_per_request=_int("MAX_TASKS_PER_REQUEST", d.max_tasks_per_request),
            resume_interrupted=_flag("RESUME_INTERRUPTED", True),
            agent=_env("A2A_AGENT") or d.agent,
            agent_name=_env("AGENT_NAME") or d.agent_name,
            log_level=_env("LOG_LEVEL") or d.log_level,
        )
        given = {k: v for k, v in overrides.items() if v is not None}
        for key in ("cors_origins", "push_allowed_hosts"):
            if isinstance(given.get(key), str):
                given[key] = tuple(s.strip() for s in given[key].split(",") if s.strip())
            elif key in given:
                given[key] = tuple(given[key])
        settings = replace(env, **given)
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
