"""``apflow_api_executor``: run a task tree on another aipartnerupflow instance over A2A.

``ApFlowApiExecutor`` is the name aipartnerupflow 0.9 gave the class.
"""

from aipartnerupflow.extensions.apflow.executor import ApflowApiExecutor
from aipartnerupflow.extensions.apflow.settings import ApflowSettings

#: aipartnerupflow 0.9's spelling of the class name.
ApFlowApiExecutor = ApflowApiExecutor

__all__ = ["ApFlowApiExecutor", "ApflowApiExecutor", "ApflowSettings"]
