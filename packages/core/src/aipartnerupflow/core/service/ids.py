"""Client-chosen task ids: fresh ids for those already stored, references rewritten."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from aipartnerupflow.core.models import new_task_id

__all__ = ["given_ids", "renew_ids"]


def given_ids(tasks: Iterable[Any]) -> list[str]:
    """The ``id`` values the task objects name."""
    return [t["id"] for t in tasks if isinstance(t, dict) and isinstance(t.get("id"), str)]


def _fresh(_old: str) -> str:
    return new_task_id()


def renew_ids(
    tasks: list[Any],
    only: Iterable[str] | None = None,
    *,
    make_id: Callable[[str], str] = _fresh,
) -> tuple[list[Any], dict[str, str]]:
    """Copies of the task objects with fresh ids (all, or ``only`` these), parent and
    dependency references rewritten; returns them and the ``{old: new}`` mapping.

    ``make_id(old)`` gives each new id (default: a random one); a deterministic one lets a
    caller derive the same ids again (an executor re-attaching to a run it submitted earlier).
    Tasks without an id get ``make_id("")`` only when every task is renewed (``only=None``)."""
    chosen = set(given_ids(tasks)) if only is None else set(only)
    mapping = {old: make_id(old) for old in given_ids(tasks) if old in chosen}
    out: list[Any] = []
    for task in tasks:
        if not isinstance(task, dict):
            out.append(task)
            continue
        copy = dict(task)
        ident = task.get("id")
        if isinstance(ident, str) and ident in mapping:
            copy["id"] = mapping[ident]
        elif only is None:
            copy["id"] = make_id("")
        parent = copy.get("parent_id")
        if isinstance(parent, str):
            copy["parent_id"] = mapping.get(parent, parent)
        deps = copy.get("dependencies")
        if isinstance(deps, list):
            copy["dependencies"] = [_renamed(d, mapping) for d in deps]
        out.append(copy)
    return out, mapping


def _renamed(dep: Any, mapping: dict[str, str]) -> Any:
    if isinstance(dep, str):
        return mapping.get(dep, dep)
    if isinstance(dep, dict) and isinstance(dep.get("id"), str):
        return {**dep, "id": mapping.get(dep["id"], dep["id"])}
    return dep
