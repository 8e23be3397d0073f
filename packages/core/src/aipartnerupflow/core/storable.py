"""What a task store can hold: results and error texts checked before they are written.

A result goes into a JSON column of DuckDB or PostgreSQL; an error into a text column. Values
neither can hold (NaN, Infinity, NUL bytes in text, lone surrogates, nesting beyond
:data:`MAX_DEPTH`, more than :data:`max_result_bytes` of JSON, objects JSON does not know) would
otherwise fail the whole group-commit batch they are written in. :func:`result_problem` names
what is wrong so the one task can fail with that reason; :func:`storable_text` makes any text
safe to store.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

__all__ = [
    "MAX_DEPTH",
    "MAX_ERROR_CHARS",
    "encode_result",
    "max_result_bytes",
    "result_problem",
    "storable_text",
]

#: Nesting deeper than this is refused (JSON encoders and PostgreSQL's parser recurse).
MAX_DEPTH = 200
#: Error texts are cut to this many characters.
MAX_ERROR_CHARS = 10_000
_DEFAULT_MAX_RESULT_BYTES = 16 * 1024 * 1024
_PLAIN = (str, int, float, bool, type(None))


def max_result_bytes() -> int:
    """The size limit of one result as JSON (``AIPARTNERUPFLOW_MAX_RESULT_BYTES``, 16 MiB)."""
    raw = os.environ.get("AIPARTNERUPFLOW_MAX_RESULT_BYTES", "")
    return int(raw) if raw.strip().isdigit() else _DEFAULT_MAX_RESULT_BYTES


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "a NUL character (\\x00)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "a lone surrogate (text that is not valid Unicode)"
    return None


def _where(path: list[str]) -> str:
    return "$" + "".join(path) if path else "the top level"


def result_problem(value: Any) -> str | None:
    """Why ``value`` cannot be stored as a task result, or None when it can.

    Walks the value without recursion, so any nesting depth is examined safely.
    """
    if type(value) in (int, bool, type(None)):
        return None
    stack: list[tuple[Any, int, list[str]]] = [(value, 0, [])]
    while stack:
        item, depth, path = stack.pop()
        kind = type(item)
        if kind is str:
            problem = _text_problem(item)
            if problem:
                return f"it contains {problem} at {_where(path)}"
        elif kind is float:
            if not math.isfinite(item):
                return f"it contains {item!r} at {_where(path)}, which JSON cannot hold"
        elif isinstance(item, _PLAIN):
            continue
        elif isinstance(item, dict | list | tuple):
            if depth >= MAX_DEPTH:
                return f"it is nested more than {MAX_DEPTH} levels deep (at {_where(path[:8])}...)"
            if isinstance(item, dict):
                for key, child in item.items():
                    if not isinstance(key, str):
                        if not isinstance(key, int | float | bool) and key is not None:
                            return f"it has a key of type {type(key).__name__} at {_where(path)}"
                        key = str(key)
                    problem = _text_problem(key)
                    if problem:
                        return f"a key at {_where(path)} contains {problem}"
                    if len(path) < 64:
                        stack.append((child, depth + 1, [*path, f".{key[:40]}"]))
                    else:
                        stack.append((child, depth + 1, path))
            else:
                for i, child in enumerate(item):
                    stack.append((child, depth + 1, [*path, f"[{i}]"] if len(path) < 64 else path))
        else:
            return (
                f"it contains a value of type {kind.__name__} at {_where(path)}, which is not JSON"
            )
    return None


def encode_result(value: Any) -> tuple[str | None, str | None]:
    """``(json_text, None)`` for a storable result, ``(None, reason)`` otherwise."""
    problem = result_problem(value)
    if problem is None:
        try:
            text = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:  # pragma: no cover - walked
            problem = f"it cannot be encoded as JSON: {exc}"
        else:
            limit = max_result_bytes()
            if len(text) > limit:
                return None, (
                    f"it is {len(text):,} bytes of JSON, more than the limit of {limit:,} "
                    "(AIPARTNERUPFLOW_MAX_RESULT_BYTES)"
                )
            return text, None
    return None, problem


def storable_text(text: str | None, limit: int = MAX_ERROR_CHARS) -> str | None:
    """``text`` made safe for a text column: NUL and lone surrogates escaped, length capped."""
    if text is None:
        return None
    if not isinstance(text, str):
        text = str(text)
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) > limit:
        text = text[: limit - 30] + f"... ({len(text) - limit + 30:,} more characters)"
    return text
