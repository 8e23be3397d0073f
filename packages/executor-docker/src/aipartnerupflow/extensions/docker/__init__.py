"""Docker executor for aipartnerupflow: ``docker_executor``, on the official docker SDK.

Importing this package does not import the docker SDK; the first task does. The executor is
dangerous (it runs containers on a task's say-so), so it is off until
``AIPARTNERUPFLOW_ENABLED_EXECUTORS`` lists ``docker_executor``.
"""

from __future__ import annotations

from aipartnerupflow.extensions.docker.executor import DockerExecutor
from aipartnerupflow.extensions.docker.settings import DockerSettings

__all__ = ["DockerExecutor", "DockerSettings"]
