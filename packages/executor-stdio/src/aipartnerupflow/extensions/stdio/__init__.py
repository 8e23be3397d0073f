"""Local executors for aipartnerupflow: ``command_executor`` and ``system_info_executor``.

``command_executor`` runs one allow-listed program per task, as an argv list, never through a
shell; it is off until ``AIPARTNERUPFLOW_ENABLED_EXECUTORS`` lists it, and then limited by
:class:`CommandSettings` (``AIPARTNERUPFLOW_COMMAND_*``). ``system_info_executor`` reports
CPU, memory, disk, OS, Python and load from the standard library and ``/proc``.
"""

from __future__ import annotations

from aipartnerupflow.extensions.stdio.argv import parse_command
from aipartnerupflow.extensions.stdio.command import CommandExecutor
from aipartnerupflow.extensions.stdio.errors import CommandRefusedError
from aipartnerupflow.extensions.stdio.settings import CommandSettings
from aipartnerupflow.extensions.stdio.system_info import SystemInfoExecutor

__all__ = [
    "CommandExecutor",
    "CommandRefusedError",
    "CommandSettings",
    "SystemInfoExecutor",
    "parse_command",
]
