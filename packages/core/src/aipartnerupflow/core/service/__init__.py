"""The task service: one caller-scoped, validated way to manage stored tasks."""

from __future__ import annotations

from aipartnerupflow.core.service.caller import TaskCaller
from aipartnerupflow.core.service.ids import renew_ids
from aipartnerupflow.core.service.params import (
    OPERATIONS,
    CancelParams,
    CopyParams,
    CountParams,
    CreateParams,
    DeleteParams,
    ExecuteParams,
    ListParams,
    ResumeParams,
    TaskRef,
    UpdateParams,
    params_schema,
    parse_params,
)
from aipartnerupflow.core.service.task_service import (
    CancelOutcome,
    CreatedTree,
    PreparedRun,
    RunState,
    TaskPage,
    TaskService,
    not_found,
)

__all__ = [
    "OPERATIONS",
    "CancelOutcome",
    "CancelParams",
    "CopyParams",
    "CountParams",
    "CreateParams",
    "CreatedTree",
    "DeleteParams",
    "ExecuteParams",
    "ListParams",
    "PreparedRun",
    "ResumeParams",
    "RunState",
    "TaskCaller",
    "TaskPage",
    "TaskRef",
    "TaskService",
    "UpdateParams",
    "not_found",
    "params_schema",
    "parse_params",
    "renew_ids",
]
