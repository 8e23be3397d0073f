"""Size limits for task JSON, checked before anything is parsed deeply or written.

Every surface (Python API, CLI, A2A ``/tasks``, MCP) goes through these checks, so a hostile
or accidental value (NaN, a NUL character, a 10,000-level nesting, a 1,000-level tree) is
refused with a clear reason and nothing is stored.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_LIMITS", "TaskLimits", "json_problems", "json_problems_sized", "reprs_exceed"]


@dataclass(frozen=True, slots=True)
class TaskLimits:
    """Bounds on one task tree (see docs/limits.md)."""

    max_tasks: int = 20_000
    """Tasks in one tree (servers lower it: the A2A server allows 1,000 per request)."""
    max_tree_depth: int = 100
    """Levels of ``parent_id`` nesting below the root."""
    max_json_depth: int = 32
    """Nesting of objects and arrays inside one task's ``inputs``, ``params`` or ``schemas``."""
    max_task_bytes: int = 1_000_000
    """Characters of one task's JSON (about one megabyte)."""
    max_tree_bytes: int = 10_000_000
    """Characters of a whole tree's JSON."""


DEFAULT_LIMITS = TaskLimits()


def _walk(value: Any, max_depth: int) -> Iterator[tuple[str, Any, int]]:
    """(path, value, depth) for every nested value, iteratively (no recursion limit)."""
    stack: list[tuple[str, Any, int]] = [("", value, 0)]
    while stack:
        path, item, depth = stack.pop()
        yield path, item, depth
        if depth >= max_depth:
            continue
        if isinstance(item, dict):
            for key, sub in item.items():
                stack.append((f"{path}.{key}" if path else str(key), sub, depth + 1))
                if isinstance(key, str):
                    yield (f"{path}.{key}" if path else key) + " (key)", key, depth + 1
        elif isinstance(item, list | tuple):
            for index, sub in enumerate(item):
                stack.append((f"{path}[{index}]", sub, depth + 1))


#: ``len(repr(value))`` is at most this many times the bound :func:`_scan` returns (an escaped
#: character takes at most 10 characters, a number at most the 24 counted for it).
_REPR_FACTOR = 10


def _scan(value: Any, max_depth: int) -> int:
    """-1 when something in ``value`` is non-finite, holds NUL or nests too deeply; else a
    size bound, with ``len(repr(value)) <= _REPR_FACTOR * bound`` (fast: no repr)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    isfinite = math.isfinite
    size = 0
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is str:
            if "\x00" in item:
                return -1
            size += len(item) + 2
        elif kind is dict:
            if depth > max_depth:
                return -1
            size += 2
            for key, sub in item.items():
                if type(key) is str:
                    if "\x00" in key:
                        return -1
                    size += len(key) + 4
                else:
                    size += len(repr(key)) + 2
                stack.append((sub, depth + 1))
        elif kind is list or kind is tuple:
            if depth > max_depth:
                return -1
            size += 2 + 2 * len(item)
            stack.extend((sub, depth + 1) for sub in item)
        elif kind is float:
            if not isfinite(item):
                return -1
            size += 24
        elif kind is int:
            size += 24 if -(1 << 63) <= item < (1 << 63) else item.bit_length() // 3 + 2
        elif item is None or kind is bool:
            size += 5
        elif isinstance(item, str | dict | list | tuple | float):  # subclasses: slow path
            return -1
        else:  # not JSON at all: the store refuses it later; count what repr shows
            size += len(repr(item))
    return size


def _clean(value: Any, max_depth: int) -> bool:
    """True when nothing in ``value`` is non-finite, holds NUL or nests too deeply (fast)."""
    return _scan(value, max_depth) >= 0


def json_problems(value: Any, where: str, limits: TaskLimits = DEFAULT_LIMITS) -> list[str]:
    """Why ``value`` cannot be stored as task JSON (empty when it can).

    Refuses NaN and infinities, NUL characters, nesting deeper than ``max_json_depth`` and
    more than ``max_task_bytes`` characters.
    """
    return json_problems_sized(value, where, limits)[0]


def json_problems_sized(
    value: Any, where: str, limits: TaskLimits = DEFAULT_LIMITS
) -> tuple[list[str], int]:
    """:func:`json_problems`, and a bound on the value's size (see :func:`_scan`)."""
    bound = _scan(value, limits.max_json_depth)
    if bound >= 0:
        return _size_problems(value, where, limits, bound), bound
    problems: list[str] = []
    for path, item, depth in _walk(value, limits.max_json_depth + 1):
        at = f"{where}.{path}" if path else where
        if depth > limits.max_json_depth and isinstance(item, dict | list | tuple):
            problems.append(
                f"{at}: nested more than {limits.max_json_depth} levels deep; flatten the structure"
            )
            return problems, bound
        if isinstance(item, float) and not math.isfinite(item):
            problems.append(
                f"{at}: {item!r} is not a JSON number; use a finite number, null or a string"
            )
        elif isinstance(item, str) and "\x00" in item:
            problems.append(f"{at}: contains a NUL character (\\u0000); remove it")
    return problems or _size_problems(value, where, limits), bound


def reprs_exceed(values: Sequence[Any], bound: int, limit: int) -> bool:
    """Whether the values' ``repr`` together is longer than ``limit`` characters, given
    the sum of their :func:`json_problems_sized` bounds: ``repr`` only when the bound cannot
    rule it out."""
    return bound * _REPR_FACTOR > limit and sum(len(repr(v)) for v in values) > limit


def _size_problems(
    value: Any, where: str, limits: TaskLimits, bound: int | None = None
) -> list[str]:
    """Too large; ``bound`` (from :func:`_scan`, when known) spares the ``repr``."""
    limit = limits.max_task_bytes
    if reprs_exceed([value], bound, limit) if bound is not None else len(repr(value)) > limit:
        return [
            f"{where}: larger than {limits.max_task_bytes} characters; pass big data "
            "by reference (a URL or a path) instead of inline"
        ]
    return []
