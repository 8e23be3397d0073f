"""Shared pieces of the CLI: state, user errors, JSON in and out, consoles, the task manager.

Only the standard library and typer are imported at module level; everything heavy (the engine,
storage, rich) is imported inside the functions that need it, so help stays fast.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import sys
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from aipartnerupflow.core.manager import TaskManager

__all__ = [
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

PLUGINS_ENV = "AIPARTNERUPFLOW_PLUGINS"
DATABASE_ENV = "AIPARTNERUPFLOW_DATABASE_URL"
LOG_HANDLER_NAME = "aipartnerupflow-cli"


class CliError(Exception):
    """A problem the user can fix: shown as one line on stderr, exit code 2 by default."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(slots=True)
class CliState:
    """Options of the root command, shared by every sub-command."""

    database_url: str | None = None
    plugins: list[str] = field(default_factory=list)
    debug: bool = False
    database_url_flag: str | None = None  # given as --database-url (not from the environment)
    plugin_flags: list[str] = field(default_factory=list)  # given as --plugin
    log_level: str = "WARNING"
    _plugins_loaded: bool = False
    _logging_ready: bool = False

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
            cwd = os.getcwd()
            if cwd not in sys.path and "" not in sys.path:
                sys.path.insert(0, cwd)  # like ``python -m``: modules next to the user resolve
            for module in self.plugins:
                import_plugin_module(module)
        return list(self.plugins)

    def resolved_database_url(self) -> str:
        """The database URL in effect: ``--database-url``, the environment, or the default."""
        if self.database_url:
            return self.database_url
        from aipartnerupflow.core.storage import default_database_url

        return default_database_url()


def plugin_modules_from_env() -> list[str]:
    """Module paths listed in ``AIPARTNERUPFLOW_PLUGINS`` (comma or whitespace separated)."""
    raw = os.environ.get(PLUGINS_ENV, "")
    return [m for m in re.split(r"[,\s]+", raw) if m]


def import_plugin_module(module: str) -> None:
    """Import one plugin module or file, turning failures into a clear user error."""
    try:
        if module.endswith(".py") or os.sep in module:
            path = Path(module)
            if not path.is_file():
                raise CliError(f"plugin file {module} does not exist")
            name = f"apflow_plugin_{path.stem}"
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise CliError(f"cannot load plugin file {module}")
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            spec.loader.exec_module(mod)
        else:
            importlib.import_module(module)
    except CliError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            raise CliError(
                f"plugin module {module!r} was not found: check the name, install it, or add "
                "its directory to PYTHONPATH"
            ) from exc
        raise CliError(f"plugin module {module!r} failed to import: {exc}") from exc
    except Exception as exc:
        from aipartnerupflow.core.errors import AipartnerupflowError

        if isinstance(exc, AipartnerupflowError):
            raise CliError(f"plugin module {module!r}: {exc}") from exc
        raise CliError(
            f"plugin module {module!r} failed to import: {type(exc).__name__}: {exc}"
        ) from exc


def get_state(ctx: typer.Context | None) -> CliState:
    """The root command's state (a default one when a command runs on its own)."""
    if ctx is not None:
        obj = ctx.find_root().obj
        if isinstance(obj, CliState):
            return obj
    return CliState(plugins=plugin_modules_from_env())


def load_env_file(path: str | None) -> Path | None:
    """Load ``.env`` (or ``path``) into the environment without overriding set variables."""
    if path is not None:
        target = Path(path)
        if not target.is_file():
            raise CliError(f"env file {path} does not exist")
    else:
        target = Path.cwd() / ".env"
        if not target.is_file():
            return None
    from dotenv import load_dotenv

    load_dotenv(target, override=False)
    return target


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
    """A database URL with its password hidden."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


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
