"""The root command's texts, its sub-command table, and ``apflow --help`` without typer.

:mod:`aipartnerupflow.cli.main` builds the Typer application from these texts. The console
scripts answer ``apflow --help`` / ``-h``, ``apflow`` with no arguments and ``--version`` / ``-V``
through :func:`fast_path`, which renders the same text as typer's plain (non-rich) help
formatter without importing typer: only a plugin sub-command's own help needs it (and then
imports it). Anything else, or anything unusual (shell completion, ``python -m``, Windows,
output that typer's ``echo`` would transcode or strip), goes to typer. A test renders both
ways and compares them byte for byte.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import IO, Any

__all__ = [
    "APP_HELP",
    "BUILTIN_COMMANDS",
    "DATABASE_ENV",
    "OPTION_HELP",
    "PLUGIN_CLI_GROUP",
    "PluginCommands",
    "command_rows",
    "fast_path",
    "help_width",
    "render_root_help",
    "root_help",
    "scan_entry_point_names",
    "to_click",
    "version_text",
]

DATABASE_ENV = "AIPARTNERUPFLOW_DATABASE_URL"
PLUGIN_CLI_GROUP = "aipartnerupflow.cli"
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

APP_HELP = (
    "aipartnerupflow: run task trees, inspect tasks, serve the API.\n\n"
    "Configuration comes from the environment and an optional .env file in the current "
    f"directory; {DATABASE_ENV} (or --database-url) selects the database."
)

#: Help of the root's options, by option name (the declarations are in ``main.root``).
OPTION_HELP: dict[str, str] = {
    "--database-url": (
        "Database to use: duckdb:///path/file.duckdb or postgresql://user:pw@host/db "
        f"[env: {DATABASE_ENV}; default: ~/.aipartnerup/data/aipartnerupflow.duckdb]"
    ),
    "--plugin": (
        "Import a module (or .py file) that registers executors with "
        "@executor_register(); repeatable [env: AIPARTNERUPFLOW_PLUGINS]"
    ),
    "--env-file": "Load this file instead of ./.env",
    "--log-level": "Log level on stderr [env: AIPARTNERUPFLOW_LOG_LEVEL; default: WARNING]",
    "--debug": "Show tracebacks and debug logs",
    "--version": "Show the version and exit",
}

#: The options section of root help: how typer shows each declaration, and its help.
_OPTION_ROWS: tuple[tuple[str, str], ...] = (
    ("--database-url URL", OPTION_HELP["--database-url"]),
    ("--plugin MODULE", OPTION_HELP["--plugin"]),
    ("--env-file FILE", OPTION_HELP["--env-file"]),
    ("--log-level LEVEL", OPTION_HELP["--log-level"]),
    ("--debug", OPTION_HELP["--debug"]),
    ("-V, --version", OPTION_HELP["--version"]),
    ("-h, --help", "Show this message and exit."),
)
_USAGE_ARGS = "[OPTIONS] COMMAND [ARGS]..."


def version_text() -> str:
    """``aipartnerupflow X (cli Y)``."""
    import aipartnerupflow
    from aipartnerupflow.cli import __version__

    core = getattr(aipartnerupflow, "__version__", "unknown")
    return f"aipartnerupflow {core} (cli {__version__})"


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


def command_rows(names: Sequence[str], get_command: Callable[[str], Any]) -> list[tuple[str, str]]:
    """The "Commands" rows of root help: built-ins from the table, others from their command.

    ``get_command`` loads a plugin's click command (None when there is none); a plugin that
    cannot be loaded is listed with the reason.
    """
    rows: list[tuple[str, str]] = []
    for name in names:
        builtin = BUILTIN_COMMANDS.get(name)
        if builtin is not None:
            rows.append((name, builtin[2]))
            continue
        from aipartnerupflow.cli._common import CliError

        try:
            cmd = get_command(name)
        except CliError as exc:
            rows.append((name, f"(plugin unavailable: {exc.message})"))
            continue
        if cmd is not None and not cmd.hidden:
            rows.append((name, cmd.get_short_help_str(80)))
    return rows


# -- typer's plain help formatter, for the root's own text ----------------------------------


def help_width() -> int:
    """The text width typer's formatter uses: the terminal's, at most 78, at least 50."""
    import shutil

    return max(min(shutil.get_terminal_size().columns, 80) - 2, 50)


def _term_len(text: str) -> int:
    return len(text)  # the texts rendered here carry no ANSI codes (fast_path checks)


def _wrap(
    text: str,
    width: int,
    initial_indent: str = "",
    subsequent_indent: str = "",
    preserve_paragraphs: bool = False,
) -> str:
    """click's ``wrap_text``: words wrapped to ``width``, paragraphs kept apart."""
    import textwrap

    class Wrapper(textwrap.TextWrapper):
        def _handle_long_word(
            self, reversed_chunks: list[str], cur_line: list[str], cur_len: int, width: int
        ) -> None:
            space_left = max(width - cur_len, 1)
            last = reversed_chunks[-1]
            cur_line.append(last[:space_left])
            reversed_chunks[-1] = last[space_left:]

    text = text.expandtabs()
    wrapper = Wrapper(
        width,
        initial_indent=initial_indent,
        subsequent_indent=subsequent_indent,
        replace_whitespace=False,
    )
    if not preserve_paragraphs:
        return wrapper.fill(text)
    paragraphs: list[tuple[int, bool, str]] = []
    buf: list[str] = []
    indent: int | None = None

    def flush() -> None:
        if not buf:
            return
        if buf[0].strip() == "\b":
            paragraphs.append((indent or 0, True, "\n".join(buf[1:])))
        else:
            paragraphs.append((indent or 0, False, " ".join(buf)))
        del buf[:]

    for line in text.splitlines():
        if not line:
            flush()
            indent = None
        else:
            if indent is None:
                orig_len = _term_len(line)
                line = line.lstrip()
                indent = orig_len - _term_len(line)
            buf.append(line)
    flush()
    out: list[str] = []
    initial, subsequent = wrapper.initial_indent, wrapper.subsequent_indent
    for extra, raw, body in paragraphs:
        wrapper.initial_indent = initial + " " * extra
        wrapper.subsequent_indent = subsequent + " " * extra
        if raw:
            out.append(
                "\n".join(
                    f"{wrapper.initial_indent if i == 0 else wrapper.subsequent_indent}{line}"
                    for i, line in enumerate(body.splitlines())
                )
            )
        else:
            out.append(wrapper.fill(body))
    return "\n\n".join(out)


def _write_dl(out: list[str], rows: Sequence[tuple[str, str]], indent: int, width: int) -> None:
    """click's ``HelpFormatter.write_dl`` (first column at most 30 wide, 2 spaces apart)."""
    first_col = min(max(_term_len(first) for first, _ in rows), 30) + 2
    for first, second in rows:
        out.append(f"{'':>{indent}}{first}")
        if not second:
            out.append("\n")
            continue
        if _term_len(first) <= first_col - 2:
            out.append(" " * (first_col - _term_len(first)))
        else:
            out.append("\n")
            out.append(" " * (first_col + indent))
        lines = _wrap(second, max(width - first_col - 2, 10), preserve_paragraphs=True).splitlines()
        if lines:
            out.append(f"{lines[0]}\n")
            for line in lines[1:]:
                out.append(f"{'':>{first_col + indent}}{line}\n")
        else:  # pragma: no cover - click writes an empty line too
            out.append("\n")


def render_root_help(prog: str, commands: Sequence[tuple[str, str]], width: int) -> str:
    """Root help as typer's plain formatter writes it (without the final newline)."""
    out: list[str] = []
    usage_prefix = f"Usage: {prog} "
    if width >= _term_len(usage_prefix) + 20:
        out.append(
            _wrap(
                _USAGE_ARGS,
                width,
                initial_indent=usage_prefix,
                subsequent_indent=" " * _term_len(usage_prefix),
            )
        )
    else:
        out.append(usage_prefix)
        out.append("\n")
        indent = " " * (_term_len("Usage: ") + 4)
        out.append(_wrap(_USAGE_ARGS, width, initial_indent=indent, subsequent_indent=indent))
    out.append("\n")
    import inspect

    text = inspect.cleandoc(APP_HELP).partition("\f")[0]
    if text:
        out.append("\n")
        out.append(_wrap(text, width, "  ", "  ", preserve_paragraphs=True))
        out.append("\n")
    for heading, rows in (("Options", _OPTION_ROWS), ("Commands", commands)):
        if rows:
            out.append("\n")
            out.append(f"{heading}:\n")
            _write_dl(out, rows, 2, width)
    return "".join(out).rstrip("\n")


def to_click(obj: Any, name: str) -> Any:
    """A click command for a Typer app, a click command or a plain function."""
    import typer
    import typer.main
    from typer._click.core import Command

    from aipartnerupflow.cli._common import CliError

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


class PluginCommands:
    """Sub-commands of the ``aipartnerupflow.cli`` entry-point group, loaded on demand."""

    def __init__(self) -> None:
        self._group: Any = None

    def names(self) -> list[str]:
        """Installed plugin names that are not built-in commands (from a text scan)."""
        return [n for n in scan_entry_point_names(PLUGIN_CLI_GROUP) if n not in BUILTIN_COMMANDS]

    def get(self, name: str) -> Any:
        """The click command of plugin ``name`` (None: no such plugin); a CliError if broken."""
        if name not in scan_entry_point_names(PLUGIN_CLI_GROUP):
            return None
        if self._group is None:
            from aipartnerupflow.core.registry import PluginGroup

            self._group = PluginGroup(PLUGIN_CLI_GROUP)
        if self._group.entry(name) is None:
            return None
        from aipartnerupflow.cli._common import CliError

        try:
            return to_click(self._group.load(name), name)
        except CliError:
            raise
        except Exception as exc:
            raise CliError(f"CLI plugin {name!r} cannot be used: {exc}") from exc


def root_help(prog: str, width: int) -> str:
    """Root help with the installed plugin sub-commands (only these import typer)."""
    plugins = PluginCommands()
    rows = command_rows([*BUILTIN_COMMANDS, *plugins.names()], plugins.get)
    return render_root_help(prog, rows, width)


# -- the fast path -------------------------------------------------------------------------


class _PacifyFlush:
    """click's wrapper that keeps a broken pipe's flush at exit quiet."""

    def __init__(self, wrapped: IO[Any]) -> None:
        self.wrapped = wrapped

    def flush(self) -> None:
        import errno

        try:
            self.wrapped.flush()
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.wrapped, attr)


def _echo(text: str, stream: IO[str]) -> int:
    """Write like typer's ``echo`` (text, newline, flush); 1 on a broken pipe, as typer."""
    import errno

    try:
        stream.write(text + "\n")
        stream.flush()
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        sys.stdout = _PacifyFlush(sys.stdout)
        sys.stderr = _PacifyFlush(sys.stderr)
        return 1
    return 0


def _plain_stream(stream: IO[str] | None) -> bool:
    """A text stream typer's ``echo`` would write to as it is (no re-encoding wrapper)."""
    if stream is None:
        return False
    encoding = getattr(stream, "encoding", None)
    if not encoding or getattr(stream, "errors", None) is None:
        return False
    import codecs

    try:
        return codecs.lookup(encoding).name != "ascii"
    except LookupError:
        return False


def fast_path(args: Sequence[str]) -> int | None:
    """Answer root help and ``--version`` without typer: the exit code, or None for typer.

    Handles ``--help``/``-h`` (stdout, 0), no arguments (help on stderr, 2, as typer's
    ``no_args_is_help``) and ``--version``/``-V`` (stdout, 0).
    """
    if len(args) > 1 or os.name == "nt":
        return None
    main = sys.modules.get("__main__")
    if getattr(main, "__package__", None) not in (None, ""):
        return None  # ``python -m``: typer names the program
    prog = os.path.basename(sys.argv[0])
    if os.environ.get(f"_{prog}_COMPLETE".replace("-", "_").upper()):
        return None  # a shell-completion request
    if not args:
        stream, code = sys.stderr, 2
    elif args[0] in ("--help", "-h"):
        stream, code = sys.stdout, 0
    elif args[0] in ("--version", "-V"):
        if not _plain_stream(sys.stdout):
            return None
        return _echo(version_text(), sys.stdout)
    else:
        return None
    if not _plain_stream(stream):
        return None
    try:
        text = root_help(prog, help_width())
    except Exception:  # e.g. two plugins claim a name: typer shows it its own way
        return None
    if "\x1b" in text:
        return None  # typer's echo strips ANSI codes off pipes: let it
    return _echo(text, stream) or code
