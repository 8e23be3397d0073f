"""Shared pieces of the CLI: state, user errors, JSON in and out, consoles, the task manager.

Only the standard library and typer are imported at module level; everything heavy (the engine,
storage, rich) is imported inside the functions that need it, so help stays fast.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from aipartnerupflow.cli._root import DATABASE_ENV

if TYPE_CHECKING:
    from rich.console import Console

    from aipartnerupflow.cli.settings import CliSettings
    from aipartnerupflow.core.manager import TaskManager
    from aipartnerupflow.core.settings import CoreSettings

__all__ = [
    "DATABASE_ENV",
    "PLUGINS_ENV",
    "CliError",
    "CliState",
    "check_log_level",
    "configure_logging",
    "console",
    "describe_error",
    "err_console",
    "get_state",
    "load_env_file",
    "open_manager",
    "parse_json",
    "print_json",
    "read_text_source",
    "redact_url",
    "run_async",
    "to_jsonable",
]

T = TypeVar("T")

#: Names of core settings the CLI's help mentions (declared in CoreSettings; a test checks).
PLUGINS_ENV = "AIPARTNERUPFLOW_PLUGINS"
LOG_HANDLER_NAME = "aipartnerupflow-cli"


class CliError(Exception):
    """A problem the user can fix: shown as one line on stderr, exit code 2 by default."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(slots=True)
class CliState:
    """Options of the root command, shared by every sub-command.

    The flags are kept as given; the settings they fall back to (:class:`CoreSettings`,
    :class:`CliSettings`) are read from the environment once, when a command first needs them,
    so help never imports pydantic.
    """

    database_url_flag: str | None = None  # given as --database-url (not from the environment)
    plugin_flags: list[str] = field(default_factory=list)  # given as --plugin
    debug_flag: bool = False
    log_level_flag: str | None = None
    _core: CoreSettings | None = None
    _cli: CliSettings | None = None
    _plugins_loaded: bool = False
    _logging_ready: bool = False

    @property
    def core_settings(self) -> CoreSettings:
        """The core's settings (read on first use)."""
        if self._core is None:
            from aipartnerupflow.core.settings import CoreSettings

            self._core = CoreSettings.get()
        return self._core

    @property
    def cli_settings(self) -> CliSettings:
        """The CLI's settings (read on first use)."""
        if self._cli is None:
            from aipartnerupflow.cli.settings import CliSettings

            self._cli = CliSettings.get()
        return self._cli

    @property
    def database_url(self) -> str | None:
        """``--database-url``, else ``AIPARTNERUPFLOW_DATABASE_URL`` (None: the default)."""
        return self.database_url_flag or self.core_settings.database_url

    @property
    def plugins(self) -> list[str]:
        """``--plugin`` modules, then ``AIPARTNERUPFLOW_PLUGINS``' (each once)."""
        return list(dict.fromkeys([*self.plugin_flags, *self.core_settings.plugins]))

    @property
    def debug(self) -> bool:
        """``--debug`` or ``AIPARTNERUPFLOW_DEBUG``."""
        return self.debug_flag or self.cli_settings.debug

    @property
    def log_level(self) -> str:
        """``--log-level``, else ``AIPARTNERUPFLOW_LOG_LEVEL``, else DEBUG if debug or WARNING."""
        if self.log_level_flag:
            return check_log_level(self.log_level_flag)
        return self.core_settings.log_level or ("DEBUG" if self.debug else "WARNING")

    def setup_logging(self) -> None:
        """Send logs to stderr at the chosen level (once; only commands that work need it)."""
        if not self._logging_ready:
            self._logging_ready = True
            configure_logging(self.log_level)

    def load_plugins(self) -> list[str]:
        """Import the user's plugin modules (``--plugin`` and ``AIPARTNERUPFLOW_PLUGINS``) once.

        The modules register executors with ``@executor_register()`` as a side effect.
        """
        self.setup_logging()
        if not self._plugins_loaded:
            self._plugins_loaded = True
            from aipartnerupflow.core.errors import PluginImportError
            from aipartnerupflow.core.registry import load_plugins

            try:
                load_plugins(self.plugins, from_env=False)
            except PluginImportError as exc:
                raise CliError(str(exc)) from exc
        return self.plugins

    def resolved_database_url(self) -> str:
        """The database URL in effect: ``--database-url``, the environment, or the default."""
        if self.database_url:
            return self.database_url
        from aipartnerupflow.core.storage import default_database_url

        return default_database_url()


def get_state(ctx: typer.Context | None) -> CliState:
    """The root command's state (a default one when a command runs on its own)."""
    if ctx is not None:
        obj = ctx.find_root().obj
        if isinstance(obj, CliState):
            return obj
    return CliState()


def load_env_file(path: str | None) -> Path | None:
    """Load ``.env`` (or ``path``) into the environment without overriding set variables.

    Also forgets settings read before, so this invocation reads the environment afresh.
    """
    if path is not None and not Path(path).is_file():
        raise CliError(f"env file {path} does not exist")
    target = Path(path) if path is not None else Path.cwd() / ".env"
    if not target.is_file():
        _forget_settings()
        return None
    from aipartnerupflow.core.settings import load_dotenv

    return load_dotenv(target)


def _forget_settings() -> None:
    """Forget cached settings without importing pydantic when nothing read them yet."""
    module = sys.modules.get("aipartnerupflow.core.settings")
    if module is not None:
        module.reload_settings()


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def check_log_level(level: str) -> str:
    """The level name in upper case; a user error for anything else."""
    name = level.strip().upper()
    if name not in LOG_LEVELS:
        raise CliError(f"unknown log level {level!r}: use {', '.join(LOG_LEVELS)}")
    return name


def configure_logging(level: str) -> None:
    """Send log records to stderr (never stdout, which carries results)."""
    import logging

    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == LOG_HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(LOG_HANDLER_NAME)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(check_log_level(level))


# -- JSON in ------------------------------------------------------------------------------


def read_text_source(path: str, what: str) -> str:
    """Read a file, or stdin for ``-``; a clear error when it cannot be read."""
    if path == "-":
        return sys.stdin.read()
    target = Path(path).expanduser()
    if not target.exists():
        raise CliError(f"{what} {path} does not exist")
    if target.is_dir():
        raise CliError(f"{what} {path} is a directory, not a file")
    try:
        return target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {what} {path}: {exc}") from exc


def parse_json(text: str, source: str) -> Any:
    """Parse JSON; malformed input names the source, line and column."""
    if not text.strip():
        raise CliError(f"{source} is empty: expected JSON")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except RecursionError:
        raise CliError(
            f"{source} is nested too deeply to parse; task JSON may nest at most 32 levels"
        ) from None


# -- output -------------------------------------------------------------------------------


def to_jsonable(value: Any) -> Any:
    """Convert dataclasses, enums, datetimes and models into plain JSON values."""
    import dataclasses
    from datetime import date, datetime
    from enum import Enum

    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Enum):
        return to_jsonable(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_jsonable(to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return to_jsonable(dump(mode="json"))
    return str(value)


def print_json(data: Any) -> None:
    """Write exactly one JSON document (and a newline) to stdout."""
    sys.stdout.write(json.dumps(to_jsonable(data), indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def console() -> Console:
    """A rich console on stdout, for people."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def err_console() -> Console:
    """A rich console on stderr, for messages that must not mix with results."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def redact_url(url: str) -> str:
    """A database URL with its password hidden (user-info and ``?password=``-style values)."""
    from aipartnerupflow.core.storage import redact_url as redact

    return redact(url)


# -- errors -------------------------------------------------------------------------------


def describe_error(exc: BaseException) -> tuple[str, int] | None:
    """Message and exit code for an error the user can act on; None for a bug."""
    if isinstance(exc, CliError):
        return exc.message, exc.exit_code
    from aipartnerupflow.core import errors

    if isinstance(exc, errors.DatabaseLockedError):
        return describe_lock(str(exc)), 2
    if isinstance(exc, errors.ExecutorError):
        return str(exc), 1
    if isinstance(exc, errors.AipartnerupflowError):
        return str(exc), 2
    return None


def describe_lock(message: str) -> str:
    """Say who holds the DuckDB file and what to do, naming the daemon when it is the holder."""
    match = re.search(r"\(PID (\d+)\)", message) or re.search(r"process (\d+)", message)
    holder_pid = int(match.group(1)) if match else None
    from aipartnerupflow.cli._daemon import read_running_state

    state = read_running_state()
    if state is not None and (holder_pid is None or holder_pid == state.pid):
        return (
            f"the task database is held by the apflow daemon (pid {state.pid}, serving "
            f"{state.protocol} at {state.url}) and this command cannot go through its API. "
            "Stop the daemon with `apflow daemon stop`, or use another database with "
            "--database-url."
        )
    holder = "another process"
    if holder_pid is not None:
        holder = f"process {holder_pid}"
        command = _command_line(holder_pid)
        if command:
            holder += f" ({command})"
    return (
        f"the task database is locked by {holder} (DuckDB allows one process per file). "
        "Stop that process (`apflow daemon stop` if it is the daemon), talk to it through its "
        "API server, or use another database with --database-url."
    )


def _command_line(pid: int) -> str | None:
    """A short form of a process's command line, where /proc shows it."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    parts = [p.decode(errors="replace") for p in raw.split(b"\0") if p]
    if not parts:
        return None
    text = " ".join([Path(parts[0]).name, *parts[1:]])
    return text if len(text) <= 80 else text[:79] + "…"


# -- engine -------------------------------------------------------------------------------


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a fresh event loop."""
    import asyncio

    return asyncio.run(coro)


@asynccontextmanager
async def open_manager(
    state: CliState, *, load_plugins: bool = True, **options: Any
) -> AsyncIterator[TaskManager]:
    """A TaskManager on the configured database, closed (and flushed) on exit."""
    state.setup_logging()
    if load_plugins:
        state.load_plugins()
    from aipartnerupflow.core.manager import TaskManager
    from aipartnerupflow.core.storage import create_session

    store = create_session(state.database_url or None)
    manager = TaskManager(store, **options)
    try:
        yield manager
    finally:
        await manager.close()
