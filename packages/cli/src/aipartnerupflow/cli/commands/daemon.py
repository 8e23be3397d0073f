"""``apflow daemon start|stop|status|restart|logs``: the API server in the background.

The daemon is ``python -m aipartnerupflow.cli serve PROTOCOL`` started in its own session, with
its output appended to ``daemon.log``. ``daemon.json`` records how it was started, so
``restart`` repeats the same protocol, host, port, database and plugins unless told otherwise.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict
from typing import Annotated, Any

import typer

from aipartnerupflow.cli import _daemon as files
from aipartnerupflow.cli._common import DATABASE_ENV, CliError, get_state, print_json
from aipartnerupflow.cli._daemon import DaemonConfig
from aipartnerupflow.cli.commands.serve import (
    SECRET_OPTIONS_ENV,
    InsecureOpt,
    OptionOpt,
    normalize_protocol,
    parse_options,
    require_server,
)

__all__ = ["DaemonConfig", "app", "start_daemon", "stop_daemon"]

app = typer.Typer(
    help="Run the API server in the background: start, stop, status, restart, logs.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document")]
WaitOpt = Annotated[
    float,
    typer.Option("--wait", min=0, help="Seconds to wait for the server to accept connections"),
]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", min=0, help="Seconds to wait after SIGTERM before SIGKILL")
]


#: How a secret option is recorded in ``daemon.json`` (its value is never written).
_HIDDEN = "***"


def _is_secret(item: str) -> bool:
    from aipartnerupflow.core.executors.secrets import is_sensitive_name

    return is_sensitive_name(item.partition("=")[0].strip())


def _recorded(options: list[str]) -> list[str]:
    """``options`` as ``daemon.json`` keeps them: credential-like values hidden."""
    return [f"{o.partition('=')[0]}={_HIDDEN}" if _is_secret(o) else o for o in options]


def _refuse_hidden_secrets(options: list[str]) -> None:
    """A recorded option whose secret value was not kept cannot be repeated: say so."""
    hidden = [o.partition("=")[0] for o in options if _is_secret(o) and o.endswith(f"={_HIDDEN}")]
    if hidden:
        raise CliError(
            f"the option(s) {', '.join(hidden)} hold a secret, which daemon.json does not keep: "
            "give them again with -o KEY=VALUE (or set them as environment variables)"
        )


def _argv(config: DaemonConfig) -> list[str]:
    # The database URL goes through the environment (see start_daemon), never the command
    # line: every user can read a process's arguments, and the URL may carry a password.
    argv = [sys.executable, "-m", "aipartnerupflow.cli"]
    for module in config.plugins:
        argv += ["--plugin", module]
    argv += ["serve", config.protocol, "--host", config.host, "--port", str(config.port)]
    for item in config.options:
        if not _is_secret(item):  # secrets go through the environment (start_daemon)
            argv += ["--option", item]
    return argv


def start_daemon(config: DaemonConfig, wait: float) -> files.DaemonState:
    """Start the daemon and wait for it to answer; raises CliError when it cannot start."""
    parse_options(config.options)  # validate before spawning
    _refuse_hidden_secrets(config.options)
    require_server(config.protocol)
    running = files.read_running_state()
    if running is not None:
        raise CliError(
            f"the daemon is already running (pid {running.pid}, {running.protocol} at "
            f"{running.url}); use `apflow daemon restart` or `apflow daemon stop` first",
            exit_code=1,
        )
    stale = files.read_state()
    if stale is not None:
        files.clear_files()
        typer.echo(f"Removed a stale pid file (process {stale.pid} is gone).", err=True)
    if files.probe(config.host, config.port):
        raise CliError(
            f"port {config.port} on {config.host} is already in use; pick another with --port"
        )
    log = files.log_file()
    argv = _argv(config)
    with os.fdopen(files.open_log(log), "a", encoding="utf-8") as fh:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        fh.write(
            f"--- {stamp} apflow daemon start: {config.protocol} on {config.host}:{config.port}\n"
        )
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    if config.database_url:
        env[DATABASE_ENV] = config.database_url
    secrets = [o for o in config.options if _is_secret(o)]
    if secrets:
        env[SECRET_OPTIONS_ENV] = json.dumps(secrets)
    pid = files.spawn(argv, env, log)
    recorded = {**asdict(config), "options": _recorded(config.options)}
    state = files.DaemonState(**recorded, pid=pid, started_at=time.time())
    files.write_state(state)
    outcome = files.wait_ready(pid, config.host, config.port, wait)
    if outcome == "exited":
        files.clear_files()
        lines = files.tail(log, 20)
        if lines:
            typer.echo("\n".join(lines), err=True)
        raise CliError(f"the daemon exited during start-up; see the log above ({log})", exit_code=1)
    if outcome == "timeout":
        typer.echo(
            f"The daemon started (pid {pid}) but does not answer at {state.url} yet; "
            "check `apflow daemon logs`.",
            err=True,
        )
    return state


def stop_daemon(timeout: float) -> tuple[files.DaemonState | None, bool]:
    """Stop the daemon; returns (recorded state, whether a live process was stopped)."""
    state = files.read_state()
    if state is None:
        return None, False
    if not files.is_alive(state.pid):
        files.clear_files()
        return state, False
    if not files.terminate(state.pid, timeout):
        raise CliError(f"could not stop the daemon (pid {state.pid})", exit_code=1)
    files.clear_files()
    return state, True


@app.command("start")
def start(
    ctx: typer.Context,
    protocol: Annotated[
        str, typer.Argument(metavar="[PROTOCOL]", help="Server to run: a2a (default) or mcp")
    ] = "a2a",
    host: Annotated[str, typer.Option("--host", help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port")] = 8000,
    option: OptionOpt = None,
    insecure: InsecureOpt = False,
    wait: WaitOpt = 20.0,
) -> None:
    """Start the server in the background."""
    state = get_state(ctx)
    from aipartnerupflow.core.storage import default_database_url

    config = DaemonConfig(
        protocol=normalize_protocol(protocol),
        host=host,
        port=port,
        database_url=state.database_url or default_database_url(),
        plugins=list(state.plugins),
        options=[*(option or []), *(["insecure=true"] if insecure else [])],
    )
    started = start_daemon(config, wait)
    typer.echo(
        f"Daemon started (pid {started.pid}), serving {started.protocol} at "
        f"{started.url}. Logs: {files.log_file()}"
    )


@app.command("stop")
def stop(timeout: TimeoutOpt = 10.0) -> None:
    """Stop the background server."""
    state, stopped = stop_daemon(timeout)
    if state is None:
        typer.echo("The daemon is not running.")
    elif not stopped:
        typer.echo(f"The daemon is not running (removed a stale pid file for pid {state.pid}).")
    else:
        typer.echo(f"Daemon stopped (pid {state.pid}).")


@app.command("status")
def status(json_output: JsonOpt = False) -> None:
    """Show whether the daemon runs; exit code 3 when it does not."""
    state = files.read_state()
    stale = files.clear_stale_pid()
    alive = state is not None and files.is_alive(state.pid)
    data: dict[str, Any] = {
        "running": alive,
        "pid_file": str(files.pid_file()),
        "log_file": str(files.log_file()),
    }
    if state is not None and alive:
        data.update(state.to_dict())
        data["uptime_seconds"] = (
            round(time.time() - state.started_at, 1) if state.started_at else None
        )
        data["answering"] = files.probe(state.host, state.port)
    elif stale is not None:
        data["removed_stale_pid_file"] = True
        if stale > 0:
            data["stale_pid"] = stale
    if json_output:
        print_json(data)
    elif alive and state is not None:
        answering = "answering" if data["answering"] else "NOT answering"
        typer.echo(f"Running (pid {state.pid}): {state.protocol} at {state.url}, {answering}.")
        typer.echo(f"Log: {files.log_file()}")
    else:
        note = ""
        if stale is not None:
            named = f" for pid {stale}" if stale > 0 else " holding no pid"
            note = f" (removed a stale pid file{named})"
        typer.echo(f"Not running{note}.")
    if not alive:
        raise typer.Exit(3)


@app.command("restart")
def restart(
    ctx: typer.Context,
    protocol: Annotated[
        str | None,
        typer.Argument(
            metavar="[PROTOCOL]",
            help="Server to run (default: as before, else a2a)",
            show_default=False,
        ),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option("--host", help="Interface (default: as before)", show_default=False),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port", min=1, max=65535, help="TCP port (default: as before)", show_default=False
        ),
    ] = None,
    option: OptionOpt = None,
    wait: WaitOpt = 20.0,
    timeout: TimeoutOpt = 10.0,
) -> None:
    """Stop the daemon (if running) and start it again with the same settings."""
    state = get_state(ctx)
    previous = files.read_state() or files.last_settings()
    base: DaemonConfig = previous or DaemonConfig(
        database_url=state.database_url, plugins=list(state.plugins)
    )
    config = DaemonConfig(
        protocol=normalize_protocol(protocol) if protocol else base.protocol,
        host=host or base.host,
        port=port or base.port,
        # --database-url / --plugin on this command line win; the environment does not
        # silently switch a restarted daemon to another database.
        database_url=state.database_url_flag or base.database_url,
        plugins=list(state.plugin_flags) or base.plugins,
        options=list(option) if option else base.options,
    )
    require_server(config.protocol)
    _refuse_hidden_secrets(config.options)  # before stopping what runs
    old, stopped = stop_daemon(timeout)
    if stopped and old is not None:
        typer.echo(f"Daemon stopped (pid {old.pid}).")
    started = start_daemon(config, wait)
    typer.echo(f"Daemon started (pid {started.pid}), serving {started.protocol} at {started.url}.")


@app.command("logs")
def logs(
    lines: Annotated[int, typer.Option("--lines", "-n", min=0, help="Lines to show")] = 50,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines")] = False,
) -> None:
    """Show the daemon's log."""
    path = files.log_file()
    if not path.is_file():
        raise CliError(f"no daemon log yet ({path}); start the daemon with `apflow daemon start`")
    for line in files.tail(path, lines):
        typer.echo(line)
    if not follow:
        return
    position = path.stat().st_size
    try:
        while True:
            time.sleep(0.5)
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            if size < position:  # truncated or replaced
                position = 0
            if size > position:
                with path.open("rb") as fh:
                    fh.seek(position)
                    chunk = fh.read()
                position += len(chunk)
                sys.stdout.write(chunk.decode("utf-8", errors="replace"))
                sys.stdout.flush()
    except KeyboardInterrupt:
        return
