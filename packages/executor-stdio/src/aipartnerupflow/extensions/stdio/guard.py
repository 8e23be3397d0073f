"""The checks ``command_executor`` makes before anything runs: program, directory, environment.

The rules live in :mod:`aipartnerupflow.core.executors.programs`; here they get the
``AIPARTNERUPFLOW_COMMAND_*`` settings:

* **Program.** A bare name (``ls``) is looked up by us in the operator's search path
  (``AIPARTNERUPFLOW_COMMAND_SEARCH_PATH``), never in the server's or the task's ``PATH``. An
  absolute path is taken as given. A relative path with a slash (``./x``, ``bin/x``) is
  refused. Symlinks and ``..`` are then resolved, and the program is allowed only when that
  resolved path is the resolved path of an ``AIPARTNERUPFLOW_COMMAND_ALLOWED_EXECUTABLES``
  entry. The resolved path is what gets executed, so nothing can be swapped in between.
* **Directory.** ``cwd`` must be absolute and, resolved, inside one of
  ``AIPARTNERUPFLOW_COMMAND_ALLOWED_DIRS``.
* **Environment.** Nothing is inherited but ``PATH`` (the search path) and the variables of
  ``AIPARTNERUPFLOW_COMMAND_INHERIT_ENV``. A task may set only the variables
  ``AIPARTNERUPFLOW_COMMAND_ENV_ALLOW`` names; ``LD_*`` and ``DYLD_*`` never.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from aipartnerupflow.core.errors import InputValidationError
from aipartnerupflow.core.executors import programs
from aipartnerupflow.core.executors.secrets import add_secret, is_sensitive_name, read_secret_env
from aipartnerupflow.extensions.stdio.errors import CommandRefusedError
from aipartnerupflow.extensions.stdio.settings import CommandSettings

__all__ = ["allowed_programs", "build_env", "resolve_cwd", "resolve_program"]

_ALLOWED_EXECUTABLES = "AIPARTNERUPFLOW_COMMAND_ALLOWED_EXECUTABLES"
_ALLOWED_DIRS = "AIPARTNERUPFLOW_COMMAND_ALLOWED_DIRS"
_ENV_ALLOW = "AIPARTNERUPFLOW_COMMAND_ENV_ALLOW"


def allowed_programs(settings: CommandSettings) -> frozenset[str]:
    """The resolved paths of the allow-listed programs that exist."""
    return programs.allowed_programs(settings.allowed_executables, settings.search_path)


def resolve_program(program: str, settings: CommandSettings) -> str:
    """The resolved absolute path to execute for ``program``, once it is allowed."""
    return programs.resolve_program(
        program,
        allowed=settings.allowed_executables,
        search_path=settings.search_path,
        allowed_setting=_ALLOWED_EXECUTABLES,
        search_setting="AIPARTNERUPFLOW_COMMAND_SEARCH_PATH",
        refused=CommandRefusedError,
    )


def resolve_cwd(cwd: Any, settings: CommandSettings) -> str | None:
    """The resolved working directory, once it is inside an allowed directory (None: unset)."""
    return programs.resolve_cwd(
        cwd, allowed_dirs=settings.allowed_dirs, setting=_ALLOWED_DIRS, refused=CommandRefusedError
    )


def _check_name(name: Any, field: str, settings: CommandSettings) -> str:
    return programs.check_env_name(
        name, field, allowed=settings.env_allow, setting=_ENV_ALLOW, refused=CommandRefusedError
    )


def _mapping(value: Any, field: str) -> dict[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputValidationError(f"input {field!r} must be an object of NAME: value strings")
    return value


def build_env(
    env: Any, secret_env: Any, settings: CommandSettings, shared_secret_env: Iterable[str]
) -> dict[str, str]:
    """The program's whole environment (nothing else is inherited)."""
    child = {"PATH": settings.search_path}
    for name in settings.inherit_env:
        value = os.environ.get(name)
        if name != "PATH" and value is not None:
            child[name] = value
    for name, value in _mapping(env, "env").items():
        _check_name(name, f"env.{name}", settings)
        if not isinstance(value, str):
            raise InputValidationError(f"input 'env.{name}' must be a string")
        if "\x00" in value:
            raise InputValidationError(f"input 'env.{name}' contains a NUL byte")
        if is_sensitive_name(name):
            add_secret(value)
        child[name] = value
    readable = (*settings.secret_env, *shared_secret_env)
    for name, source in _mapping(secret_env, "secret_env").items():
        _check_name(name, f"secret_env.{name}", settings)
        child[name] = read_secret_env(
            source,
            allowed=readable,
            setting="AIPARTNERUPFLOW_COMMAND_SECRET_ENV",
            field=f"secret_env.{name}",
        )
    return child
