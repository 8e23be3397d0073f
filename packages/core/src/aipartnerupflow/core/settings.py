"""Typed settings read from ``AIPARTNERUPFLOW_*`` environment variables, declared once.

Each package declares one :class:`Settings` model; each field is one variable named
``<env_prefix><FIELD>`` (``AIPARTNERUPFLOW_HTTP_ALLOW_PRIVATE``) unless the field names its own
with ``json_schema_extra={"env": ...}``. A field may name a global ``fallback`` variable, read
when its own is unset (``AIPARTNERUPFLOW_ALLOW_PRIVATE`` for every executor). A field marked
``json_schema_extra={"env": False}`` is an option only code and flags set, never read from
the environment (another model declares the variable: the server's ``database_url``). Values
are read once (:meth:`Settings.get` caches; :func:`reload_settings` forgets), and a bad value is a
:class:`~aipartnerupflow.core.errors.ConfigurationError` naming the variable and what it accepts.

Packages list their models in the ``aipartnerupflow.settings`` entry-point group, which the
configuration reference page is generated from (``tools/gen_config_docs.py``).
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar, get_args, get_origin

import pydantic
from pydantic import BaseModel, ConfigDict

from aipartnerupflow.core.errors import ConfigurationError

__all__ = [
    "SETTINGS_GROUP",
    "CoreSettings",
    "Settings",
    "Variable",
    "declared_variables",
    "load_dotenv",
    "parse_bool",
    "reload_settings",
]

SETTINGS_GROUP = "aipartnerupflow.settings"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

S = TypeVar("S", bound="Settings")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True, slots=True)
class Variable:
    """One environment variable of a settings model, for documentation."""

    name: str
    field: str
    type: str
    default: Any
    description: str
    fallback: str | None


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(inner type, optional) of ``X | None``."""
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _type_name(annotation: Any) -> str:
    inner, optional = _unwrap(annotation)
    origin = get_origin(inner)
    if origin in (tuple, list, frozenset, set):
        name = "comma-separated list"
    elif origin is typing.Literal:
        name = " | ".join(str(a) for a in get_args(inner))
    elif inner is bool:
        name = "boolean"
    elif inner is int:
        name = "integer"
    elif inner is float:
        name = "number"
    else:
        name = getattr(inner, "__name__", str(inner))
        name = "text" if name == "str" else name
    return f"{name} (optional)" if optional else name


class Settings(BaseModel):
    """Base of every package's settings model (frozen; built by :meth:`from_env`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Prefix of this model's variables.
    env_prefix: ClassVar[str] = "AIPARTNERUPFLOW_"
    _cache: ClassVar[dict[type[Settings], Settings]] = {}

    @classmethod
    def env_name(cls, field: str) -> str:
        """The environment variable of ``field``."""
        info = cls.model_fields[field]
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        return str(extra.get("env") or f"{cls.env_prefix}{field.upper()}")

    @classmethod
    def reads_env(cls, field: str) -> bool:
        """False for an option only code and flags set (``json_schema_extra={"env": False}``)."""
        info = cls.model_fields[field]
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        return extra.get("env") is not False

    @classmethod
    def _fallback(cls, field: str) -> str | None:
        info = cls.model_fields[field]
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        fallback = extra.get("fallback")
        return str(fallback) if fallback else None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """Build the settings from the environment (``overrides`` win, for code and tests)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for field, info in cls.model_fields.items():
            if field in overrides:
                values[field] = overrides[field]
                continue
            if not cls.reads_env(field):
                continue
            for var in (cls.env_name(field), cls._fallback(field)):
                if var is None:
                    continue
                raw = env.get(var)
                if raw is None or raw.strip() == "":
                    continue
                sources[field] = var
                values[field] = _parse(var, raw.strip(), info.annotation)
                break
        try:
            return cls.model_validate(values)
        except pydantic.ValidationError as exc:
            problems = []
            for error in exc.errors():
                field = str(error["loc"][0]) if error["loc"] else "?"
                name = sources.get(field, cls.env_name(field) if field in cls.model_fields else "")
                shown = values.get(field)
                annotation = (
                    cls.model_fields[field].annotation if field in cls.model_fields else str
                )
                problems.append(
                    f"{name}={shown!r} is not valid: {error['msg']} "
                    f"(expected: {_type_name(annotation)})"
                )
            raise ConfigurationError("; ".join(problems)) from None

    @classmethod
    def get(cls) -> Self:
        """The settings read from the environment once (cached until :func:`reload_settings`)."""
        found = Settings._cache.get(cls)
        if found is None:
            found = Settings._cache[cls] = cls.from_env()
        return found  # type: ignore[return-value]

    @classmethod
    def variables(cls) -> list[Variable]:
        """Every variable of this model, for the configuration reference."""
        out = []
        for field, info in cls.model_fields.items():
            if not cls.reads_env(field):
                continue
            default = None if info.is_required() else info.get_default(call_default_factory=True)
            out.append(
                Variable(
                    name=cls.env_name(field),
                    field=field,
                    type=_type_name(info.annotation),
                    default=default,
                    description=info.description or "",
                    fallback=cls._fallback(field),
                )
            )
        return out


def parse_bool(var: str, raw: str | None, default: bool = False) -> bool:
    """The boolean in ``raw`` (true/false, 1/0, yes/no, on/off; unset or blank: ``default``).

    The one boolean parser of every settings model; ``var`` names the variable in the error.
    """
    if raw is None or not raw.strip():
        return default
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ConfigurationError(
        f"{var}={raw!r} is not a boolean: use true or false (also 1/0, yes/no, on/off)"
    )


def _parse(var: str, raw: str, annotation: Any) -> Any:
    inner, _ = _unwrap(annotation)
    if inner is bool:
        return parse_bool(var, raw)
    if get_origin(inner) in (tuple, list, frozenset, set):
        # Commas or whitespace separate items: "a,b", "a, b" and "a b" are the same list.
        return [item for item in raw.replace(",", " ").split() if item]
    return raw


def check_log_level(value: str | None) -> str | None:
    """``value`` upper-cased when it is a log level name (None stays None)."""
    if value is None:
        return None
    name = value.strip().upper()
    if name not in _LOG_LEVELS:
        raise ValueError(f"unknown log level {value!r}: use one of {', '.join(_LOG_LEVELS)}")
    return name


def declared_variables() -> dict[str, Variable]:
    """Every variable (and fallback) of the installed settings models, by name.

    Models come from the ``aipartnerupflow.settings`` entry points; one that fails to load is
    skipped (``apflow info`` uses this to point out variables nothing reads, e.g. typos).
    """
    from importlib import metadata

    found: dict[str, Variable] = {}
    for ep in metadata.entry_points(group=SETTINGS_GROUP):
        try:
            model = ep.load()
            variables = model.variables()
        except Exception:
            continue
        for variable in variables:
            found.setdefault(variable.name, variable)
            if variable.fallback:
                found.setdefault(variable.fallback, variable)
    return found


def reload_settings() -> None:
    """Forget every cached settings object (the next :meth:`Settings.get` reads again)."""
    Settings._cache.clear()


def load_dotenv(
    path: str | os.PathLike[str] | None = None, *, override: bool = False
) -> Path | None:
    """Load ``KEY=value`` lines of ``.env`` (or ``path``) into the environment.

    Variables already set win unless ``override``. Returns the file read, or None when there
    is none (a missing explicit ``path`` is an error). Lines may start with ``export``; values
    may be quoted; ``#`` starts a comment.
    """
    target = Path(path) if path is not None else Path.cwd() / ".env"
    if not target.is_file():
        if path is not None:
            raise ConfigurationError(f"the settings file {str(target)!r} does not exist")
        return None
    for number, line in enumerate(target.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("export "):
            text = text[7:].lstrip()
        key, sep, value = text.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key.replace("_", "").isalnum():
            raise ConfigurationError(f"{target}:{number}: expected KEY=value, got {line!r}")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        if override or key not in os.environ:
            os.environ[key] = value
    reload_settings()
    return target


class CoreSettings(Settings):
    """Settings of the core: storage, leases, executors' opt-in and shared secrets."""

    database_url: str | None = pydantic.Field(
        default=None,
        description="Database URL (duckdb:///path or postgresql://…); default: a DuckDB file "
        "in ~/.aipartnerup/data.",
    )
    db_path: str | None = pydantic.Field(
        default=None,
        description="Path of the DuckDB file when AIPARTNERUPFLOW_DATABASE_URL is unset.",
    )
    task_table_name: str = pydantic.Field(
        default="apflow_tasks", description="Name of the tasks table."
    )
    lease_seconds: float = pydantic.Field(
        default=30.0,
        gt=0,
        allow_inf_nan=False,
        description="Lease of a PostgreSQL worker on a running task.",
    )
    executor_limits: str | None = pydantic.Field(
        default=None,
        description="Per-executor concurrency limits of workers: id=N,id=N.",
    )
    enabled_executors: tuple[str, ...] = pydantic.Field(
        default=(),
        description="Ids of dangerous executors (they reach the host or the network on a "
        "task's say-so: command, ssh, docker, mcp stdio …) that tasks may use; '*' enables all.",
    )
    secret_env: tuple[str, ...] = pydantic.Field(
        default=(),
        description="Environment variables any executor's inputs may name to read a secret "
        "(token_env, password_env …); executors add their own lists.",
    )
    allow_private: bool = pydantic.Field(
        default=False,
        description="Fallback of every executor's ALLOW_PRIVATE: allow loopback and private "
        "addresses as outbound targets.",
    )
    allowed_hosts: tuple[str, ...] = pydantic.Field(
        default=(),
        description="Fallback of every executor's ALLOWED_HOSTS: names, *.wildcards, addresses "
        "or CIDR networks outbound connections may reach (empty: every public host).",
    )
    plugins: tuple[str, ...] = pydantic.Field(
        default=(),
        description="Modules (or .py files) imported at start by every entry point (CLI, "
        "A2A server, workers), e.g. to register custom executors with @executor_register().",
    )
    log_level: str | None = pydantic.Field(
        default=None,
        description="Log level (DEBUG, INFO, WARNING, ERROR, CRITICAL) of the CLI, servers "
        "and workers; unset: WARNING (the A2A server: INFO).",
    )

    @pydantic.field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str | None) -> str | None:
        return check_log_level(value)

    def executor_enabled(self, executor_id: str) -> bool:
        """Whether the opt-in gate lets tasks use the dangerous executor ``executor_id``."""
        return "*" in self.enabled_executors or executor_id in self.enabled_executors
