"""SSH executor for aipartnerupflow: ``ssh_executor``, on asyncssh.

Importing this package does not import asyncssh; the first task does. See the package README
for the inputs, settings and security notes.
"""

from __future__ import annotations

from aipartnerupflow.extensions.ssh.errors import (
    SshAuthError,
    SshConnectionError,
    SshExitError,
    SshHostKeyError,
    SshTimeoutError,
)
from aipartnerupflow.extensions.ssh.executor import SshExecutor, aclose_connections
from aipartnerupflow.extensions.ssh.settings import SshSettings

__all__ = [
    "SshAuthError",
    "SshConnectionError",
    "SshExecutor",
    "SshExitError",
    "SshHostKeyError",
    "SshSettings",
    "SshTimeoutError",
    "aclose_connections",
]
