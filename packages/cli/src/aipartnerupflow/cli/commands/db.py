"""``apflow db``: database maintenance.

While the ``a2a`` daemon holds the embedded DuckDB file, ``db upgrade`` cannot open it; the
daemon applied the migrations when it opened the database, so the command asks the daemon's
``/system/health`` which schema revision it migrated to and succeeds when that is the revision
this installation expects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from aipartnerupflow.cli._common import (
    CliError,
    CliState,
    get_state,
    print_json,
    redact_url,
    run_async,
)

if TYPE_CHECKING:
    from aipartnerupflow.cli._remote import Remote

__all__ = ["app"]

app = typer.Typer(
    help="Database maintenance.", no_args_is_help=True, add_completion=False, rich_markup_mode=None
)


@app.callback()
def group() -> None:
    """Database maintenance."""


async def _upgrade(url: str | None) -> str:
    from aipartnerupflow.core.storage import create_session
    from aipartnerupflow.core.storage.plugin_migrations import apply_migrations

    store = create_session(url)
    try:
        await store.initialize()  # applies the core's pending migrations
        await apply_migrations(store)  # and those of installed plugins (their own tables)
        return store.url
    finally:
        await store.close()


@app.command("upgrade")
def upgrade(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document")] = False,
) -> None:
    """Create the database or apply pending schema migrations."""
    from aipartnerupflow.core.errors import DatabaseLockedError

    state = get_state(ctx)
    state.setup_logging()
    try:
        url = run_async(_upgrade(state.database_url))
    except DatabaseLockedError:
        from aipartnerupflow.cli._remote import server_for

        server = server_for(state)
        if server is None:
            raise
        report = _migrated_by_daemon(state, server)
        if json_output:
            print_json(report)
        else:
            typer.echo(
                f"Database {report['database']} is up to date (schema revision "
                f"{report['schema_revision']}): the apflow daemon at {server.url} holds "
                "it and applied the migrations when it opened it."
            )
        return
    if json_output:
        print_json({"database": redact_url(url), "status": "up to date"})
    else:
        typer.echo(f"Database {redact_url(url)} is up to date.")


def _migrated_by_daemon(state: CliState, server: Remote) -> dict[str, Any]:
    """The daemon's schema revision when it is the one this installation expects."""
    from aipartnerupflow.core.storage.schema import HEAD_REVISION

    revision = server.health().get("schema_revision")
    if revision != HEAD_REVISION:
        held = (
            f"at schema revision {revision}"
            if revision
            else "without saying its schema revision (an older server)"
        )
        raise CliError(
            f"the apflow daemon at {server.url} holds the database {held}, but this apflow "
            f"expects revision {HEAD_REVISION}. Restart the daemon (apflow daemon restart) so "
            "it migrates the database as it opens it, or stop it (apflow daemon stop) and run "
            "apflow db upgrade again."
        )
    return {
        "database": redact_url(state.resolved_database_url()),
        "status": "up to date",
        "schema_revision": revision,
        "migrated_by": "daemon",
        "daemon_url": server.url,
    }


@app.command("import-legacy")
def import_legacy(
    ctx: typer.Context,
    source: Annotated[
        str | None,
        typer.Argument(
            metavar="[SOURCE_URL]",
            help="The aipartnerupflow 0.9 database (duckdb:///file or postgresql://...); "
            "default: this apflow's own database, converted in place",
            show_default=False,
        ),
    ] = None,
    table: Annotated[
        str | None,
        typer.Option(
            "--table",
            help="The 0.9 task table (default: AIPARTNERUPFLOW_TASK_TABLE_NAME, apflow_tasks)",
            show_default=False,
        ),
    ] = None,
    backup_table: Annotated[
        str | None,
        typer.Option(
            "--backup-table",
            help="Where the old rows are kept when converting in place (default: <table>_v09)",
            show_default=False,
        ),
    ] = None,
    allow_extra_columns: Annotated[
        bool,
        typer.Option(
            "--allow-extra-columns", help="Import without the custom columns of a 0.9 TaskModel"
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and report; change nothing")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document")] = False,
) -> None:
    """Import the tasks of an aipartnerupflow 0.9 database (in one transaction)."""
    from aipartnerupflow.core.compat.legacy_db import import_legacy as run_import
    from aipartnerupflow.core.storage import normalize_url
    from aipartnerupflow.core.storage.schema import task_table_name

    state = get_state(ctx)
    state.setup_logging()
    target = normalize_url(state.resolved_database_url())
    origin = target if source is None else source
    name = table or task_table_name()
    report = run_async(
        run_import(
            origin,
            target,
            table=name,
            backup_table=backup_table,
            allow_extra_columns=allow_extra_columns,
            dry_run=dry_run,
        )
    )
    roots = [t.id for t in report.tasks if t.root_id is None]
    if json_output:
        print_json(
            {
                **report.to_dict(),
                "source": redact_url(origin),
                "database": redact_url(target),
                "dry_run": dry_run,
                "root_ids": roots,
            }
        )
        return
    verb = "Would import" if dry_run else "Imported"
    typer.echo(
        f"{verb} {len(report.tasks)} task(s) in {report.trees} tree(s) from {redact_url(origin)} "
        f"(table {name}) into {redact_url(target)}."
    )
    if report.backup_table:
        kept = "would be kept" if dry_run else "are kept"
        typer.echo(f"The old rows {kept} in the table {report.backup_table}.")
    for note in report.notes:
        typer.echo(f"Note: {note}")
    if roots and not dry_run:
        typer.echo(f"Run a tree with: apflow tasks execute {roots[0]}")
