"""Turning a task's ``command`` into an argv list, without ever involving a shell.

A list is taken as it is (each item one argument). A string is split with :mod:`shlex` (POSIX
quoting), but a string that uses shell syntax (``;``, ``&&``, ``|``, redirections, backticks,
``$(...)``, ``$VAR``, a line break) is refused with an explanation: no shell would interpret
it, so it cannot mean what its author thinks. Quote or escape such characters to pass them
as literal arguments.
"""

from __future__ import annotations

import shlex
from typing import Any

from aipartnerupflow.core.errors import InputValidationError
from aipartnerupflow.core.executors.process import check_argv

__all__ = ["parse_command", "shell_syntax"]

_OPERATORS = frozenset(";|&<>()`")
_EXPANSION_START = frozenset("({_") | frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@*#?$!-"
)


def _expansion(command: str, i: int) -> str | None:
    """The ``$...`` expansion starting at ``command[i]`` (a ``$``), or None."""
    nxt = command[i + 1 : i + 2]
    if nxt and nxt in _EXPANSION_START:
        return command[i : i + 2] + ("..." if nxt in "({" else "")
    return None


def shell_syntax(command: str) -> str | None:
    """The first piece of shell syntax in ``command`` outside single quotes, or None.

    Follows POSIX quoting: nothing is special inside '...'; inside "..." only expansions
    (``$``, backticks) would be; outside quotes a backslash escapes the next character.
    """
    quote: str | None = None
    i = 0
    while i < len(command):
        c = command[i]
        if quote == "'":
            if c == "'":
                quote = None
        elif quote == '"':
            if c == "\\":
                i += 1
            elif c == '"':
                quote = None
            elif c == "`":
                return c
            elif c == "$" and (found := _expansion(command, i)):
                return found
        elif c == "\\":
            i += 1
        elif c in "'\"":
            quote = c
        elif c in "\n\r":
            return "a line break"
        elif c in _OPERATORS:
            return command[i : i + 2] if command[i : i + 2] in ("&&", "||", ">>", "<<") else c
        elif c == "$" and (found := _expansion(command, i)):
            return found
        i += 1
    return None


def parse_command(command: Any) -> list[str]:
    """``command`` (an argv list or a command string) as an argv list, or a clear error."""
    if not isinstance(command, str):
        return check_argv(command)
    if "\x00" in command:
        raise InputValidationError("input 'command' contains a NUL byte")
    found = shell_syntax(command)
    if found is not None:
        shown = found if found == "a line break" else repr(found)
        raise InputValidationError(
            f"input 'command' contains {shown}, which only a shell understands, and no shell "
            "runs commands here: give one program and its arguments (as a list, or quote or "
            "escape the character to pass it literally); set variables with 'env', and run "
            "further programs as separate tasks with dependencies"
        )
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise InputValidationError(
            f"input 'command' cannot be split into arguments ({exc}): check its quotes"
        ) from None
    if not argv:
        raise InputValidationError("input 'command' is empty: give a program to run")
    return check_argv(argv)
