"""The root ``apflow`` command: global options, lazy sub-commands, plugins, error handling.

Sub-command modules are imported only when their command runs (or when help lists them with
their own text), and plugin sub-commands from the ``aipartnerupflow.cli`` entry-point group are
looked up only when a name is not built in. Help output is plain (no rich rendering): rich help
alone costs more than the whole start-up budget.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from difflib import get_close_matches
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from aipartnerupflow.cli import __version__, _fastparams
from aipartnerupflow.cli._common import (
    DATABASE_ENV,
    CliError,
    CliState,
    check_log_level,
    describe_error,
    get_state,
    load_env_file,
)

__all__ = [
    "BUILTIN_COMMANDS",
    "ApflowGroup",
    "app",
    "main",
    "scan_entry_point_names",
    "version_text",
]

_fastparams.install()

_PKG = "aipartnerupflow.cli.commands"

#: Built-in sub-commands: name -> (module, attribute, one-line help shown by ``apflow --help``).
BUILTIN_COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": (f"{_PKG}.run", "app", "Run a task tree and follow it live (run flow)."),
    "tasks": (f"{_PKG}.tasks", "app", "Inspect and manage stored tasks."),
    "executors": (f"{_PKG}.executors", "app", "List installed executors and their inputs."),
    "serve": (f"{_PKG}.serve", "app", "Run an API server (a2a, mcp) in the foreground."),
    "daemon": (f"{_PKG}.daemon", "app", "Run the API server in the background."),
    "worker": (f"{_PKG}.worker", "app", "Execute tasks from a shared PostgreSQL database."),
    "db": (f"{_PKG}.db", "app", "Database maintenance (upgrade, import-legacy)."),
    "info": (f"{_PKG}.info", "info_app", "Versions, database location, executors, plugins."),
    "version": (f"{_PKG}.info", "version_app", "Show the version."),
}

PLUGIN_CLI_GROUP = "aipartnerupflow.cli"


def scan_entry_point_names(group: str) -> list[str]:
    """Entry-point names of ``group`` in the installed distributions on ``sys.path``.

    A quick text scan of ``*.dist-info/entry_points.txt`` (what ``importlib.metadata`` reads),
    without importing ``importlib.metadata`` and its dependencies: root help must stay fast.
    Loading a plugin still goes through the core registry.
    """
    header = f"[{group}]"
    names: set[str] = set()
    for entry in sys.path or ["."]:
        try:
            listing = os.scandir(entry or ".")
        except OSError:
            continue
        with listing:
            for item in listing:
                if not item.name.endswith((".dist-info", ".egg-info")):
                    continue
                try:
                    with open(os.path.join(item.path, "entry_points.txt"), encoding="utf-8") as fh:
                        text = fh.read()
                except OSError:
                    continue
                if header not in text:
                    continue
                section = False
                for line in text.splitlines():
                    line = line.strip()
                    if line.startswith("["):
                        section = line == header
                    elif section and "=" in line and not line.startswith(("#", ";")):
                        names.add(line.split("=", 1)[0].strip())
    return sorted(names)


def _debug(ctx: Any) -> bool:
    """--debug or AIPARTNERUPFLOW_DEBUG; False when the settings themselves are broken."""
    if ctx.params.get("debug"):
        return True
    try:
        return get_state(ctx).debug
    except Exception:
        return False


def _to_click(obj: Any, name: str) -> Any:
    """A click command for a Typer app, a click command or a plain function."""
    import typer.main
    from typer._click.core import Command

    if isinstance(obj, typer.Typer):
        cmd = typer.main.get_command(obj)
    elif isinstance(obj, Command):
        cmd = obj
    elif callable(obj):
        single = typer.Typer()
        single.command(name=name)(obj)
        cmd = typer.main.get_command(single)
    else:
        raise CliError(
            f"CLI plugin {name!r} points at {obj!r}: expected a typer.Typer, a click command "
            "or a function"
        )
    cmd.name = name
    return cmd


class ApflowGroup(TyperGroup):
    """The root group: built-in commands load on demand, plugin commands from entry points."""

    _plugins: Any = None

    def _plugin_group(self) -> Any:
        if self._plugins is None:
            from aipartnerupflow.core.registry import PluginGroup

            self._plugins = PluginGroup(PLUGIN_CLI_GROUP)
        return self._plugins

    def _plugin_names(self) -> list[str]:
        names = scan_entry_point_names(PLUGIN_CLI_GROUP)
        return [n for n in names if n not in BUILTIN_COMMANDS and n not in self.commands]

    def list_commands(self, ctx: Any) -> list[str]:
        own = [n for n in self.commands if n not in BUILTIN_COMMANDS]
        return [*BUILTIN_COMMANDS, *own, *self._plugin_names()]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        cmd = self.commands.get(cmd_name)
        if cmd is not None:
            return cmd
        builtin = BUILTIN_COMMANDS.get(cmd_name)
        if builtin is not None:
            module, attr, _ = builtin
            cmd = _to_click(getattr(importlib.import_module(module), attr), cmd_name)
        else:
            if cmd_name not in scan_entry_point_names(PLUGIN_CLI_GROUP):
                return None
            group = self._plugin_group()
            if group.entry(cmd_name) is None:
                return None
            try:
                cmd = _to_click(group.load(cmd_name), cmd_name)
            except CliError:
                raise
            except Exception as exc:
                raise CliError(f"CLI plugin {cmd_name!r} cannot be used: {exc}") from exc
        self.commands[cmd_name] = cmd
        return cmd

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows: list[tuple[str, str]] = []
        for name in self.list_commands(ctx):
            builtin = BUILTIN_COMMANDS.get(name)
            if builtin is not None:
                rows.append((name, builtin[2]))
                continue
            try:
                cmd = self.get_command(ctx, name)
            except CliError as exc:
                rows.append((name, f"(plugin unavailable: {exc.message})"))
                continue
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(80)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Translate aipartnerupflow 0.9 spellings first (:mod:`aipartnerupflow.cli._legacy`)."""
        from typer._click.exceptions import UsageError

        from aipartnerupflow.cli._legacy import LegacyUsageError, translate

        try:
            args, notes = translate(list(args))
        except LegacyUsageError as exc:
            raise UsageError(str(exc), ctx) from None
        for note in notes:
            typer.echo(f"Note: {note}", err=True)
        result: list[str] = super().parse_args(ctx, args)
        return result

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        from typer._click.exceptions import UsageError

        try:
            return self._click_resolve_command(ctx, args)
        except UsageError as exc:
            if args:
                matches = get_close_matches(args[0], self.list_commands(ctx))
                if matches:
                    exc.message = (
                        exc.message.rstrip(".")
                        + ". Did you mean "
                        + ", ".join(repr(m) for m in matches)
                        + "?"
                    )
            raise

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            from typer._click.exceptions import ClickException

            if isinstance(exc, ClickException):
                raise
            debug = _debug(ctx)
            described = describe_error(exc)
            if debug:
                traceback.print_exception(exc, file=sys.stderr)
            if described is None:
                message = f"unexpected error: {type(exc).__name__}: {exc}"
                if not debug:
                    message += " (run again with --debug to see the traceback)"
                code = 1
            else:
                message, code = described
            typer.echo(f"Error: {message}", err=True)
            raise typer.Exit(code) from None


def version_text() -> str:
    """``aipartnerupflow X (cli Y)``."""
    import aipartnerupflow

    core = getattr(aipartnerupflow, "__version__", "unknown")
    return f"aipartnerupflow {core} (cli {__version__})"


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit()


app = typer.Typer(
    name="apflow",
    cls=ApflowGroup,
    help=(
        "aipartnerupflow: run task trees, inspect tasks, serve the API.\n\n"
        "Configuration comes from the environment and an optional .env file in the current "
        f"directory; {DATABASE_ENV} (or --database-url) selects the database."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            metavar="URL",
            help=(
                "Database to use: duckdb:///path/file.duckdb or postgresql://user:pw@host/db "
                f"[env: {DATABASE_ENV}; default: ~/.aipartnerup/data/aipartnerupflow.duckdb]"
            ),
            show_default=False,
        ),
    ] = None,
    plugin: Annotated[
        list[str] | None,
        typer.Option(
            "--plugin",
            metavar="MODULE",
            help=(
                "Import a module (or .py file) that registers executors with "
                "@executor_register(); repeatable [env: AIPARTNERUPFLOW_PLUGINS]"
            ),
            show_default=False,
        ),
    ] = None,
    env_file: Annotated[
        str | None,
        typer.Option(
            "--env-file",
            metavar="FILE",
            help="Load this file instead of ./.env",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(
            "--log-level",
            metavar="LEVEL",
            help="Log level on stderr [env: AIPARTNERUPFLOW_LOG_LEVEL; default: WARNING]",
            show_default=False,
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_version_callback,
            is_eager=True,
            help="Show the version and exit",
        ),
    ] = False,
) -> None:
    """Global options (before the command name)."""
    load_env_file(env_file)
    # The settings (CoreSettings, CliSettings) are read when a command first needs them.
    ctx.obj = CliState(
        database_url_flag=database_url or None,
        plugin_flags=list(plugin or []),
        debug_flag=debug,
        log_level_flag=check_log_level(log_level) if log_level else None,
    )


def main() -> None:
    """Console-script entry point of ``apflow`` and ``aipartnerupflow``."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
