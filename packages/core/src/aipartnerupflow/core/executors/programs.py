"""Allow-listed programs, directories and variables for executors that start local programs.

Shared by every executor that runs a program a task names (local commands, stdio MCP
servers …). The rules:

* **Program.** A bare name (``ls``) is looked up in the operator's search path, never in the
  server's or the task's ``PATH``. An absolute path is taken as given. A relative path with a
  slash (``./x``, ``bin/x``) is refused. Symlinks and ``..`` are then resolved, and the program
  is allowed only when that resolved path is the resolved path of an allow-list entry. The
  resolved path is what gets executed, so nothing can be swapped in between.
* **Directory.** A working directory must be absolute and, resolved, inside an allowed one.
* **Variables.** A task may set only variables the operator names; ``LD_*`` and ``DYLD_*``
  never (they change what code the dynamic loader runs).

Each check names, in its message, the setting the operator must change; ``refused`` is the
exception class raised when settings forbid something (a :class:`ProgramRefusedError` by
default), so each executor keeps its own error type.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aipartnerupflow.core.errors import InputValidationError, PermanentError

__all__ = [
    "LOADER_PREFIXES",
    "ProgramRefusedError",
    "absolute_dirs",
    "allowed_programs",
    "check_env_name",
    "program_entries",
    "resolve_cwd",
    "resolve_program",
    "search_path_dirs",
]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Variable prefixes a task may never set.
LOADER_PREFIXES = ("LD_", "DYLD_")


class ProgramRefusedError(PermanentError):
    """The operator's settings forbid this program, directory or variable (never retried)."""


def _locate(name: str, search_path: str) -> str | None:
    """``name`` (absolute, or bare) as an existing path, or None; relative paths never."""
    if os.path.isabs(name):
        return name if os.path.exists(name) else None
    if "/" in name:
        return None
    return shutil.which(name, path=search_path)


def _allowed_map(entries: Iterable[str], search_path: str) -> dict[str, str]:
    """Resolved path -> located path (as listed) of the allow-listed programs that exist."""
    found: dict[str, str] = {}
    for entry in entries:
        path = _locate(entry, search_path)
        if path is not None:
            found.setdefault(os.path.realpath(path), path)
    return found


def allowed_programs(entries: Iterable[str], search_path: str) -> frozenset[str]:
    """The resolved paths of the allow-listed programs (absolute or bare names) that exist."""
    return frozenset(_allowed_map(entries, search_path))


def resolve_program(
    program: str,
    *,
    allowed: Iterable[str],
    search_path: str,
    allowed_setting: str,
    search_setting: str,
    refused: type[Exception] = ProgramRefusedError,
    execute_listed: bool = False,
) -> str:
    """The absolute path to execute for ``program``, once it is allowed.

    ``allowed`` is the operator's allow-list (setting ``allowed_setting``), ``search_path``
    where bare names are looked up (setting ``search_setting``). The program is matched on
    its resolved path; that resolved path is returned, or, with ``execute_listed``, the
    allow-list entry's own path (as the operator wrote it): a Python interpreter of a virtual
    environment finds its environment from the path it was started by, so it must be started
    through its venv link, which the operator, not the task, chose.
    """
    if os.path.isabs(program):
        candidate = program
    elif "/" in program:
        raise refused(
            f"program {program!r} is a relative path, which is refused: give an absolute path, "
            f"or a bare name to look up in {search_setting}"
        )
    else:
        found = shutil.which(program, path=search_path)
        if found is None:
            raise InputValidationError(
                f"program {program!r} was not found in the search path "
                f"({search_path}); give its absolute path, or ask the operator to add "
                f"its directory to {search_setting}"
            )
        candidate = found
    try:
        resolved = os.path.realpath(candidate, strict=True)
    except OSError:
        raise InputValidationError(f"program {program!r} does not exist") from None
    if not os.path.isfile(resolved) or not os.access(resolved, os.X_OK):
        raise InputValidationError(f"program {program!r} is not an executable file")
    listed = _allowed_map(allowed, search_path)
    if resolved not in listed:
        via = "" if resolved == program else f" (resolved to {resolved})"
        raise refused(
            f"program {program!r}{via} is not allowed: the operator must list it in "
            f"{allowed_setting}"
        )
    return listed[resolved] if execute_listed else resolved


def resolve_cwd(
    cwd: Any,
    *,
    allowed_dirs: Iterable[str],
    setting: str,
    refused: type[Exception] = ProgramRefusedError,
    field: str = "cwd",
    unset_means: str = "programs run in a new empty temporary directory",
) -> str | None:
    """The resolved working directory, once it is inside an allowed directory (None: unset)."""
    if cwd is None:
        return None
    if not isinstance(cwd, str) or not cwd:
        raise InputValidationError(f"input {field!r} must be a non-empty path")
    if "\x00" in cwd:
        raise InputValidationError(f"input {field!r} contains a NUL byte")
    dirs = tuple(allowed_dirs)
    if not dirs:
        raise refused(
            f"input {field!r} may not be set: no directory is allowed ({setting} is empty), "
            f"so {unset_means}"
        )
    if not os.path.isabs(cwd):
        raise InputValidationError(f"input {field!r} must be an absolute path, not {cwd!r}")
    resolved = Path(os.path.realpath(cwd))
    if not resolved.is_dir():
        raise InputValidationError(f"input {field!r} ({cwd}) is not an existing directory")
    for allowed in dirs:
        if resolved.is_relative_to(os.path.realpath(allowed)):
            return str(resolved)
    via = "" if str(resolved) == cwd else f", resolved to {resolved}"
    raise refused(
        f"input {field!r} ({cwd}{via}) is outside the allowed directories: the operator must "
        f"list it, or a parent, in {setting}"
    )


def check_env_name(
    name: Any,
    field: str,
    *,
    allowed: Iterable[str],
    setting: str,
    refused: type[Exception] = ProgramRefusedError,
) -> str:
    """``name`` once it is a variable name a task may set (``allowed`` may hold ``*``)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputValidationError(
            f"input {field!r}: {name!r} is not a variable name (letters, digits and _)"
        )
    if name.startswith(LOADER_PREFIXES):
        raise refused(
            f"input {field!r}: {name} may never be set: it changes what code the dynamic "
            "loader runs"
        )
    names = set(allowed)
    if "*" not in names and name not in names:
        raise refused(
            f"input {field!r}: variable {name} may not be set; the operator must list it in "
            f"{setting}"
        )
    return name


# -- setting validators (shared by every package whose settings allow-list programs) --------


def search_path_dirs(value: str) -> str:
    """A search-path setting with empty entries dropped; ValueError unless all are absolute
    (a relative entry would make lookups depend on the server's working directory)."""
    dirs = [d for d in value.split(os.pathsep) if d]
    relative = [d for d in dirs if not os.path.isabs(d)]
    if relative or not dirs:
        raise ValueError(f"every directory must be an absolute path (got {relative or value!r})")
    return os.pathsep.join(dirs)


def program_entries(value: tuple[str, ...]) -> tuple[str, ...]:
    """An allow-list setting of programs; ValueError for a relative path with a slash."""
    relative = [p for p in value if "/" in p and not os.path.isabs(p)]
    if relative:
        raise ValueError(f"each program must be an absolute path or a bare name (got {relative!r})")
    return value


def absolute_dirs(value: tuple[str, ...]) -> tuple[str, ...]:
    """An allow-list setting of directories; ValueError unless every one is absolute."""
    relative = [d for d in value if not os.path.isabs(d)]
    if relative:
        raise ValueError(f"every directory must be an absolute path (got {relative!r})")
    return value
