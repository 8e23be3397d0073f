"""The tool registry: agents name their tools (``"tools": ["search"]``); users register them.

Register a crewai ``BaseTool`` instance, or a zero-argument factory returning one (so the
registering module need not import crewai until a crew runs)::

    from aipartnerupflow.extensions.crewai import register_tool, tool_register

    register_tool("search", lambda: MySearchTool())

    @tool_register("calculator")
    class Calculator(BaseTool): ...

Names are looked up only here: no other module, frame or package is searched.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from aipartnerupflow.core.errors import InputValidationError, PluginConflictError

__all__ = ["register_tool", "registered_tools", "resolve_tools", "tool_register", "unregister_tool"]

T = TypeVar("T")

_tools: dict[str, Any] = {}
_lock = threading.Lock()


def register_tool(name: str, tool: Any, *, override: bool = False) -> None:
    """Register ``tool`` (a crewai tool, a tool class, or a factory) under ``name``."""
    if not isinstance(name, str) or not name.strip():
        raise InputValidationError("a tool name must be a non-empty string")
    with _lock:
        if name in _tools and _tools[name] is not tool and not override:
            raise PluginConflictError(
                f"a tool named {name!r} is already registered; pass override=True to replace it"
            )
        _tools[name] = tool


def unregister_tool(name: str) -> None:
    """Forget the tool registered under ``name`` (no error when there is none)."""
    with _lock:
        _tools.pop(name, None)


def tool_register(name: str | None = None, *, override: bool = False) -> Callable[[T], T]:
    """Class or factory decorator: register it under ``name`` (default: its ``__name__``)."""

    def decorate(obj: T) -> T:
        register_tool(str(name or getattr(obj, "__name__", "")), obj, override=override)
        return obj

    return decorate


def registered_tools() -> list[str]:
    """The registered tool names, sorted."""
    with _lock:
        return sorted(_tools)


def resolve_tools(names: tuple[str, ...], where: str) -> list[Any]:
    """The tool objects for ``names`` (factories called, classes instantiated)."""
    from crewai.tools import BaseTool

    found = []
    for name in names:
        with _lock:
            entry = _tools.get(name)
        if entry is None:
            known = ", ".join(registered_tools()) or "none"
            raise InputValidationError(
                f"{where}: no tool named {name!r} is registered (registered: {known}); register "
                "it with aipartnerupflow.extensions.crewai.register_tool"
            )
        tool = entry() if callable(entry) and not isinstance(entry, BaseTool) else entry
        if not isinstance(tool, BaseTool):
            raise InputValidationError(
                f"{where}: tool {name!r} is a {type(tool).__name__}, not a crewai BaseTool"
            )
        found.append(tool)
    return found
