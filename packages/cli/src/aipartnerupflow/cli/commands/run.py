"""``apflow run flow``: create a task tree, run it, show it live, summarise it.

Ctrl-C (SIGINT) or SIGTERM cancels the tree through the engine and waits for every task to
end, so nothing is left ``in_progress``; the exit code is then 130. A second Ctrl-C stops
waiting (tasks still running are recovered later by ``resume_interrupted``).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from aipartnerupflow.cli._common import (
    CliError,
    CliState,
    get_state,
    open_manager,
    parse_json,
    print_json,
    read_text_source,
    run_async,
)

if TYPE_CHECKING:
    import asyncio

    from aipartnerupflow.cli._display import Display
    from aipartnerupflow.core.manager import TaskManager
    from aipartnerupflow.core.results import TreeResult
    from aipartnerupflow.core.tree import TaskTreeNode

__all__ = [
    "RunOutcome",
    "TasksFileOpt",
    "app",
    "build_tasks",
    "finish",
    "follow_run",
    "json_kind",
    "renew_ids",
    "result_from_tasks",
]

app = typer.Typer(
    help="Run task trees.", no_args_is_help=True, add_completion=False, rich_markup_mode=None
)


@app.callback()
def group() -> None:
    """Run task trees."""


EXIT_INTERRUPTED = 130


@dataclass(slots=True)
class RunOutcome:
    """What a followed run produced."""

    result: dict[str, Any]
    interrupted: bool
    elapsed: float


def json_kind(value: Any) -> str:
    """What a parsed JSON value is, in JSON's words ("null", "a string", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _json_object(text: str, source: str) -> dict[str, Any]:
    value = parse_json(text, source)
    if not isinstance(value, dict):
        raise CliError(f"{source} must be a JSON object, not {json_kind(value)}")
    return value


def build_tasks(
    executor_id: str | None,
    tasks: str | None,
    tasks_file: str | None,
    inputs: str | None,
    inputs_file: str | None,
    params: str | None,
) -> list[dict[str, Any]]:
    """The task array from the options (standard mode) or one task (legacy mode)."""
    if executor_id is not None:
        if tasks is not None or tasks_file is not None:
            raise CliError(
                "give either EXECUTOR_ID (legacy mode) or --tasks/--tasks-file, not both"
            )
        if inputs is not None and inputs_file is not None:
            raise CliError("give --inputs or --inputs-file, not both")
        task_inputs: dict[str, Any] = {}
        if inputs is not None:
            task_inputs = _json_object(inputs, "--inputs")
        elif inputs_file is not None:
            task_inputs = _json_object(
                read_text_source(inputs_file, "inputs file"),
                "stdin" if inputs_file == "-" else inputs_file,
            )
        task: dict[str, Any] = {
            "name": f"Execute {executor_id}",
            "schemas": {"method": executor_id},
            "inputs": task_inputs,
        }
        if params is not None:
            task["params"] = _json_object(params, "--params")
        return [task]
    if inputs is not None or inputs_file is not None or params is not None:
        raise CliError(
            "--inputs, --inputs-file and --params go with EXECUTOR_ID (legacy mode); "
            "with --tasks put them inside each task object"
        )
    if tasks is not None and tasks_file is not None:
        raise CliError("give --tasks or --tasks-file, not both")
    if tasks is not None:
        data = parse_json(tasks, "--tasks")
    elif tasks_file is not None:
        source = "stdin" if tasks_file == "-" else f"tasks file {tasks_file}"
        data = parse_json(read_text_source(tasks_file, "tasks file"), source)
    else:
        raise CliError(
            "nothing to run: give --tasks JSON, --tasks-file FILE (- for stdin), or "
            "EXECUTOR_ID --inputs JSON"
        )
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise CliError(f"the tasks must be a JSON array of task objects, not {json_kind(data)}")
    return data


def renew_ids(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give every task a fresh id, rewriting parent and dependency references."""
    from aipartnerupflow.core.service.ids import renew_ids as renew

    renewed: list[dict[str, Any]] = renew(tasks)[0]
    return renewed


def result_from_tasks(root_id: str, tasks: list[Any]) -> dict[str, Any]:
    """The ``--json`` document of a tree from its tasks (root first)."""
    from aipartnerupflow.core.tree import aggregate_status

    ordered = sorted(tasks, key=lambda t: t.id != root_id)
    return {
        "root_id": root_id,
        "status": aggregate_status([t.status for t in tasks]),
        "tasks": [
            {"id": t.id, "name": t.name, "status": t.status, "result": t.result, "error": t.error}
            for t in ordered
        ],
    }


async def follow_run(
    tm: TaskManager,
    tree: TaskTreeNode,
    start: Callable[[], Coroutine[Any, Any, TreeResult]],
    display: Display,
) -> RunOutcome:
    """Run ``start()`` while feeding its events to ``display``; SIGINT/SIGTERM cancel the tree."""
    import asyncio
    import signal

    root_id = tree.task.id
    began = time.monotonic()
    loop = asyncio.get_running_loop()
    subscription = tm.subscribe(root_id)
    started = asyncio.Event()
    interrupts = 0
    background: set[asyncio.Task[Any]] = set()
    run_task: asyncio.Task[TreeResult] | None = None

    async def cancel_tree() -> None:
        waiter = asyncio.ensure_future(started.wait())
        assert run_task is not None
        await asyncio.wait({waiter, run_task}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if not run_task.done():
            try:
                await tm.cancel_tree(root_id)
            except Exception as exc:  # the run may have just ended
                display.note(f"cancel failed: {exc}")

    def on_signal() -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            display.note("Cancelling the tree... (press Ctrl-C again to stop waiting)")
            job = loop.create_task(cancel_tree())
            background.add(job)
            job.add_done_callback(background.discard)
        elif run_task is not None:
            run_task.cancel()

    handled: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal)
            handled.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover - Windows
            pass

    async def consume() -> None:
        async for event in subscription:
            if event.kind == "tree_started":
                started.set()
            display.event(event)

    display.start(tree)
    consumer = asyncio.create_task(consume())
    result: dict[str, Any] | None = None
    try:
        run_task = asyncio.create_task(start())
        try:
            result = (await run_task).to_dict()
        except asyncio.CancelledError:
            if interrupts < 2:
                raise
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(consumer), timeout=2)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        subscription.close()
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
        display.stop()
    if result is None:  # forced stop: report what the store says
        result = result_from_tasks(root_id, await tm.task_repository.get_all_tasks_in_tree(root_id))
    return RunOutcome(result, interrupts > 0, time.monotonic() - began)


async def follow_queued(
    tm: TaskManager, tree: TaskTreeNode, display: Display, *, poll_seconds: float = 0.25
) -> RunOutcome:
    """Follow a tree queued for PostgreSQL workers; SIGINT/SIGTERM cancel it through them."""
    import asyncio
    import signal

    from aipartnerupflow.core.queued import cancel_queued
    from aipartnerupflow.core.status import TaskStatus

    root_id = tree.task.id
    ids = {t.id for t in tree.tasks()}
    began = time.monotonic()
    loop = asyncio.get_running_loop()
    interrupts = 0
    background: set[asyncio.Task[Any]] = set()
    stream_task: asyncio.Task[None] | None = None

    async def cancel() -> None:
        try:
            await cancel_queued(tm, ids)
        except Exception as exc:
            display.note(f"cancel failed: {exc}")

    def on_signal() -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            display.note(
                "Cancelling the tree on the workers... (press Ctrl-C again to stop waiting)"
            )
            job = loop.create_task(cancel())
            background.add(job)
            job.add_done_callback(background.discard)
        elif stream_task is not None:
            stream_task.cancel()

    async def consume() -> None:
        # Polls the store (a few cheap queries a second): robust whichever worker runs what.
        while True:
            tasks = await tm.task_repository.get_all_tasks_in_tree(root_id)
            for task in tasks:
                display.task(task)
            if all(TaskStatus.is_terminal(t.status) for t in tasks):
                return
            await asyncio.sleep(poll_seconds)

    handled: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal)
            handled.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover - Windows
            pass
    display.start(tree)
    try:
        stream_task = asyncio.create_task(consume())
        with contextlib.suppress(asyncio.CancelledError):
            await stream_task
        if background:
            await asyncio.gather(*background, return_exceptions=True)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        display.stop()
    tasks = await tm.task_repository.get_all_tasks_in_tree(root_id)
    return RunOutcome(result_from_tasks(root_id, tasks), interrupts > 0, time.monotonic() - began)


def finish(outcome: RunOutcome, json_output: bool, output: str | None) -> None:
    """Print the result (JSON or summary), write ``--output``, exit with the right code."""
    if output is not None:
        import json

        from aipartnerupflow.cli._common import to_jsonable

        try:
            Path(output).write_text(
                json.dumps(to_jsonable(outcome.result), indent=2, ensure_ascii=False) + "\n",
                encoding="utf-8",
            )
        except OSError as exc:
            raise CliError(f"cannot write {output}: {exc}") from exc
    if json_output:
        print_json(outcome.result)
    else:
        from aipartnerupflow.cli._common import console
        from aipartnerupflow.cli._display import print_summary

        print_summary(console(), outcome.result, outcome.elapsed)
    if outcome.interrupted:
        from aipartnerupflow.core.status import TaskStatus

        tasks = outcome.result.get("tasks") or []
        if all(TaskStatus.is_terminal(t["status"]) for t in tasks):
            sys.stderr.write("Interrupted: the tree was cancelled.\n")
        else:  # a second Ctrl-C stopped the wait (on the daemon, tasks may still be ending)
            sys.stderr.write(
                "Interrupted: stopped waiting while the tree is being cancelled; follow it with "
                f"`apflow tasks watch {outcome.result['root_id']}`.\n"
            )
        raise typer.Exit(EXIT_INTERRUPTED)
    if outcome.result["status"] != "completed":
        raise typer.Exit(1)


async def _create(
    tm: TaskManager, tasks: list[dict[str, Any]], user_id: str | None, keep_ids: bool, queue: bool
) -> TaskTreeNode:
    """Store (and for ``queue``, enqueue) the tree through the task service (so the
    ``on_tree_created`` hooks run); fresh ids for given ones that are taken."""
    from aipartnerupflow.core.errors import TaskAlreadyExistsError
    from aipartnerupflow.core.service import TaskCaller, TaskService

    service = TaskService(tm, TaskCaller.system())
    params = {
        "tasks": tasks,
        "user_id": user_id,
        "id_conflict": "fail" if keep_ids else "renew",
        "queue": queue,
    }
    try:
        created = await service.create(params)
    except TaskAlreadyExistsError as exc:
        raise CliError(f"{exc} Or drop --keep-ids to run it with fresh ids.") from None
    if created.renamed:
        taken = ", ".join(sorted(created.renamed))
        sys.stderr.write(
            f"Note: task id(s) already exist: {taken}; this run uses fresh ids for them (root "
            f"{created.root_id}). Pass --keep-ids to make this an error.\n"
        )
    return created.tree


async def _run_flow(
    state: CliState,
    tasks: list[dict[str, Any]],
    user_id: str | None,
    concurrency: int | None,
    display: Display,
    keep_ids: bool,
    queue: bool = False,
    wait: bool = True,
) -> RunOutcome | str:
    options: dict[str, Any] = {}
    if concurrency is not None:
        options["max_concurrency"] = concurrency
    async with open_manager(state, **options) as tm:
        await tm.storage.initialize()  # a locked database shows up before validation
        tree = await _create(tm, tasks, user_id, keep_ids, queue)
        if queue:
            if not wait:
                return tree.task.id
            return await follow_queued(tm, tree, display)
        return await follow_run(tm, tree, lambda: tm.distribute_task_tree(tree), display)


TasksFileOpt = Annotated[
    str | None,
    typer.Option(
        "--tasks-file",
        "-f",
        metavar="FILE",
        help="Read the JSON array from FILE (- = stdin)",
        show_default=False,
    ),
]


@app.command("flow")
def flow(
    ctx: typer.Context,
    executor_id: Annotated[
        str | None,
        typer.Argument(
            metavar="[EXECUTOR_ID]",
            help="Legacy mode: run one task with this executor",
            show_default=False,
        ),
    ] = None,
    tasks: Annotated[
        str | None,
        typer.Option(
            "--tasks",
            "-t",
            metavar="JSON",
            help="The task tree as a JSON array of task objects",
            show_default=False,
        ),
    ] = None,
    tasks_file: TasksFileOpt = None,
    inputs: Annotated[
        str | None,
        typer.Option(
            "--inputs",
            "-i",
            metavar="JSON",
            help="Legacy mode: the task's inputs (JSON object)",
            show_default=False,
        ),
    ] = None,
    inputs_file: Annotated[
        str | None,
        typer.Option(
            "--inputs-file",
            metavar="FILE",
            help="Legacy mode: read the inputs from FILE",
            show_default=False,
        ),
    ] = None,
    params: Annotated[
        str | None,
        typer.Option(
            "--params",
            metavar="JSON",
            help="Legacy mode: executor constructor params",
            show_default=False,
        ),
    ] = None,
    user_id: Annotated[
        str | None,
        typer.Option("--user-id", "-u", help="Owner of tasks that name none", show_default=False),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            "-c",
            min=1,
            help="Tasks run at the same time [default: 64]",
            show_default=False,
        ),
    ] = None,
    new_ids: Annotated[
        bool, typer.Option("--new-ids", help="Always replace the ids in the JSON with fresh ones")
    ] = False,
    keep_ids: Annotated[
        bool,
        typer.Option(
            "--keep-ids", help="Fail when an id is already stored (default: use fresh ids)"
        ),
    ] = False,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Also write the result JSON to FILE",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print only the result as one JSON document")
    ] = False,
    live: Annotated[
        bool | None,
        typer.Option(
            "--live/--no-live",
            help="Live tree view [default: when stdout is a terminal]",
            show_default=False,
        ),
    ] = None,
    queue: Annotated[
        bool,
        typer.Option(
            "--queue",
            help="PostgreSQL: hand the tree to `apflow worker` processes instead of "
            "running it here",
        ),
    ] = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait",
            help="With --queue: follow the tree to its end, or print its root "
            "id and return at once (it stays queued)",
        ),
    ] = True,
) -> None:
    """Run a task tree and follow it live; exit code 0 only when every task completed.

    Examples:

      apflow run flow --tasks '[{"id": "t1", "name": "T1", "schemas": {"method": "ID"}}]'

      apflow run flow --tasks-file tree.json --json

      apflow run flow EXECUTOR_ID --inputs '{"key": "value"}'
    """
    state = get_state(ctx)
    task_list = build_tasks(executor_id, tasks, tasks_file, inputs, inputs_file, params)
    if new_ids:
        task_list = renew_ids(task_list)
    from aipartnerupflow.cli._display import make_display

    display = make_display(json_output, live)
    if new_ids and keep_ids:
        raise CliError("give --new-ids or --keep-ids, not both")
    if not wait and not queue:
        raise CliError(
            "--no-wait needs --queue: without workers the tree runs in this "
            "process, which must stay until it ends"
        )
    if queue and not state.resolved_database_url().startswith(("postgres", "postgresql")):
        raise CliError(
            "--queue needs a PostgreSQL database shared with `apflow worker` "
            "processes; pass --database-url postgresql://user:password@host/db"
        )
    from aipartnerupflow.core.errors import DatabaseLockedError

    try:
        outcome = run_async(
            _run_flow(state, task_list, user_id, concurrency, display, keep_ids, queue, wait)
        )
    except DatabaseLockedError:
        from aipartnerupflow.cli._remote import server_for

        server = server_for(state)
        if server is None or queue:
            raise
        from aipartnerupflow.cli._remote_run import run_on_server

        outcome = run_on_server(server, task_list, user_id, keep_ids, concurrency, display)
    if isinstance(outcome, str):
        if json_output:
            print_json({"root_id": outcome, "status": "queued"})
        else:
            typer.echo(f"Queued tree {outcome}. Follow it with: apflow tasks watch {outcome}")
        return
    finish(outcome, json_output, output)
