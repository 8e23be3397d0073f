"""``apflow_api_executor``: run a task tree on another aipartnerupflow instance over A2A."""

from aipartnerupflow.extensions.apflow.executor import ApflowApiExecutor
from aipartnerupflow.extensions.apflow.settings import ApflowSettings

__all__ = ["ApflowApiExecutor", "ApflowSettings"]
