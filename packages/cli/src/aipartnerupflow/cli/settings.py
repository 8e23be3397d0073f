"""The CLI's settings model: the ``AIPARTNERUPFLOW_*`` variables only the CLI reads.

The database, plugins and log level are the core's (:class:`CoreSettings`); the CLI reads both
models once per invocation, when a command first needs them (help never does, so it stays
fast and does not import pydantic).
"""

from __future__ import annotations

from pydantic import Field

from aipartnerupflow.core.settings import Settings

__all__ = ["CliSettings"]


class CliSettings(Settings):
    """Settings of ``apflow`` / ``aipartnerupflow``."""

    debug: bool = Field(default=False, description="Show tracebacks and debug logs, like --debug.")
    daemon_dir: str | None = Field(
        default=None,
        description="Directory of the daemon's pid, state and log files (default: "
        "$XDG_STATE_HOME/aipartnerupflow, else ~/.aipartnerup/daemon).",
    )
    api_token: str | None = Field(
        default=None,
        repr=False,
        description="Bearer token the CLI sends to the daemon's API server (when it requires "
        "JWT authentication).",
    )
