"""Showing a running tree to people: a live rich tree on terminals, status lines elsewhere,
and a summary table at the end. ``--json`` uses none of this."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

    from aipartnerupflow.core.events import TaskEvent
    from aipartnerupflow.core.models import TaskModel
    from aipartnerupflow.core.tree import TaskTreeNode

__all__ = [
    "Display",
    "LineDisplay",
    "LiveDisplay",
    "NullDisplay",
    "TaskRow",
    "make_display",
    "print_summary",
    "render_tree",
    "rows_from_tree",
    "short_json",
]

#: Above this many tasks the live view shows counts and active tasks instead of the tree.
LIVE_TREE_LIMIT = 40

ICONS = {
    "pending": ("○", "dim"),
    "in_progress": ("◐", "cyan"),
    "completed": ("✔", "green"),
    "failed": ("✘", "red"),
    "cancelled": ("⊘", "yellow"),
}


def short_json(value: Any, limit: int = 120) -> str:
    """One-line JSON (or text), cut to ``limit`` characters."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _bar(progress: float, width: int = 12) -> str:
    filled = round(max(0.0, min(1.0, progress)) * width)
    return "━" * filled + "╌" * (width - filled)


@dataclass(slots=True)
class TaskRow:
    """What the display knows about one task."""

    id: str
    name: str
    status: str = "pending"
    progress: float = 0.0
    message: str | None = None
    error: str | None = None
    result: Any = None
    children: list[str] = field(default_factory=list)

    def update(self, task: TaskModel) -> None:
        """Copy state from a stored task."""
        self.status = task.status
        self.progress = task.progress or 0.0
        self.error = task.error
        self.result = task.result


def rows_from_tree(tree: TaskTreeNode) -> tuple[str, dict[str, TaskRow]]:
    """Root id and a row per task, children in tree order."""
    rows: dict[str, TaskRow] = {}
    for node in tree.walk():
        row = TaskRow(
            node.task.id,
            node.task.name,
            node.task.status,
            node.task.progress or 0.0,
            error=node.task.error,
            result=node.task.result,
            children=[c.task.id for c in node.children],
        )
        rows[row.id] = row
    return tree.task.id, rows


def _label(row: TaskRow, show_ids: bool = False) -> str:
    from rich.markup import escape

    icon, style = ICONS.get(row.status, ("?", ""))
    parts = [f"[{style}]{icon}[/] [bold]{escape(row.name)}[/] [{style}]{row.status}[/]"]
    if show_ids:
        parts.append(f"[dim]{escape(row.id)}[/]")
    if row.status == "in_progress" or 0 < row.progress < 1:
        parts.append(f"[cyan]{_bar(row.progress)}[/] {row.progress * 100:3.0f}%")
    if row.message and row.status == "in_progress":
        parts.append(f"[dim]{escape(short_json(row.message, 60))}[/]")
    if row.error and row.status in ("failed", "cancelled"):
        parts.append(f"[{style}]{escape(short_json(row.error, 80))}[/]")
    return "  ".join(parts)


def render_tree(
    root_id: str,
    rows: dict[str, TaskRow],
    title: str | None = None,
    *,
    show_ids: bool = False,
    limit: int | None = LIVE_TREE_LIMIT,
) -> RenderableType:
    """A rich tree of the rows (or, above ``limit``, counts and active tasks)."""
    from rich.tree import Tree

    if limit is not None and len(rows) > limit:
        return _render_big(rows, title)
    root = rows[root_id]
    tree = Tree(_label(root, show_ids) + (f"  [dim]{title}[/]" if title else ""), guide_style="dim")
    stack: list[tuple[Tree, TaskRow]] = [(tree, root)]
    while stack:
        branch, row = stack.pop()
        for child_id in row.children:
            child = rows.get(child_id)
            if child is not None:
                stack.append((branch.add(_label(child, show_ids)), child))
    return tree


def _render_big(rows: dict[str, TaskRow], title: str | None) -> RenderableType:
    from rich.console import Group
    from rich.text import Text

    counts: dict[str, int] = {}
    for row in rows.values():
        counts[row.status] = counts.get(row.status, 0) + 1
    done = sum(counts.get(s, 0) for s in ("completed", "failed", "cancelled"))
    head = Text.from_markup(
        f"[bold]{done}/{len(rows)} tasks finished[/]  "
        + "  ".join(f"[{ICONS.get(s, ('', ''))[1]}]{s} {n}[/]" for s, n in sorted(counts.items()))
        + (f"  [dim]{title}[/]" if title else "")
    )
    active = [r for r in rows.values() if r.status == "in_progress"][:15]
    failed = [r for r in rows.values() if r.status == "failed"][:5]
    lines = [Text.from_markup("  " + _label(r)) for r in [*active, *failed]]
    return Group(head, *lines)


class Display:
    """Receives the run's events; shows nothing by default."""

    def start(self, tree: TaskTreeNode) -> None:
        """The tree about to run."""

    def event(self, event: TaskEvent) -> None:
        """One event of the run."""

    def task(self, task: TaskModel) -> None:
        """The stored state of one task (when polling instead of following events)."""

    def note(self, text: str) -> None:
        """A message for the person (e.g. cancelling)."""

    def stop(self) -> None:
        """The run ended (or failed to start)."""


class NullDisplay(Display):
    """``--json``: nothing for people on stdout."""

    def note(self, text: str) -> None:
        import sys

        sys.stderr.write(text + "\n")


class _Tracking(Display):
    def __init__(self) -> None:
        self.root_id = ""
        self.rows: dict[str, TaskRow] = {}
        self.started = time.monotonic()

    def start(self, tree: TaskTreeNode) -> None:
        self.root_id, self.rows = rows_from_tree(tree)
        self.started = time.monotonic()

    def task(self, task: TaskModel) -> None:
        row = self.rows.get(task.id)
        if row is not None and (row.status, row.progress) != (task.status, task.progress):
            status_changed = row.status != task.status
            row.update(task)
            if status_changed:
                self._changed(row)

    def _changed(self, row: TaskRow) -> None:
        """A row's status changed (progress alone does not count)."""

    def _apply(self, event: TaskEvent) -> TaskRow | None:
        row = self.rows.get(event.task_id)
        if row is None:
            return None
        if event.kind == "task_progress":
            row.progress = event.progress
            row.message = event.message
        elif event.kind == "task_status":
            row.status = event.status
            row.progress = event.progress if event.progress else row.progress
            if event.status == "completed":
                row.progress = 1.0
            row.error = event.error
            row.result = event.result
            if event.message:
                row.message = event.message
        return row


class LiveDisplay(_Tracking):
    """A rich Live tree, redrawn as events arrive (terminals only)."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console
        self._live: Live | None = None
        self._note: str | None = None

    def _render(self) -> RenderableType:
        elapsed = f"{time.monotonic() - self.started:.1f}s"
        body = render_tree(self.root_id, self.rows, elapsed)
        if self._note:
            from rich.console import Group
            from rich.text import Text

            return Group(body, Text(self._note, style="yellow"))
        return body

    def start(self, tree: TaskTreeNode) -> None:
        super().start(tree)
        from rich.live import Live

        self._live = Live(
            get_renderable=self._render, console=self.console, refresh_per_second=8, transient=False
        )
        self._live.start()

    def event(self, event: TaskEvent) -> None:
        self._apply(event)

    def note(self, text: str) -> None:
        self._note = text
        if self._live is not None:
            self._live.refresh()

    def stop(self) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None


class LineDisplay(_Tracking):
    """One line per status change, for logs and pipes."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def start(self, tree: TaskTreeNode) -> None:
        super().start(tree)
        self.console.print(f"Running tree {tree.task.id} ({len(self.rows)} tasks)")

    def event(self, event: TaskEvent) -> None:
        row = self._apply(event)
        if row is not None and event.kind == "task_status":
            self._changed(row)

    def _changed(self, row: TaskRow) -> None:
        from rich.markup import escape

        icon, style = ICONS.get(row.status, ("?", ""))
        extra = (
            f": {escape(short_json(row.error, 100))}"
            if row.error and row.status != "completed"
            else ""
        )
        self.console.print(f"[{style}]{icon}[/] {escape(row.name)} [{style}]{row.status}[/]{extra}")

    def note(self, text: str) -> None:
        self.console.print(f"[yellow]{text}[/]")


def make_display(json_output: bool, live: bool | None) -> Display:
    """The display for the options: nothing for JSON, live on terminals, lines otherwise."""
    if json_output:
        return NullDisplay()
    from aipartnerupflow.cli._common import console

    out = console()
    use_live = out.is_terminal if live is None else live
    return LiveDisplay(out) if use_live else LineDisplay(out)


def print_summary(console: Console, result: dict[str, Any], elapsed: float | None) -> None:
    """The end-of-run table: each task's status and result or error."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("TASK", overflow="fold")
    table.add_column("STATUS")
    table.add_column("RESULT / ERROR", overflow="fold")
    for task in result["tasks"]:
        icon, style = ICONS.get(task["status"], ("?", ""))
        if task["status"] == "completed":
            detail = escape(short_json(task.get("result"), 200))
        else:
            detail = f"[{style}]{escape(short_json(task.get('error') or '', 200))}[/]"
        table.add_row(escape(task["name"]), f"[{style}]{icon} {task['status']}[/]", detail)
    console.print(table)
    counts: dict[str, int] = {}
    for task in result["tasks"]:
        counts[task["status"]] = counts.get(task["status"], 0) + 1
    icon, style = ICONS.get(result["status"], ("?", ""))
    took = f" in {elapsed:.2f}s" if elapsed is not None else ""
    detail = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    console.print(
        f"[{style}][bold]{icon} Tree {result['root_id']} {result['status']}[/][/] ({detail}){took}"
    )
