"""Hooks: pre/post hooks around every task and task-tree lifecycle hooks (sync or async)."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any, Literal, TypeVar

__all__ = [
    "TREE_EVENTS",
    "clear_hooks",
    "get_post_hooks",
    "get_pre_hooks",
    "get_task_tree_hooks",
    "register_post_hook",
    "register_pre_hook",
    "register_task_tree_hook",
    "run_hook",
]

log = logging.getLogger("aipartnerupflow.hooks")
F = TypeVar("F", bound=Callable[..., Any])
TreeEvent = Literal["on_tree_created", "on_tree_started", "on_tree_completed", "on_tree_failed"]
TREE_EVENTS: tuple[str, ...] = (
    "on_tree_created",
    "on_tree_started",
    "on_tree_completed",
    "on_tree_failed",
)

_pre: list[Callable[..., Any]] = []
_post: list[Callable[..., Any]] = []
_tree: dict[str, list[Callable[..., Any]]] = {name: [] for name in TREE_EVENTS}
_NONE: list[Callable[..., Any]] = []


def register_pre_hook(hook: F) -> F:
    """Run ``hook(task)`` before each task executes; it may change ``task.inputs``.

    Usable as a decorator or a plain call; registering the same hook twice has no effect.
    """
    if hook not in _pre:
        _pre.append(hook)
    return hook


def register_post_hook(hook: F) -> F:
    """Run ``hook(task, inputs, result)`` after each task ends, whatever its outcome."""
    if hook not in _post:
        _post.append(hook)
    return hook


def register_task_tree_hook(event: str, hook: Callable[..., Any] | None = None) -> Any:
    """Run ``hook(root_task, *args)`` on a tree event: created, started, completed or failed.

    ``event`` may be given with or without the ``on_tree_`` prefix.
    """
    name = event if event.startswith("on_tree_") else f"on_tree_{event}"
    if name not in _tree:
        raise ValueError(f"unknown tree hook event {event!r}; use one of {', '.join(TREE_EVENTS)}")

    def add(fn: F) -> F:
        if fn not in _tree[name]:
            _tree[name].append(fn)
        return fn

    return add(hook) if hook is not None else add


def get_pre_hooks() -> list[Callable[..., Any]]:
    """Registered pre-hooks (a copy; empty lists are shared, so the hot path stays cheap)."""
    return list(_pre) if _pre else _NONE


def get_post_hooks() -> list[Callable[..., Any]]:
    """Registered post-hooks (a copy)."""
    return list(_post) if _post else _NONE


def get_task_tree_hooks(event: str) -> list[Callable[..., Any]]:
    """Registered hooks for one tree event."""
    name = event if event.startswith("on_tree_") else f"on_tree_{event}"
    return list(_tree.get(name, []))


def clear_hooks() -> None:
    """Remove every hook (tests use this)."""
    _pre.clear()
    _post.clear()
    for hooks in _tree.values():
        hooks.clear()


async def run_hook(hook: Callable[..., Any], *args: Any) -> None:
    """Call a sync or async hook; a failing hook is logged, never fatal to the run."""
    try:
        value = hook(*args)
        if inspect.isawaitable(value):
            await value
    except Exception:
        log.exception("hook %s failed", getattr(hook, "__qualname__", hook))
