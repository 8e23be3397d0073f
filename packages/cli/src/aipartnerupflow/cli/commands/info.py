"""``apflow version`` and ``apflow info``."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from aipartnerupflow.cli._common import get_state, print_json, redact_url

__all__ = ["collect_info", "info_app", "version_app"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document")]

version_app = typer.Typer(add_completion=False, rich_markup_mode=None)
info_app = typer.Typer(add_completion=False, rich_markup_mode=None)

#: Third-party distributions worth reporting next to ours.
NOTABLE = (
    "typer",
    "rich",
    "sqlalchemy",
    "duckdb",
    "duckdb-engine",
    "psycopg",
    "pydantic",
    "a2a-sdk",
    "uvicorn",
    "mcp",
)


@version_app.command("version")
def version(json_output: JsonOpt = False) -> None:
    """Show the version of aipartnerupflow and of this CLI."""
    import aipartnerupflow
    from aipartnerupflow.cli import __version__
    from aipartnerupflow.cli.main import version_text

    if json_output:
        print_json(
            {"aipartnerupflow": getattr(aipartnerupflow, "__version__", None), "cli": __version__}
        )
    else:
        typer.echo(version_text())


def _database(url: str) -> dict[str, Any]:
    info: dict[str, Any] = {"url": redact_url(url)}
    if url.startswith("duckdb:///"):
        target = url.removeprefix("duckdb:///")
        if target.startswith(":memory:"):
            info["kind"] = "duckdb (in memory)"
        else:
            path = Path(target).expanduser()
            info.update(
                kind="duckdb",
                path=str(path),
                exists=path.exists(),
                size_bytes=path.stat().st_size if path.exists() else 0,
            )
    elif url.startswith(("postgresql", "postgres")):
        info["kind"] = "postgresql"
    else:
        info["kind"] = "unknown"
    return info


def collect_info(ctx: typer.Context) -> dict[str, Any]:
    """Everything ``apflow info`` reports, as plain data."""
    from importlib import metadata

    from aipartnerupflow.cli._daemon import daemon_dir, read_running_state
    from aipartnerupflow.core.registry import CLI_GROUP, SERVER_GROUP, PluginGroup

    state = get_state(ctx)
    state.load_plugins()
    ours: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] or ""
        if name.lower().startswith("aipartnerupflow"):
            ours[name] = dist.version
    others: dict[str, str] = {}
    for name in NOTABLE:
        try:
            others[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    from aipartnerupflow.core.registry import get_executor_registry
    from aipartnerupflow.core.settings import declared_variables

    set_vars = [k for k in os.environ if k.startswith("AIPARTNERUPFLOW_")]
    registry = get_executor_registry()
    executors = [{"id": ex_id, "source": registry.source(ex_id)} for ex_id in registry.ids()]
    running = read_running_state()
    return {
        "packages": dict(sorted(ours.items())),
        "dependencies": others,
        "python": {
            "version": platform.python_version(),
            "executable": sys.executable,
            "platform": platform.platform(),
        },
        "database": _database(state.resolved_database_url()),
        "executors": executors,
        "servers": PluginGroup(SERVER_GROUP).names(),
        "cli_plugins": PluginGroup(CLI_GROUP).names(),
        "plugin_modules": state.plugins,
        "daemon": {"dir": str(daemon_dir()), "running": running.to_dict() if running else None},
        "environment": sorted(set_vars),
        # Set, but declared by no installed settings model: a typo, or a package not installed.
        "unknown_variables": sorted(set(set_vars) - set(declared_variables())),
    }


@info_app.command("info")
def info(ctx: typer.Context, json_output: JsonOpt = False) -> None:
    """Show installed packages, the database location, executors, servers and plugins."""
    data = collect_info(ctx)
    if json_output:
        print_json(data)
        return
    from rich.table import Table

    from aipartnerupflow.cli._common import console

    out = console()
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for name, ver in data["packages"].items():
        table.add_row(name, ver)
    table.add_row("python", f"{data['python']['version']} ({data['python']['executable']})")
    db = data["database"]
    where = db.get("path") or db["url"]
    extra = "" if "exists" not in db else (" (exists)" if db["exists"] else " (not created yet)")
    table.add_row("database", f"{db['kind']}: {where}{extra}")
    ex = ", ".join(
        f"{e['id']}" + (" [in-process]" if e["source"] == "in-process" else "")
        for e in data["executors"]
    )
    table.add_row("executors", ex or "none")
    table.add_row(
        "servers", ", ".join(data["servers"]) or 'none (pip install "aipartnerupflow[a2a]")'
    )
    table.add_row("cli plugins", ", ".join(data["cli_plugins"]) or "none")
    if data["plugin_modules"]:
        table.add_row("plugin modules", ", ".join(data["plugin_modules"]))
    if data["unknown_variables"]:
        table.add_row(
            "unknown settings",
            ", ".join(data["unknown_variables"])
            + " (set, but no installed package reads them: see the configuration reference)",
        )
    daemon = data["daemon"]["running"]
    table.add_row(
        "daemon",
        f"running (pid {daemon['pid']}) at {daemon['url']}"
        if daemon
        else f"not running (files in {data['daemon']['dir']})",
    )
    out.print(table)
