"""``apflow worker``: execute ready tasks from a shared PostgreSQL database."""

from __future__ import annotations

import inspect
from typing import Annotated, Any

import typer

from aipartnerupflow.cli._common import (
    CliError,
    get_state,
    print_json,
    redact_url,
    run_async,
    to_jsonable,
)

__all__ = ["app"]

app = typer.Typer(add_completion=False, rich_markup_mode=None)


async def _prepare(url: str) -> None:
    """Create the schema or apply pending migrations before claiming work."""
    from aipartnerupflow.core.storage import create_session

    store = create_session(url)
    try:
        await store.initialize()
    finally:
        await store.close()


def _limits(items: list[str] | None) -> dict[str, int]:
    limits: dict[str, int] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip().isdigit() or int(value) < 1:
            raise CliError(f"--limit {item!r} must look like EXECUTOR_ID=N (N >= 1)")
        limits[key.strip()] = int(value)
    return limits


@app.command("worker")
def worker(
    ctx: typer.Context,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="Tasks run at the same time")
    ] = 16,
    limit: Annotated[
        list[str] | None,
        typer.Option(
            "--limit",
            metavar="EXECUTOR_ID=N",
            help="At most N tasks of this executor at once; repeatable",
            show_default=False,
        ),
    ] = None,
    lease_seconds: Annotated[
        float,
        typer.Option(
            "--lease-seconds",
            min=1,
            help="Lease on each running task, renewed by heartbeat; "
            "another worker reclaims it when it expires",
        ),
    ] = 30.0,
    poll_seconds: Annotated[
        float,
        typer.Option(
            "--poll-seconds",
            min=0.05,
            help="Fallback poll interval (LISTEN/NOTIFY wakes it sooner)",
        ),
    ] = 1.0,
    worker_id: Annotated[
        str | None,
        typer.Option(
            "--worker-id", help="Name of this worker [default: host:pid:random]", show_default=False
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the worker's statistics as JSON when it stops")
    ] = False,
) -> None:
    """Claim and run queued tasks from a PostgreSQL database until Ctrl-C (scale-out).

    Submit trees for workers with `apflow run flow --queue`.
    """
    state = get_state(ctx)
    url = state.resolved_database_url()
    if not url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        raise CliError(
            f"apflow worker needs a PostgreSQL database, but the database is {redact_url(url)}. "
            "The embedded DuckDB file allows one process at a time; pass "
            "--database-url postgresql://user:password@host:5432/dbname (or set "
            "AIPARTNERUPFLOW_DATABASE_URL)."
        )
    limits = _limits(limit)
    try:
        from aipartnerupflow.core.worker import run_worker
    except ImportError:
        raise CliError(
            "workers are not available in this version of aipartnerupflow-core; upgrade it "
            "(pip install -U aipartnerupflow-core) to use apflow worker"
        ) from None
    state.load_plugins()
    run_async(_prepare(url))
    options: dict[str, Any] = {"lease_seconds": lease_seconds, "poll_seconds": poll_seconds}
    if limits:
        options["executor_limits"] = limits
    if worker_id:
        options["worker_id"] = worker_id
    typer.echo(f"worker: {redact_url(url)}, concurrency {concurrency} (Ctrl-C stops)", err=True)
    result = run_worker(url, concurrency=concurrency, **options)
    if inspect.isawaitable(result):  # a core whose run_worker is a coroutine
        import asyncio

        result = asyncio.run(result)  # type: ignore[arg-type]
    stats = to_jsonable(result) if result is not None else {}
    if json_output:
        print_json(stats)
    else:
        typer.echo(f"worker stopped: {stats}", err=True)
