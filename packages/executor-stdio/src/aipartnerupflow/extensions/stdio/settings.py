"""Operator settings of ``command_executor`` (``AIPARTNERUPFLOW_COMMAND_*``).

``command_executor`` is a dangerous executor: tasks may use it only once
``AIPARTNERUPFLOW_ENABLED_EXECUTORS`` lists ``command_executor`` (core's opt-in gate). These
settings then say what it may run, where, and with which environment. Nothing a task says can
widen them.
"""

from __future__ import annotations

from typing import ClassVar

import pydantic

from aipartnerupflow.core.executors.caps import DEFAULT_MAX_OUTPUT_BYTES
from aipartnerupflow.core.executors.programs import absolute_dirs, program_entries, search_path_dirs
from aipartnerupflow.core.settings import Settings

__all__ = ["DEFAULT_SEARCH_PATH", "CommandSettings"]

#: Where bare program names are looked up (never the server's or the task's PATH).
DEFAULT_SEARCH_PATH = "/usr/local/bin:/usr/bin:/bin"


class CommandSettings(Settings):
    """What ``command_executor`` may run, where, and with which environment."""

    env_prefix: ClassVar[str] = "AIPARTNERUPFLOW_COMMAND_"

    allowed_executables: tuple[str, ...] = pydantic.Field(
        default=(),
        description="Programs tasks may run: absolute paths, or bare names looked up in "
        "AIPARTNERUPFLOW_COMMAND_SEARCH_PATH. A task's program is allowed when its resolved "
        "path (symlinks followed) is the resolved path of one of these. Empty: nothing runs.",
        json_schema_extra={"fallback": "AIPARTNERUPFLOW_STDIO_COMMAND_WHITELIST"},
    )
    allowed_dirs: tuple[str, ...] = pydantic.Field(
        default=(),
        description="Directories (and their subdirectories) a task's cwd may be, compared "
        "after resolving symlinks and '..'. Empty: tasks may not set cwd; programs run in a "
        "new empty temporary directory.",
    )
    search_path: str = pydantic.Field(
        default=DEFAULT_SEARCH_PATH,
        description="Directories (':'-separated) where bare program names are looked up, and "
        "the PATH the program gets.",
    )
    inherit_env: tuple[str, ...] = pydantic.Field(
        default=("HOME", "LANG"),
        description="Variables of the server's environment passed to programs (nothing else "
        "is inherited; PATH is always AIPARTNERUPFLOW_COMMAND_SEARCH_PATH, so 'PATH' alone "
        "inherits nothing).",
    )
    env_allow: tuple[str, ...] = pydantic.Field(
        default=(),
        description="Variable names a task's 'env' input may set ('*': any name except "
        "LD_* and DYLD_*, which are always refused).",
    )
    secret_env: tuple[str, ...] = pydantic.Field(
        default=(),
        description="Server environment variables a task's 'secret_env' input may pass to "
        "its program (besides AIPARTNERUPFLOW_SECRET_ENV); their values are masked in "
        "results, errors and logs.",
    )
    max_output_bytes: int = pydantic.Field(
        default=DEFAULT_MAX_OUTPUT_BYTES,
        ge=0,
        description="Most bytes kept of stdout and of stderr each (the rest is counted, then "
        "dropped); a task's max_output_bytes can only lower it.",
    )
    max_timeout: float = pydantic.Field(
        default=3600.0,
        gt=0,
        description="Longest timeout (seconds) a task may ask for.",
    )
    kill_grace: float = pydantic.Field(
        default=2.0,
        ge=0,
        description="Seconds between SIGTERM and SIGKILL when a program is stopped.",
    )

    @pydantic.field_validator("search_path")
    @classmethod
    def _absolute_search_path(cls, value: str) -> str:
        return search_path_dirs(value)

    @pydantic.field_validator("allowed_dirs")
    @classmethod
    def _absolute_dirs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return absolute_dirs(value)

    @pydantic.field_validator("allowed_executables")
    @classmethod
    def _absolute_or_bare(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return program_entries(value)
