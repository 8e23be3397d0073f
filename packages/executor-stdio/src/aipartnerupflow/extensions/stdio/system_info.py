"""``system_info_executor``: CPU, memory, disk, OS, Python and load of the machine.

Read from the standard library and ``/proc``; no command is ever run. The result keys of the
original project are kept (cpu: ``system, brand, cores, threads``; memory: ``total, total_gb,
system``; disk: ``total, used, available, used_percent, system``; ``all``: one key per
resource), with more beside them.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, ClassVar

from aipartnerupflow.core.errors import InputValidationError
from aipartnerupflow.core.executor import ExecutableTask
from aipartnerupflow.extensions.stdio.sysinfo import RESOURCES, read_resource

__all__ = ["INPUT_SCHEMA", "SystemInfoExecutor"]

INPUT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "system_info_executor inputs",
    "type": "object",
    "properties": {
        "resource": {
            "type": "string",
            "enum": [*RESOURCES, "all"],
            "default": "all",
            "description": "What to report: " + ", ".join(RESOURCES) + ", or all of them.",
        },
        "path": {
            "type": "string",
            "minLength": 1,
            "default": "/",
            "description": "For disk: a path on the file system to report (absolute).",
        },
        "timeout": {
            "type": "number",
            "exclusiveMinimum": 0,
            "description": "Accepted for compatibility with the original project; nothing "
            "here waits on a command.",
        },
    },
    "additionalProperties": True,
}


class SystemInfoExecutor(ExecutableTask):
    """Reports facts about the machine the engine runs on; never runs a command."""

    id: ClassVar[str] = "system_info_executor"
    name: ClassVar[str] = "System information"
    description: ClassVar[str] = (
        "CPU, memory, disk, OS, Python and load of the machine the task runs on, read from "
        "the standard library and /proc (no command is run)."
    )
    tags: ClassVar[list[str]] = ["stdio", "system", "monitoring"]
    examples: ClassVar[list[dict[str, Any]]] = [
        {"title": "CPU", "inputs": {"resource": "cpu"}},
        {"title": "Disk holding /var", "inputs": {"resource": "disk", "path": "/var"}},
        {"title": "Everything", "inputs": {"resource": "all"}},
    ]
    input_schema: ClassVar[dict[str, Any] | None] = INPUT_SCHEMA

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """The facts of ``inputs['resource']`` (default ``all``)."""
        resource = inputs.get("resource", "all")
        if resource not in (*RESOURCES, "all"):
            raise InputValidationError(
                f"input 'resource' must be one of {', '.join([*RESOURCES, 'all'])}"
            )
        path = inputs.get("path", "/")
        if not isinstance(path, str) or not os.path.isabs(path) or "\x00" in path:
            raise InputValidationError("input 'path' must be an absolute path")
        try:
            # statvfs can block on a hung network mount: keep it off the event loop
            return await asyncio.to_thread(read_resource, resource, path)
        except FileNotFoundError:
            raise InputValidationError(f"input 'path': {path} does not exist") from None
        except OSError as exc:
            raise InputValidationError(
                f"input 'path': cannot read {path}: {exc.strerror}"
            ) from None
