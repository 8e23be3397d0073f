"""``example_command``: run a program (the subprocess skeleton).

What the kit gives a subprocess executor:

* :func:`~aipartnerupflow.core.executors.run_process`: argv only (never a shell), its own
  process group, SIGTERM then SIGKILL on cancel or timeout, nothing left running after it
  returns, capped stdout/stderr, an exit-code policy;
* ``dangerous = True``: the engine refuses its tasks until the operator lists the id in
  ``AIPARTNERUPFLOW_ENABLED_EXECUTORS``;
* :func:`~aipartnerupflow.core.executors.read_secret_env`: secrets handed to the program's
  environment are registered, so they are masked if the program prints them.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from aipartnerupflow.core.errors import InputValidationError
from aipartnerupflow.core.executor import ExecutableTask
from aipartnerupflow.core.executors import effective_limit, read_secret_env, run_process
from aipartnerupflow.extensions.example.settings import ExampleSettings

__all__ = ["ExampleCommandExecutor"]


class ExampleCommandExecutor(ExecutableTask):
    """Run ``inputs["command"]`` (argv); the result holds exit code, stdout and stderr."""

    id = "example_command"
    name = "Example command"
    description = "Runs a program (argv, no shell): the subprocess executor template."
    tags: ClassVar[list[str]] = ["example", "command"]
    examples: ClassVar[list[dict[str, Any]]] = [
        {"name": "say hello", "inputs": {"command": ["echo", "hello"]}},
    ]
    dangerous = True  # it runs what the task says on this host: operators opt in
    default_timeout = 600.0
    input_schema: ClassVar[dict[str, Any] | None] = {
        "type": "object",
        "properties": {
            "command": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 1,
                "description": "program and arguments (argv; no shell)",
            },
            "stdin": {"type": "string", "description": "text fed to the program"},
            "env": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "extra environment variables (PATH is passed through)",
            },
            "secret_env": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "program variable -> allow-listed server variable holding a "
                "secret (AIPARTNERUPFLOW_EXAMPLE_SECRET_ENV)",
            },
            "allowed_exit_codes": {
                "type": "array",
                "items": {"type": "integer"},
                "default": [0],
            },
            "max_output_bytes": {"type": "integer", "minimum": 0},
        },
        "required": ["command"],
    }

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        settings = ExampleSettings.get()
        # Nothing of the server's environment is inherited but PATH: it may hold secrets.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **inputs.get("env", {})}
        for name, source in inputs.get("secret_env", {}).items():
            if name in env:
                raise InputValidationError(f"input 'secret_env': {name!r} is also in 'env'")
            env[name] = read_secret_env(
                source,
                allowed=settings.readable_env(),
                setting="AIPARTNERUPFLOW_EXAMPLE_SECRET_ENV",
                field=f"secret_env.{name}",
            )
        stdin = inputs.get("stdin")
        result = await run_process(
            inputs["command"],
            env=env,
            stdin=stdin.encode() if isinstance(stdin, str) else None,
            max_output_bytes=effective_limit(
                inputs.get("max_output_bytes"), settings.max_output_bytes
            ),
            allowed_exit_codes=inputs.get("allowed_exit_codes", [0]),
        )
        return result.to_dict()
