"""The checks ``command_executor`` makes before anything runs: program, directory, environment.

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
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aipartnerupflow.core.errors import InputValidationError
from aipartnerupflow.core.executors.secrets import add_secret, is_sensitive_name, read_secret_env
from aipartnerupflow.extensions.stdio.errors import CommandRefusedError
from aipartnerupflow.extensions.stdio.settings import CommandSettings

__all__ = ["allowed_programs", "build_env", "resolve_cwd", "resolve_program"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOADER_PREFIXES = ("LD_", "DYLD_")
_ALLOWED_EXECUTABLES = "AIPARTNERUPFLOW_COMMAND_ALLOWED_EXECUTABLES"
_ALLOWED_DIRS = "AIPARTNERUPFLOW_COMMAND_ALLOWED_DIRS"
_ENV_ALLOW = "AIPARTNERUPFLOW_COMMAND_ENV_ALLOW"


def _locate(name: str, search_path: str) -> str | None:
    """``name`` (absolute, or bare) as an existing path, or None; relative paths never."""
    if os.path.isabs(name):
        return name if os.path.exists(name) else None
    if "/" in name:
        return None
    return shutil.which(name, path=search_path)


def allowed_programs(settings: CommandSettings) -> frozenset[str]:
    """The resolved paths of the allow-listed programs that exist."""
    found = set()
    for entry in settings.allowed_executables:
        path = _locate(entry, settings.search_path)
        if path is not None:
            found.add(os.path.realpath(path))
    return frozenset(found)


def resolve_program(program: str, settings: CommandSettings) -> str:
    """The resolved absolute path to execute for ``program``, once it is allowed."""
    if os.path.isabs(program):
        candidate = program
    elif "/" in program:
        raise CommandRefusedError(
            f"program {program!r} is a relative path, which is refused: give an absolute path, "
            "or a bare name to look up in AIPARTNERUPFLOW_COMMAND_SEARCH_PATH"
        )
    else:
        found = shutil.which(program, path=settings.search_path)
        if found is None:
            raise InputValidationError(
                f"program {program!r} was not found in the search path "
                f"({settings.search_path}); give its absolute path, or ask the operator to add "
                "its directory to AIPARTNERUPFLOW_COMMAND_SEARCH_PATH"
            )
        candidate = found
    try:
        resolved = os.path.realpath(candidate, strict=True)
    except OSError:
        raise InputValidationError(f"program {program!r} does not exist") from None
    if not os.path.isfile(resolved) or not os.access(resolved, os.X_OK):
        raise InputValidationError(f"program {program!r} is not an executable file")
    if resolved not in allowed_programs(settings):
        via = "" if resolved == program else f" (resolved to {resolved})"
        raise CommandRefusedError(
            f"program {program!r}{via} is not allowed: the operator must list it in "
            f"{_ALLOWED_EXECUTABLES}"
        )
    return resolved


def resolve_cwd(cwd: Any, settings: CommandSettings) -> str | None:
    """The resolved working directory, once it is inside an allowed directory (None: unset)."""
    if cwd is None:
        return None
    if not isinstance(cwd, str) or not cwd:
        raise InputValidationError("input 'cwd' must be a non-empty path")
    if "\x00" in cwd:
        raise InputValidationError("input 'cwd' contains a NUL byte")
    if not settings.allowed_dirs:
        raise CommandRefusedError(
            f"input 'cwd' may not be set: no directory is allowed ({_ALLOWED_DIRS} is empty), "
            "so programs run in a new empty temporary directory"
        )
    if not os.path.isabs(cwd):
        raise InputValidationError(f"input 'cwd' must be an absolute path, not {cwd!r}")
    resolved = Path(os.path.realpath(cwd))
    if not resolved.is_dir():
        raise InputValidationError(f"input 'cwd' ({cwd}) is not an existing directory")
    for allowed in settings.allowed_dirs:
        if resolved.is_relative_to(os.path.realpath(allowed)):
            return str(resolved)
    via = "" if str(resolved) == cwd else f", resolved to {resolved}"
    raise CommandRefusedError(
        f"input 'cwd' ({cwd}{via}) is outside the allowed directories: the operator must list "
        f"it, or a parent, in {_ALLOWED_DIRS}"
    )


def _check_name(name: Any, field: str, settings: CommandSettings) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputValidationError(
            f"input {field!r}: {name!r} is not a variable name (letters, digits and _)"
        )
    if name.startswith(_LOADER_PREFIXES):
        raise CommandRefusedError(
            f"input {field!r}: {name} may never be set: it changes what code the dynamic "
            "loader runs"
        )
    if "*" not in settings.env_allow and name not in settings.env_allow:
        raise CommandRefusedError(
            f"input {field!r}: variable {name} may not be set; the operator must list it in "
            f"{_ENV_ALLOW}"
        )
    return name


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
