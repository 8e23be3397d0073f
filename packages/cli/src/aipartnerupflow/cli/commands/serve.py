"""``apflow serve [a2a|mcp]``: run a server plugin in the foreground."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from aipartnerupflow.cli._common import CliError, get_state

if TYPE_CHECKING:
    from aipartnerupflow.core.registry import PluginGroup

__all__ = [
    "INSTALL_HINTS",
    "SECRET_OPTIONS_ENV",
    "InsecureOpt",
    "OptionOpt",
    "app",
    "load_server",
    "normalize_protocol",
    "parse_options",
    "require_server",
]

app = typer.Typer(add_completion=False, rich_markup_mode=None)

#: How to install each server protocol this release publishes.
INSTALL_HINTS: dict[str, str] = {
    "a2a": 'pip install "aipartnerupflow[a2a]"',
    "mcp": 'pip install "aipartnerupflow[mcp-server]"',
}
#: How ``apflow daemon`` hands credential-like ``--option`` values to its server process:
#: in the environment (private to the user), never in the argument list every user can read.
#: Internal, not a setting; ``serve`` removes it from the environment as it reads it.
SECRET_OPTIONS_ENV = "_AIPARTNERUPFLOW_SECRET_OPTIONS"

#: Servers of the original project whose packages this release does not publish yet.
UNRELEASED_SERVERS: dict[str, str] = {}

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


def require_server(protocol: str) -> PluginGroup:
    """The server plugin group, after checking ``protocol`` is installed (else a clear error)."""
    from aipartnerupflow.core.registry import SERVER_GROUP, PluginGroup

    group = PluginGroup(SERVER_GROUP)
    if group.entry(protocol) is not None:
        return group
    message = f"no {protocol!r} server is installed (installed servers: "
    message += (", ".join(group.names()) or "none") + "). "
    if protocol in INSTALL_HINTS:
        message += f"Install it with: {INSTALL_HINTS[protocol]}"
    elif protocol in UNRELEASED_SERVERS:
        message += (
            f"Its package ({UNRELEASED_SERVERS[protocol]}) is not published in this release; "
            f"serve a2a instead ({INSTALL_HINTS['a2a']})."
        )
    else:
        message += (
            "Servers come from packages that register an 'aipartnerupflow.servers' entry point; "
            f"this project publishes a2a ({INSTALL_HINTS['a2a']})."
        )
    raise CliError(message)


def load_server(protocol: str) -> Any:
    """The ``serve`` callable of a server plugin, or a clear error with the install line."""
    from aipartnerupflow.core.errors import PluginError

    group = require_server(protocol)
    try:
        serve = group.load(protocol)
    except PluginError as exc:
        entry = group.entry(protocol)
        source = entry.distribution if entry is not None else "its package"
        raise CliError(
            f"the {protocol!r} server cannot be loaded: {exc}. Reinstall {source}"
            + (f" ({INSTALL_HINTS[protocol]})" if protocol in INSTALL_HINTS else "")
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
    handed = os.environ.pop(SECRET_OPTIONS_ENV, None)
    if handed:
        try:
            items = json.loads(handed)
        except ValueError:
            raise CliError(f"{SECRET_OPTIONS_ENV} is not a JSON list of key=value") from None
        options.update(parse_options([str(i) for i in items]))
    if insecure:
        options["insecure"] = True
    serve_fn = load_server(protocol)
    state.load_plugins()
    serve_fn(host=host, port=port, database_url=state.database_url, **options)
