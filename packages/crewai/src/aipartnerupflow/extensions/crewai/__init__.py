"""CrewAI executors for aipartnerupflow: :class:`CrewManager` (``crewai_executor``) and
:class:`BatchManager` (``batch_crewai_executor``).

Importing this package does not import crewai (seconds, hundreds of MB); the first crew run
does, in a worker thread, with crewai's telemetry and tracing off unless the operator's
settings allow them::

    from aipartnerupflow.extensions.crewai import CrewManager

    crew = CrewManager(
        name="Analysis Crew",
        agents=[{"role": "Analyst", "goal": "Analyze data"}],
        tasks=[{"description": "Analyze input", "agent": "Analyst"}],
    )
    result = await crew.execute(inputs={})

``CrewaiExecutor`` and ``BatchCrewaiExecutor`` are the names aipartnerupflow 0.9 gave them.
"""

from __future__ import annotations

from aipartnerupflow.extensions.crewai.batch_manager import BatchFailedError, BatchManager
from aipartnerupflow.extensions.crewai.crew_manager import CrewManager
from aipartnerupflow.extensions.crewai.settings import CrewaiSettings
from aipartnerupflow.extensions.crewai.tools import (
    register_tool,
    registered_tools,
    tool_register,
    unregister_tool,
)

#: aipartnerupflow 0.9's names for the same executors.
CrewaiExecutor = CrewManager
BatchCrewaiExecutor = BatchManager

__all__ = [
    "BatchCrewaiExecutor",
    "BatchFailedError",
    "BatchManager",
    "CrewManager",
    "CrewaiExecutor",
    "CrewaiSettings",
    "register_tool",
    "registered_tools",
    "tool_register",
    "unregister_tool",
]
