"""Operator settings of ``mcp_executor`` (``AIPARTNERUPFLOW_MCP_*``).

Streamable HTTP servers are limited by the outbound policy (``ALLOWED_HOSTS``,
``ALLOW_PRIVATE``). Stdio servers are local programs, so they are off until the operator sets
``AIPARTNERUPFLOW_MCP_ALLOW_STDIO=true`` *and* lists each program in
``AIPARTNERUPFLOW_MCP_ALLOWED_EXECUTABLES`` (matched on resolved absolute paths, as
``command_executor`` does). Nothing a task says can widen these.
"""

from __future__ import annotations

from typing import ClassVar

import pydantic

from aipartnerupflow.core.executors.caps import DEFAULT_MAX_OUTPUT_BYTES
from aipartnerupflow.core.executors.programs import absolute_dirs, program_entries, search_path_dirs
from aipartnerupflow.core.executors.settings import OutboundSettings

__all__ = ["DEFAULT_SEARCH_PATH", "McpSettings"]

#: Where bare program names of stdio servers are looked up (never the server's PATH).
DEFAULT_SEARCH_PATH = "/usr/local/bin:/usr/bin:/bin"


class McpSettings(OutboundSettings):
    """Where ``mcp_executor`` may connect, which stdio servers it may start, what it keeps."""

    env_prefix: ClassVar[str] = "AIPARTNERUPFLOW_MCP_"

    allow_stdio: bool = pydantic.Field(
        default=False,
        description="Allow stdio servers (local programs started by the engine). Off by "
        "default; each program must also be in AIPARTNERUPFLOW_MCP_ALLOWED_EXECUTABLES.",
    )
    allowed_executables: tuple[str, ...] = pydantic.Field(
        default=(),
        description="Programs stdio servers may be: absolute paths, or bare names looked up in "
        "AIPARTNERUPFLOW_MCP_SEARCH_PATH, compared after resolving symlinks.",
    )
    search_path: str = pydantic.Field(
        default=DEFAULT_SEARCH_PATH,
        description="Directories (':'-separated) where bare program names are looked up, and "
        "the PATH stdio servers get.",
    )
    allowed_dirs: tuple[str, ...] = pydantic.Field(
        default=(),
        description="Directories (and subdirectories) a stdio server's cwd may be. Empty: "
        "tasks may not set cwd.",
    )
    env_allow: tuple[str, ...] = pydantic.Field(
        default=(),
        description="Variable names a task's 'env' may set for a stdio server ('*': any name "
        "except LD_* and DYLD_*, which are always refused).",
    )
    max_output_bytes: int = pydantic.Field(
        default=DEFAULT_MAX_OUTPUT_BYTES,
        ge=0,
        description="Most bytes of content kept per result (text and decoded binary "
        "together); a task's max_output_bytes can only lower it.",
    )
    max_timeout: float = pydantic.Field(
        default=3600.0, gt=0, description="Longest timeout (seconds) a task may ask for."
    )
    connect_timeout: float = pydantic.Field(
        default=30.0,
        gt=0,
        description="Seconds to connect and finish the MCP initialize handshake.",
    )

    @pydantic.field_validator("search_path")
    @classmethod
    def _absolute_search_path(cls, value: str) -> str:
        return search_path_dirs(value)

    @pydantic.field_validator("allowed_executables")
    @classmethod
    def _absolute_or_bare(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return program_entries(value)

    @pydantic.field_validator("allowed_dirs")
    @classmethod
    def _absolute_dirs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return absolute_dirs(value)
