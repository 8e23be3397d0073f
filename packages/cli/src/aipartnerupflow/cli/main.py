"""The root ``apflow`` command: global options, lazy sub-commands, plugins, error handling.

Sub-command modules are imported only when their command runs (or when help lists them with
their own text), and plugin sub-commands from the ``aipartnerupflow.cli`` entry-point group are
looked up only when a name is not built in. Help output is plain (no rich rendering): rich help
alone costs more than the whole start-up budget.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from difflib import get_close_matches
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from aipartnerupflow.cli import _fastparams
from aipartnerupflow.cli._common import (
    CliState,
    check_log_level,
    describe_error,
    get_state,
    load_env_file,
)
from aipartnerupflow.cli._root import (
    APP_HELP,
    BUILTIN_COMMANDS,
    OPTION_HELP,
    PLUGIN_CLI_GROUP,
    PluginCommands,
    command_rows,
    scan_entry_point_names,
    to_click,
    version_text,
)

__all__ = [
    "BUILTIN_COMMANDS",
    "PLUGIN_CLI_GROUP",
    "ApflowGroup",
    "app",
    "main",
    "scan_entry_point_names",
    "version_text",
]

_fastparams.install()


def _debug(ctx: Any) -> bool:
    """--debug or AIPARTNERUPFLOW_DEBUG; False when the settings themselves are broken."""
    if ctx.params.get("debug"):
        return True
    try:
        return get_state(ctx).debug
    except Exception:
        return False


class ApflowGroup(TyperGroup):
    """The root group: built-in commands load on demand, plugin commands from entry points."""

    _plugins: PluginCommands | None = None

    def _plugin_commands(self) -> PluginCommands:
        if self._plugins is None:
            self._plugins = PluginCommands()
        return self._plugins

    def list_commands(self, ctx: Any) -> list[str]:
        own = [n for n in self.commands if n not in BUILTIN_COMMANDS]
        plugins = [n for n in self._plugin_commands().names() if n not in self.commands]
        return [*BUILTIN_COMMANDS, *own, *plugins]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        cmd = self.commands.get(cmd_name)
        if cmd is not None:
            return cmd
        builtin = BUILTIN_COMMANDS.get(cmd_name)
        if builtin is not None:
            module, attr, _ = builtin
            cmd = to_click(getattr(importlib.import_module(module), attr), cmd_name)
        else:
            cmd = self._plugin_commands().get(cmd_name)
            if cmd is None:
                return None
        self.commands[cmd_name] = cmd
        return cmd

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = command_rows(self.list_commands(ctx), lambda name: self.get_command(ctx, name))
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


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit()


app = typer.Typer(
    name="apflow",
    cls=ApflowGroup,
    help=APP_HELP,
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
            help=OPTION_HELP["--database-url"],
            show_default=False,
        ),
    ] = None,
    plugin: Annotated[
        list[str] | None,
        typer.Option(
            "--plugin",
            metavar="MODULE",
            help=OPTION_HELP["--plugin"],
            show_default=False,
        ),
    ] = None,
    env_file: Annotated[
        str | None,
        typer.Option(
            "--env-file",
            metavar="FILE",
            help=OPTION_HELP["--env-file"],
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(
            "--log-level",
            metavar="LEVEL",
            help=OPTION_HELP["--log-level"],
            show_default=False,
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help=OPTION_HELP["--debug"])] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_version_callback,
            is_eager=True,
            help=OPTION_HELP["--version"],
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
