"""``apflow serve [a2a|mcp]``: run a server plugin in the foreground."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from aipartnerupflow.cli._common import CliError, get_state

__all__ = [
    "INSTALL_HINTS",
    "InsecureOpt",
    "app",
    "load_server",
    "normalize_protocol",
    "parse_options",
]

app = typer.Typer(add_completion=False, rich_markup_mode=None)

#: How to install each known server protocol.
INSTALL_HINTS: dict[str, str] = {
    "a2a": 'pip install "aipartnerupflow[a2a]"',
    "mcp": 'pip install "aipartnerupflow[a2a]"',
}

ProtocolArg = Annotated[
    str,
    typer.Argument(
        metavar="[PROTOCOL]",
        help="Server to run: a2a (default), mcp, or any installed aipartnerupflow.servers plugin",
    ),
]
HostOpt = Annotated[
    str,
    typer.Option(
        "--host",
        help="Interface to bind (loopback by default; "
        "the server refuses other interfaces without auth)",
    ),
]
PortOpt = Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port")]
InsecureOpt = Annotated[
    bool,
    typer.Option(
        "--insecure",
        help="Allow a non-loopback bind without authentication (passed to the "
        "server as insecure=true)",
    ),
]
OptionOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--option",
        "-o",
        metavar="KEY=VALUE",
        help="Extra server option (value parsed as JSON when it can be); repeatable",
        show_default=False,
    ),
]


def parse_options(items: list[str] | None) -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}``."""
    options: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key.isidentifier():
            raise CliError(f"--option {item!r} must look like key=value")
        try:
            options[key] = json.loads(raw)
        except ValueError:
            options[key] = raw
    return options


def normalize_protocol(protocol: str) -> str:
    """``start`` (the original CLI's sub-command) means the default server."""
    protocol = protocol.strip().lower()
    return "a2a" if protocol in ("", "start") else protocol


def load_server(protocol: str) -> Any:
    """The ``serve`` callable of a server plugin, or a clear error with the install line."""
    from aipartnerupflow.core.errors import PluginError
    from aipartnerupflow.core.registry import SERVER_GROUP, PluginGroup

    group = PluginGroup(SERVER_GROUP)
    hint = INSTALL_HINTS.get(protocol, 'pip install "aipartnerupflow[a2a]"')
    if group.entry(protocol) is None:
        installed = ", ".join(group.names()) or "none"
        raise CliError(
            f"no {protocol!r} server is installed (installed servers: {installed}). "
            f"Install it with: {hint}"
        )
    try:
        serve = group.load(protocol)
    except PluginError as exc:
        raise CliError(
            f"the {protocol!r} server cannot be loaded: {exc}. Reinstall it with: {hint}"
        ) from exc
    if not callable(serve):
        raise CliError(f"the {protocol!r} server plugin does not point at a callable")
    return serve


@app.command("serve")
def serve(
    ctx: typer.Context,
    protocol: ProtocolArg = "a2a",
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    option: OptionOpt = None,
    insecure: InsecureOpt = False,
) -> None:
    """Run an API server in the foreground (Ctrl-C stops it)."""
    state = get_state(ctx)
    protocol = normalize_protocol(protocol)
    options = parse_options(option)
    if insecure:
        options["insecure"] = True
    serve_fn = load_server(protocol)
    state.load_plugins()
    serve_fn(host=host, port=port, database_url=state.database_url, **options)
