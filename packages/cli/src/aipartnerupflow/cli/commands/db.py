"""``apflow db``: database maintenance."""

from __future__ import annotations

from typing import Annotated

import typer

from aipartnerupflow.cli._common import get_state, print_json, redact_url, run_async

__all__ = ["app"]

app = typer.Typer(help="Database maintenance.", no_args_is_help=True, add_completion=False,
                  rich_markup_mode=None)


@app.callback()
def group() -> None:
    """Database maintenance."""


async def _upgrade(url: str | None) -> str:
    from aipartnerupflow.core.storage import create_session

    store = create_session(url)
    try:
        await store.initialize()  # applies pending migrations
        return store.url
    finally:
        await store.close()


@app.command("upgrade")
def upgrade(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document")] = False,
) -> None:
    """Create the database or apply pending schema migrations."""
    state = get_state(ctx)
    state.setup_logging()
    url = run_async(_upgrade(state.database_url))
    if json_output:
        print_json({"database": redact_url(url), "status": "up to date"})
    else:
        typer.echo(f"Database {redact_url(url)} is up to date.")
