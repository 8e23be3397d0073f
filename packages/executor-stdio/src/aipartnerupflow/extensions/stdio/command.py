"""``command_executor``: run one allow-listed program per task, never through a shell.

Off until the operator lists ``command_executor`` in ``AIPARTNERUPFLOW_ENABLED_EXECUTORS``,
and then limited by :class:`~aipartnerupflow.extensions.stdio.settings.CommandSettings`
(see :mod:`aipartnerupflow.extensions.stdio.guard` for the rules). The program runs in its
own process group; on timeout or cancellation the whole group is stopped (SIGTERM, then
SIGKILL), and whatever it left running after a normal exit is killed too.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from typing import Any, ClassVar

from aipartnerupflow.core.errors import InputValidationError, PermanentError
from aipartnerupflow.core.executor import ExecutableTask
from aipartnerupflow.core.executors.caps import effective_limit
from aipartnerupflow.core.executors.process import run_process
from aipartnerupflow.extensions.stdio.argv import parse_command
from aipartnerupflow.extensions.stdio.errors import CommandRefusedError
from aipartnerupflow.extensions.stdio.guard import build_env, resolve_cwd, resolve_program
from aipartnerupflow.extensions.stdio.settings import CommandSettings

__all__ = ["DEFAULT_TIMEOUT", "INPUT_SCHEMA", "CommandExecutor"]

#: Seconds a program may run when the task gives no ``timeout`` (as in the original project).
DEFAULT_TIMEOUT = 30.0

_ARGV = {"type": "array", "minItems": 1, "items": {"type": "string"}}
_ENV = {"type": "object", "additionalProperties": {"type": "string"}}

INPUT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "command_executor inputs",
    "type": "object",
    "required": ["command"],
    "properties": {
        "command": {
            "description": "The program and its arguments: a list (one item per argument), or "
            "a string split with POSIX shell quoting rules. No shell ever runs it: shell "
            "syntax (; && | > $VAR `...`) in a string is refused.",
            "anyOf": [{"type": "string", "minLength": 1}, _ARGV],
        },
        "cwd": {
            "type": "string",
            "minLength": 1,
            "description": "Absolute working directory, inside the operator's allowed "
            "directories (default: a new empty temporary directory).",
        },
        "env": {
            **_ENV,
            "description": "Variables to set (only names the operator allows); nothing of "
            "the server's environment is inherited beyond PATH and the operator's list.",
        },
        "secret_env": {
            **_ENV,
            "description": "Variables to set from server environment variables the operator "
            "allows: {NAME: SERVER_VARIABLE}. The values never appear in results or logs.",
        },
        "stdin": {"type": "string", "description": "Text written to the program's stdin."},
        "timeout": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": DEFAULT_TIMEOUT,
            "description": "Seconds before the program (and every process it started) is "
            "stopped and the task fails.",
        },
        "max_output_bytes": {
            "type": "integer",
            "minimum": 0,
            "description": "Most bytes kept of stdout and of stderr each; can only lower the "
            "operator's limit.",
        },
        "allowed_exit_codes": {
            "description": "Exit statuses that count as success (default [0]); null accepts "
            "any. A negative status -N means the program was killed by signal N.",
            "anyOf": [
                {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "integer", "minimum": -64, "maximum": 255},
                },
                {"type": "null"},
            ],
        },
    },
    # The engine merges dependency results into the inputs under the dependency's id.
    "additionalProperties": True,
}


def _timeout(value: Any, settings: CommandSettings) -> float:
    if value is None:
        value = DEFAULT_TIMEOUT
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputValidationError("input 'timeout' must be a number of seconds")
    if not math.isfinite(value) or value <= 0:
        raise InputValidationError("input 'timeout' must be a positive, finite number of seconds")
    if value > settings.max_timeout:
        raise CommandRefusedError(
            f"input 'timeout' ({value:g}s) is above the operator's limit of "
            f"{settings.max_timeout:g}s (AIPARTNERUPFLOW_COMMAND_MAX_TIMEOUT)"
        )
    return float(value)


def _stdin(value: Any) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputValidationError("input 'stdin' must be a string")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputValidationError("input 'stdin' is not valid Unicode text") from None


def _exit_codes(inputs: dict[str, Any]) -> frozenset[int] | None:
    if "allowed_exit_codes" not in inputs:
        return frozenset({0})
    codes = inputs["allowed_exit_codes"]
    if codes is None:
        return None
    if (
        not isinstance(codes, list)
        or not codes
        or not all(isinstance(c, int) and not isinstance(c, bool) for c in codes)
    ):
        raise InputValidationError(
            "input 'allowed_exit_codes' must be a non-empty list of integers, or null"
        )
    return frozenset(codes)


class CommandExecutor(ExecutableTask):
    """Runs one allow-listed program per task: argv only, limited environment and directory."""

    id: ClassVar[str] = "command_executor"
    name: ClassVar[str] = "Command"
    description: ClassVar[str] = (
        "Run an allow-listed program with arguments (never through a shell), with a limited "
        "environment and working directory, a timeout and capped output."
    )
    tags: ClassVar[list[str]] = ["stdio", "command", "process"]
    examples: ClassVar[list[dict[str, Any]]] = [
        {"title": "List a directory", "inputs": {"command": ["ls", "-l", "/srv/data"]}},
        {"title": "A command string", "inputs": {"command": "git status --short"}},
        {
            "title": "Input on stdin, grep's 'no match' status accepted",
            "inputs": {
                "command": ["grep", "-c", "error"],
                "stdin": "all good\n",
                "allowed_exit_codes": [0, 1],
            },
        },
    ]
    input_schema: ClassVar[dict[str, Any] | None] = INPUT_SCHEMA
    dangerous: ClassVar[bool] = True

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Check everything, run the program, and return its exit code and output."""
        from aipartnerupflow.core.settings import CoreSettings

        settings = CommandSettings.get()
        command = inputs.get("command")
        argv = parse_command(command)
        program = resolve_program(argv[0], settings)
        cwd = resolve_cwd(inputs.get("cwd"), settings)
        env = build_env(
            inputs.get("env"), inputs.get("secret_env"), settings, CoreSettings.get().secret_env
        )
        stdin = _stdin(inputs.get("stdin"))
        timeout = _timeout(inputs.get("timeout"), settings)
        limit = effective_limit(inputs.get("max_output_bytes"), settings.max_output_bytes)
        allowed = _exit_codes(inputs)
        workdir: contextlib.AbstractContextManager[str | None] = (
            tempfile.TemporaryDirectory(prefix="apflow-command-", ignore_cleanup_errors=True)
            if cwd is None
            else contextlib.nullcontext(cwd)
        )
        with workdir as where:
            try:
                result = await run_process(
                    [program, *argv[1:]],
                    env=env,
                    cwd=where,
                    stdin=stdin,
                    timeout=timeout,
                    max_output_bytes=limit,
                    allowed_exit_codes=allowed,
                    grace_seconds=settings.kill_grace,
                )
            except TimeoutError:  # TaskTimeoutError (a TimeoutError, hence an OSError)
                raise
            except OSError as exc:  # E2BIG, ENOEXEC … : no retry can start it
                raise PermanentError(
                    f"{argv[0]} could not be started: {exc.strerror or exc}"
                ) from None
        return {
            "command": command,
            "argv": argv,
            "executable": program,
            "cwd": cwd,
            "return_code": result.exit_code,
            **result.to_dict(),
            "success": True,
        }
