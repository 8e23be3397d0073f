"""Operator settings of ``ssh_executor``: ``AIPARTNERUPFLOW_SSH_*`` environment variables.

Task JSON cannot loosen any of them: which hosts may be reached, which known_hosts file is
trusted, whether unknown hosts may be accepted, which key directories and environment
variables a task may name, and how much output is kept.
"""

from __future__ import annotations

from pathlib import Path

import pydantic

from aipartnerupflow.core.executors.caps import DEFAULT_MAX_OUTPUT_BYTES
from aipartnerupflow.core.executors.settings import OutboundSettings, SecretEnvSettings

__all__ = ["SshSettings"]


class SshSettings(OutboundSettings, SecretEnvSettings):
    """Settings of the SSH executor."""

    env_prefix = "AIPARTNERUPFLOW_SSH_"

    known_hosts: str | None = pydantic.Field(
        default=None,
        description="known_hosts file that host keys are checked against (default: "
        "~/.ssh/known_hosts of the user running the engine).",
    )
    allow_accept_new: bool = pydantic.Field(
        default=False,
        description="Let tasks ask for host_key_policy 'accept_new': a host with no entry in "
        "the known_hosts file is trusted on first use and its key appended to the file.",
    )
    allowed_commands: tuple[str, ...] = pydantic.Field(
        default=(),
        description="When set, only argv commands whose program (argv[0]) is listed may run, "
        "and command strings (run by the remote shell, so not checkable) are refused.",
    )
    key_dirs: tuple[str, ...] = pydantic.Field(
        default=(),
        description="Directories a task's key_file may be read from (empty: key_file is "
        "refused; give the key inline or through private_key_env instead).",
    )
    allow_agent: bool = pydantic.Field(
        default=False,
        description="Let tasks authenticate with the ssh-agent of the engine's environment "
        "(SSH_AUTH_SOCK): every key the agent holds becomes usable by task JSON.",
    )
    max_output_bytes: int = pydantic.Field(
        default=DEFAULT_MAX_OUTPUT_BYTES,
        ge=0,
        description="Most bytes of stdout and of stderr kept per task; tasks may ask for less.",
    )
    connect_timeout: float = pydantic.Field(
        default=15.0,
        gt=0,
        description="Seconds to open the TCP connection and finish the SSH handshake and login.",
    )
    max_connections: int = pydantic.Field(
        default=16,
        ge=1,
        description="Most SSH connections kept open for reuse per event loop (one per host, "
        "port, user and credentials).",
    )
    max_sessions: int = pydantic.Field(
        default=8,
        ge=1,
        description="Most commands run at once over one connection (OpenSSH allows 10 "
        "sessions per connection by default, MaxSessions); more tasks wait their turn.",
    )

    def known_hosts_path(self) -> Path:
        """The known_hosts file in use."""
        return Path(self.known_hosts or "~/.ssh/known_hosts").expanduser()
