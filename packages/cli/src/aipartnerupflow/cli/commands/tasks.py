"""``apflow tasks ...``: inspect and manage stored tasks."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from aipartnerupflow.cli._common import (
    CliError,
    CliState,
    console,
    get_state,
    open_manager,
    print_json,
)
from aipartnerupflow.cli._remote import (
    NOT_FOUND,
    Remote,
    RemoteError,
    daemon_refuses,
    flatten,
    local_or_remote,
    model,
    tree_from_nested,
)
from aipartnerupflow.cli.commands.run import (
    EXIT_INTERRUPTED,
    TasksFileOpt,
    build_tasks,
    finish,
    follow_run,
    renew_ids,
    result_from_tasks,
)

if TYPE_CHECKING:
    from aipartnerupflow.core.manager import TaskManager
    from aipartnerupflow.core.models import TaskModel
    from aipartnerupflow.core.service import RunState, TaskService
    from aipartnerupflow.core.tree import TaskTreeNode

__all__ = ["app"]

app = typer.Typer(
    help="Inspect and manage stored tasks.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)

STATUSES = ("pending", "in_progress", "completed", "failed", "cancelled")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document")]
TaskIdArg = Annotated[str, typer.Argument(metavar="TASK_ID", help="Task id")]
UserOpt = Annotated[
    str | None, typer.Option("--user-id", "-u", help="Only this user's tasks", show_default=False)
]
StatusOpt = Annotated[
    str | None,
    typer.Option(
        "--status",
        "-s",
        help="Only tasks with this status (comma-separated list allowed)",
        show_default=False,
    ),
]
RootOpt = Annotated[
    str | None, typer.Option("--root-id", "-r", help="Only tasks of this tree", show_default=False)
]
LiveOpt = Annotated[
    bool | None,
    typer.Option(
        "--live/--no-live",
        help="Live tree view [default: when stdout is a terminal]",
        show_default=False,
    ),
]


def _statuses(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [s.strip().lower() for s in value.split(",") if s.strip()]
    bad = [s for s in items if s not in STATUSES]
    if bad or not items:
        raise CliError(
            f"unknown status {', '.join(bad) or value!r}; use one of {', '.join(STATUSES)}"
        )
    return items


def _service(tm: TaskManager) -> TaskService:
    """The task service for the local operator (who owns the database file)."""
    from aipartnerupflow.core.service import TaskCaller, TaskService

    return TaskService(tm, TaskCaller.system(), allow_force_delete=True)


async def _require(tm: TaskManager, task_id: str) -> TaskModel:
    return await _service(tm).require(task_id)


def _method(task: TaskModel) -> str:
    return task.method or "-"


def _when(value: Any) -> str:
    if value is None:
        return "-"
    text = (
        value.isoformat(sep=" ", timespec="seconds")
        if hasattr(value, "isoformat")
        else str(value).replace("T", " ", 1)
    )
    return text.split("+")[0]


def _task_table(tasks: list[TaskModel]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from aipartnerupflow.cli._display import ICONS

    out = console()
    if not tasks:
        out.print("No tasks.")
        return
    wide = out.width >= 100
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("ID", no_wrap=True)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("NAME", overflow="fold", min_width=6)
    if wide:
        table.add_column("EXECUTOR", overflow="fold", min_width=8)
    table.add_column("CREATED", no_wrap=True)
    for t in tasks:
        icon, style = ICONS.get(t.status, ("?", ""))
        state = f"[{style}]{icon} {t.status}[/]"
        if t.status == "in_progress":
            state += f" {(t.progress or 0) * 100:.0f}%"
        cells = [t.id, state, escape(t.name)]
        if wide:
            cells.append(escape(_method(t)))
        cells.append(_when(t.created_at)[5:16] if t.created_at else "-")
        table.add_row(*cells)
    out.print(table)


def _task_details(task: TaskModel) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    data = task.to_dict()
    order = [
        "id",
        "name",
        "status",
        "progress",
        "error",
        "parent_id",
        "root_id",
        "user_id",
        "priority",
        "dependencies",
        "schemas",
        "params",
        "inputs",
        "result",
        "attempts",
        "retry",
        "timeout_seconds",
        "created_at",
        "started_at",
        "updated_at",
        "completed_at",
        "has_children",
        "original_task_id",
    ]
    for key in order:
        value = data.get(key)
        if value in (None, [], {}, "") and key not in ("status", "progress"):
            continue
        text = (
            value
            if isinstance(value, str)
            else json.dumps(value, ensure_ascii=False, default=str, indent=2)
        )
        table.add_row(key, escape(text))
    out.print(table)


def _tree_dict(node: TaskTreeNode) -> dict[str, Any]:
    data = node.task.to_dict()
    data["children"] = [_tree_dict(c) for c in node.children]
    return data


def _state(ctx: typer.Context) -> CliState:
    return get_state(ctx)


# -- reading -------------------------------------------------------------------------------


@app.command("list")
def list_tasks(
    ctx: typer.Context,
    status: StatusOpt = None,
    user_id: UserOpt = None,
    root_id: RootOpt = None,
    parent_id: Annotated[
        str | None,
        typer.Option("--parent-id", "-p", help="Only children of this task", show_default=False),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Only tasks with this name", show_default=False)
    ] = None,
    all_tasks: Annotated[
        bool,
        typer.Option(
            "--all", "-a", help="Every task, not only roots (implied by --root-id/--parent-id)"
        ),
    ] = False,
    limit: Annotated[
        int, typer.Option("--limit", "-l", min=1, max=1000, help="At most this many")
    ] = 100,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many")] = 0,
    json_output: JsonOpt = False,
) -> None:
    """List tasks, newest first (root tasks only unless --all)."""
    statuses = _statuses(status)
    if parent_id is None and root_id is None and not all_tasks:
        parent_id = ""

    async def go() -> list[TaskModel]:
        async with open_manager(_state(ctx), load_plugins=False) as tm:
            page = await _service(tm).list_tasks(
                {
                    "user_id": user_id,
                    "status": statuses,
                    "root_id": root_id,
                    "parent_id": parent_id or None,
                    "root_only": parent_id == "",
                    "name": name,
                    "limit": limit,
                    "offset": offset,
                }
            )
            return page.tasks

    def remote(server: Remote) -> list[TaskModel]:
        if root_id is not None:
            found = [model(d) for d in flatten(server.call("tasks.tree", {"task_id": root_id}))]
            if statuses:
                found = [t for t in found if t.status in statuses]
        else:
            params: dict[str, Any] = {
                "root_only": parent_id == "",
                "limit": limit,
                "offset": offset,
            }
            if statuses:
                params["status"] = statuses
            if user_id:
                params["user_id"] = user_id
            if parent_id:
                params["parent_id"] = parent_id
            found = [model(d) for d in server.call("tasks.list", params)]
        return [t for t in found if name is None or t.name == name]

    tasks = local_or_remote(_state(ctx), go, remote)
    if json_output:
        print_json([t.to_dict() for t in tasks])
    else:
        _task_table(tasks)


def _fail_on_missing(rows: list[dict[str, Any]]) -> None:
    """After reporting the rest, a user error naming the ids that were not found."""
    missing = [r["id"] for r in rows if r["status"] == "not_found"]
    if missing:
        raise CliError(f"no task with id {', '.join(repr(m) for m in missing)}")


def _remote_task(server: Remote, task_id: str) -> TaskModel:
    try:
        return model(server.call("tasks.get", {"task_id": task_id}))
    except RemoteError as exc:
        if exc.code == NOT_FOUND:
            raise CliError(f"no task with id {task_id!r}") from None
        raise


@app.command("get")
def get(ctx: typer.Context, task_id: TaskIdArg, json_output: JsonOpt = False) -> None:
    """Show one task with its inputs, result and error."""

    async def go() -> TaskModel:
        async with open_manager(_state(ctx), load_plugins=False) as tm:
            return await _require(tm, task_id)

    task = local_or_remote(_state(ctx), go, lambda server: _remote_task(server, task_id))
    if json_output:
        print_json(task.to_dict())
    else:
        _task_details(task)


@app.command("tree")
def tree(ctx: typer.Context, task_id: TaskIdArg, json_output: JsonOpt = False) -> None:
    """Show the whole tree a task belongs to."""

    async def go() -> TaskTreeNode:
        async with open_manager(_state(ctx), load_plugins=False) as tm:
            return await _service(tm).tree({"task_id": task_id})

    def remote(server: Remote) -> TaskTreeNode:
        _remote_task(server, task_id)
        return tree_from_nested(server.call("tasks.tree", {"task_id": task_id}))

    node = local_or_remote(_state(ctx), go, remote)
    if json_output:
        print_json(_tree_dict(node))
        return
    from aipartnerupflow.cli._display import render_tree, rows_from_tree

    root_id, rows = rows_from_tree(node)
    console().print(render_tree(root_id, rows, show_ids=True, limit=None))


@app.command("children")
def children(ctx: typer.Context, task_id: TaskIdArg, json_output: JsonOpt = False) -> None:
    """List the direct children of a task."""

    async def go() -> list[TaskModel]:
        async with open_manager(_state(ctx), load_plugins=False) as tm:
            return await _service(tm).children({"task_id": task_id})

    def remote(server: Remote) -> list[TaskModel]:
        _remote_task(server, task_id)
        return [model(d) for d in server.call("tasks.children", {"parent_id": task_id})]

    tasks = local_or_remote(_state(ctx), go, remote)
    if json_output:
        print_json([t.to_dict() for t in tasks])
    else:
        _task_table(tasks)


@app.command("status")
def status(
    ctx: typer.Context,
    task_ids: Annotated[list[str], typer.Argument(metavar="TASK_ID...", help="Task ids")],
    json_output: JsonOpt = False,
) -> None:
    """Show the status and progress of tasks (exit code 2 if one is unknown)."""

    async def local() -> dict[str, TaskModel]:
        from aipartnerupflow.core.errors import TaskNotFoundError

        found: dict[str, TaskModel] = {}
        async with open_manager(_state(ctx), load_plugins=False) as tm:
            service = _service(tm)
            for task_id in task_ids:
                try:
                    found[task_id] = await service.require(task_id)
                except TaskNotFoundError:
                    continue
        return found

    def remote(server: Remote) -> dict[str, TaskModel]:
        found: dict[str, TaskModel] = {}
        for task_id in task_ids:
            try:
                found[task_id] = _remote_task(server, task_id)
            except CliError:
                continue
        return found

    def go() -> list[dict[str, Any]]:
        found = local_or_remote(_state(ctx), local, remote)
        rows: list[dict[str, Any]] = []
        for task_id in task_ids:
            t = found.get(task_id)
            if t is None:
                rows.append({"id": task_id, "status": "not_found"})
                continue
            rows.append(
                {
                    "id": t.id,
                    "name": t.name,
                    "status": t.status,
                    "progress": t.progress,
                    "error": t.error,
                    "root_id": t.root_id or t.id,
                    "started_at": t.started_at,
                    "updated_at": t.updated_at,
                    "completed_at": t.completed_at,
                }
            )
        return rows

    rows = go()
    if json_output:
        print_json(rows)
    else:
        from rich.markup import escape
        from rich.table import Table

        from aipartnerupflow.cli._display import ICONS, short_json

        table = Table(box=None, header_style="bold", pad_edge=False)
        for col in ("ID", "NAME", "STATUS", "PROGRESS", "ERROR"):
            table.add_column(col, overflow="fold")
        for r in rows:
            icon, style = ICONS.get(r["status"], ("?", "red"))
            table.add_row(
                r["id"],
                escape(r.get("name", "-")),
                f"[{style}]{icon} {r['status']}[/]",
                f"{(r.get('progress') or 0) * 100:.0f}%",
                escape(short_json(r.get("error"), 80)),
            )
        console().print(table)
    _fail_on_missing(rows)


@app.command("count")
def count(
    ctx: typer.Context,
    user_id: UserOpt = None,
    status: StatusOpt = None,
    root_id: RootOpt = None,
    roots_only: Annotated[bool, typer.Option("--roots-only", help="Count root tasks only")] = False,
    json_output: JsonOpt = False,
) -> None:
    """Count tasks per status (exact, with one query)."""
    statuses = _statuses(status)

    async def go() -> dict[str, int]:
        async with open_manager(_state(ctx), load_plugins=False) as tm:
            return await _service(tm).count(
                {
                    "user_id": user_id,
                    "status": statuses,
                    "root_id": root_id,
                    "root_only": roots_only,
                }
            )

    def remote(server: Remote) -> dict[str, int]:
        params: dict[str, Any] = {"root_only": roots_only}
        if root_id is not None:
            params["root_id"] = root_id
        if statuses:
            params["status"] = statuses
        if user_id:
            params["user_id"] = user_id
        result: dict[str, int] = server.call("tasks.count", params)
        return result

    counts = local_or_remote(_state(ctx), go, remote)
    full = {s: counts.get(s, 0) for s in STATUSES if statuses is None or s in statuses}
    full["total"] = counts.get("total", sum(full.values()))
    if json_output:
        print_json(full)
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("STATUS")
    table.add_column("COUNT", justify="right")
    for key, value in full.items():
        table.add_row(f"[bold]{key}[/]" if key == "total" else key, str(value))
    console().print(table)


# -- changing ------------------------------------------------------------------------------


@app.command("create")
def create(
    ctx: typer.Context,
    tasks: Annotated[
        str | None,
        typer.Option(
            "--tasks", "-t", metavar="JSON", help="Task tree as a JSON array", show_default=False
        ),
    ] = None,
    tasks_file: TasksFileOpt = None,
    user_id: Annotated[
        str | None,
        typer.Option("--user-id", "-u", help="Owner of tasks that name none", show_default=False),
    ] = None,
    new_ids: Annotated[
        bool, typer.Option("--new-ids", help="Replace the ids with fresh ones")
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Validate and store a task tree without running it (run it with `tasks execute`)."""
    task_list = build_tasks(None, tasks, tasks_file, None, None, None)
    if new_ids:
        task_list = renew_ids(task_list)

    async def go() -> TaskTreeNode:
        async with open_manager(_state(ctx)) as tm:
            await tm.storage.initialize()  # a locked database shows up before validation
            created = await _service(tm).create(
                {"tasks": task_list, "user_id": user_id, "id_conflict": "fail"}
            )
            return created.tree

    def remote(server: Remote) -> TaskTreeNode:
        if user_id is not None:
            raise daemon_refuses("--user-id", "create them")
        return tree_from_nested(
            server.call("tasks.create", {"tasks": task_list, "id_conflict": "fail"})
        )

    node = local_or_remote(_state(ctx), go, remote)
    if json_output:
        print_json({"root_id": node.task.id, "tasks": [t.to_dict() for t in node.tasks()]})
    else:
        typer.echo(
            f"Created tree {node.task.id} ({len(node.tasks())} tasks). Run it with: "
            f"apflow tasks execute {node.task.id}"
        )


@app.command("execute")
def execute(
    ctx: typer.Context,
    task_id: TaskIdArg,
    rerun: Annotated[
        str,
        typer.Option(
            "--rerun",
            help="none: unfinished tasks; failed: failed/cancelled tasks and their "
            "dependents; all: every task",
        ),
    ] = "none",
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency", "-c", min=1, help="Tasks run at the same time", show_default=False
        ),
    ] = None,
    json_output: JsonOpt = False,
    live: LiveOpt = None,
) -> None:
    """Run a stored tree (its unfinished tasks, or again with --rerun)."""
    if rerun not in ("none", "failed", "all"):
        raise CliError(f"--rerun must be none, failed or all, not {rerun!r}")
    mode: Literal["none", "all", "failed"] = rerun  # type: ignore[assignment]
    from aipartnerupflow.cli._display import make_display

    display = make_display(json_output, live)

    async def go() -> Any:
        options: dict[str, Any] = {"max_concurrency": concurrency} if concurrency else {}
        async with open_manager(_state(ctx), **options) as tm:
            run = await _service(tm).prepare_execute({"task_id": task_id, "rerun": mode})
            return await follow_run(tm, run.tree, run.start, display)

    def remote(server: Remote) -> Any:
        from aipartnerupflow.cli._remote_run import follow_on_server

        if concurrency is not None:
            raise daemon_refuses("--concurrency", "run the tree")
        task = _remote_task(server, task_id)
        root_id = task.root_id or task.id
        return follow_on_server(server, {"task_id": root_id, "rerun": mode}, display, root_id)

    finish(local_or_remote(_state(ctx), go, remote), json_output, None)


@app.command("resume")
def resume(ctx: typer.Context, json_output: JsonOpt = False) -> None:
    """Run again the trees a crashed process left unfinished."""

    async def go() -> list[dict[str, Any]]:
        async with open_manager(_state(ctx)) as tm:
            return [r.to_dict() for r in await _service(tm).resume()]

    def remote(server: Remote) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = server.call("tasks.resume", {}, timeout=None)
        return results

    results = local_or_remote(_state(ctx), go, remote)
    if json_output:
        print_json(results)
    elif not results:
        typer.echo("No interrupted trees.")
    else:
        for r in results:
            typer.echo(f"Tree {r['root_id']}: {r['status']} ({len(r['tasks'])} tasks)")
    if any(r["status"] != "completed" for r in results):
        raise typer.Exit(1)


@app.command("cancel")
def cancel(
    ctx: typer.Context,
    task_ids: Annotated[list[str], typer.Argument(metavar="TASK_ID...", help="Task ids")],
    json_output: JsonOpt = False,
) -> None:
    """Cancel tasks with their descendants and dependents (finished tasks stay as they are)."""

    async def go() -> list[dict[str, Any]]:
        async with open_manager(_state(ctx), load_plugins=False) as tm:
            outcomes = await _service(tm).cancel({"task_ids": task_ids})
        return [{"id": o.task_id, "status": o.status, "cancelled": o.cancelled} for o in outcomes]

    def remote(server: Remote) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for task_id in task_ids:
            try:
                reply = server.call("tasks.cancel", {"task_id": task_id})
            except RemoteError as exc:
                if exc.code != NOT_FOUND:
                    raise
                rows.append({"id": task_id, "status": "not_found", "cancelled": []})
                continue
            status = _remote_task(server, task_id).status
            rows.append({"id": task_id, "status": status, "cancelled": reply[0]["cancelled"]})
        return rows

    rows = local_or_remote(_state(ctx), go, remote)
    if json_output:
        print_json(rows)
    else:
        for r in rows:
            if r["status"] == "not_found":
                continue
            if r["cancelled"]:
                typer.echo(f"{r['id']}: cancelled {len(r['cancelled'])} task(s)")
            else:
                typer.echo(f"{r['id']}: nothing to cancel (already {r['status']})")
    _fail_on_missing(rows)


@app.command("update")
def update(
    ctx: typer.Context,
    task_id: TaskIdArg,
    fields: Annotated[
        str,
        typer.Option(
            "--fields",
            "-F",
            metavar="JSON",
            help="A JSON object of the fields to change: name, priority, inputs, params, "
            "schemas, dependencies, retry, timeout_seconds, status",
        ),
    ],
    json_output: JsonOpt = False,
) -> None:
    """Edit a task that is not running or completed (checked as at creation, on the whole
    tree), or change its status (pending to re-run it, cancelled)."""
    from aipartnerupflow.cli._common import parse_json

    changes = parse_json(fields, "--fields")
    if not isinstance(changes, dict):
        raise CliError("--fields must be a JSON object, e.g. '{\"priority\": 1}'")
    params = {**changes, "task_id": task_id}

    async def go() -> TaskModel:
        async with open_manager(_state(ctx)) as tm:
            return await _service(tm).update(params)

    def remote(server: Remote) -> TaskModel:
        return model(server.call("tasks.update", params))

    task = local_or_remote(_state(ctx), go, remote)
    if json_output:
        print_json(task.to_dict())
    else:
        typer.echo(f"Updated task {task.id} ({task.status}).")


@app.command("delete")
def delete(
    ctx: typer.Context,
    task_id: TaskIdArg,
    force: Annotated[
        bool, typer.Option("--force", help="Delete even running tasks or tasks others depend on")
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Delete a task and the tasks below it."""

    async def go() -> int:
        async with open_manager(_state(ctx), load_plugins=False) as tm:
            return await _service(tm).delete({"task_id": task_id, "force": force})

    def remote(server: Remote) -> int:
        _remote_task(server, task_id)  # "no task with id ..." comes first
        if force:
            raise CliError(
                "the daemon holds the database and may be running these tasks, so "
                "its API does not delete with --force; cancel them first (apflow "
                f"tasks cancel {task_id}) and delete without --force, or stop the "
                "daemon (apflow daemon stop)"
            )
        _remote_task(server, task_id)
        reply = server.call("tasks.delete", {"task_id": task_id})
        return int(reply["deleted_count"])

    removed = local_or_remote(_state(ctx), go, remote)
    if json_output:
        print_json({"id": task_id, "deleted": removed})
    else:
        typer.echo(f"Deleted {removed} task(s).")


@app.command("copy")
def copy(
    ctx: typer.Context,
    task_id: TaskIdArg,
    user_id: Annotated[
        str | None, typer.Option("--user-id", "-u", help="Owner of the copy", show_default=False)
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Copy a tree (by its root id) with fresh ids, every task pending."""

    async def go() -> tuple[TaskModel, int]:
        async with open_manager(_state(ctx), load_plugins=False) as tm:
            task = await _require(tm, task_id)
            if task.root_id and task.root_id != task.id:
                raise CliError(
                    f"task {task_id} is not a root; copy its tree with "
                    f"apflow tasks copy {task.root_id}"
                )
            copied = await _service(tm).copy({"task_id": task.id, "user_id": user_id})
            return copied.task, len(copied.tasks())

    def remote(server: Remote) -> tuple[TaskModel, int]:
        task = _remote_task(server, task_id)
        if task.root_id and task.root_id != task.id:
            raise CliError(
                f"task {task_id} is not a root; copy its tree with apflow tasks copy {task.root_id}"
            )
        nested = server.call("tasks.copy", {"task_id": task_id})
        return model(nested), len(flatten(nested))

    new_root, count = local_or_remote(_state(ctx), go, remote)
    if json_output:
        print_json({"root_id": new_root.id, "original_root_id": task_id, "tasks": count})
    else:
        typer.echo(
            f"Copied tree {task_id} to {new_root.id} ({count} tasks). Run it with: "
            f"apflow tasks execute {new_root.id}"
        )


def _remote_state(server: Remote, task_id: str) -> RunState | None:
    """The daemon's view of who runs the tree (None from a daemon without tasks.state)."""
    from aipartnerupflow.core.service import RunState

    try:
        data = server.call("tasks.state", {"task_id": task_id})
    except RemoteError as exc:
        if exc.code == -32601:
            return None
        raise
    return RunState(data["root_id"], data["state"], data.get("hint"))


def _check_watchable(state: RunState | None) -> None:
    """Refuse to wait for a tree nobody runs; note a tree waiting for a worker."""
    if state is None:
        return
    if state.state in ("pending", "interrupted"):
        what = "is pending and not running" if state.state == "pending" else "was interrupted"
        raise CliError(f"tree {state.root_id} {what}: {state.hint}; then watch it again")
    if state.state == "queued":
        sys.stderr.write(f"Note: tree {state.root_id} is queued, {state.hint}.\n")


@app.command("watch")
def watch(
    ctx: typer.Context,
    task_id: TaskIdArg,
    interval: Annotated[
        float, typer.Option("--interval", "-i", min=0.05, help="Seconds between polls")
    ] = 1.0,
    live: LiveOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Follow a tree run by another process until it ends (polls the database or the daemon)."""
    from aipartnerupflow.cli._display import make_display, print_summary
    from aipartnerupflow.core.status import TaskStatus

    display = make_display(json_output, live)

    async def go() -> dict[str, Any]:
        import asyncio

        async with open_manager(_state(ctx), load_plugins=False) as tm:
            service = _service(tm)
            _check_watchable(await service.run_state({"task_id": task_id}))
            node = await service.tree({"task_id": task_id})
            root_id = node.task.id
            display.start(node)
            try:
                while True:
                    tasks = await tm.task_repository.get_all_tasks_in_tree(root_id)
                    for t in tasks:
                        display.task(t)
                    if all(TaskStatus.is_terminal(t.status) for t in tasks):
                        break
                    await asyncio.sleep(interval)
            finally:
                display.stop()
            return result_from_tasks(root_id, tasks)

    def remote(server: Remote) -> dict[str, Any]:
        from aipartnerupflow.cli._remote_run import poll_tree

        task = _remote_task(server, task_id)
        root_id = task.root_id or task.id
        _check_watchable(_remote_state(server, task_id))
        try:
            tasks = poll_tree(server, root_id, display, interval, started=False)
        finally:
            display.stop()
        return result_from_tasks(root_id, tasks)

    began = time.monotonic()
    try:
        result = local_or_remote(_state(ctx), go, remote)
    except KeyboardInterrupt:
        sys.stderr.write("Stopped watching.\n")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if json_output:
        print_json(result)
    else:
        print_summary(console(), result, time.monotonic() - began)
    if result["status"] != "completed":
        raise typer.Exit(1)
