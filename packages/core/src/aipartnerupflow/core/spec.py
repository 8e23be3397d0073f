"""Task JSON, validated with pydantic: what the CLI, the API and ``create_task`` accept."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["DependencySpec", "RetrySpec", "TaskSpec"]


class DependencySpec(BaseModel):
    """One dependency: the id (or name) of another task in the tree.

    aipartnerupflow 0.9's shapes are accepted: ``{"name": ...}`` and ``"type": "result"``.
    """

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=255, strict=True)
    required: bool = Field(default=True, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _original_shapes(cls, value: Any) -> Any:
        if not isinstance(value, dict) or ("id" in value and "type" not in value):
            return value
        from aipartnerupflow.core.compat.task_json import normalize_dependency

        plain, problem = normalize_dependency(value)
        if problem:
            raise ValueError(problem)
        return plain


class RetrySpec(BaseModel):
    """Retry policy: attempts in all, and exponential backoff with jitter between them."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=1, ge=1, le=100, strict=True)
    backoff_seconds: float = Field(default=0.5, ge=0, le=3600, strict=True, allow_inf_nan=False)
    backoff_multiplier: float = Field(default=2.0, ge=1, le=10, strict=True, allow_inf_nan=False)
    max_backoff_seconds: float = Field(
        default=60.0, ge=0, le=86400, strict=True, allow_inf_nan=False
    )
    jitter: bool = Field(default=True, strict=True)


class TaskSpec(BaseModel):
    """One task of a task tree, as JSON."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, min_length=1, max_length=255, strict=True)
    name: str = Field(min_length=1, max_length=255, strict=True)
    parent_id: str | None = Field(default=None, min_length=1, max_length=255, strict=True)
    user_id: str | None = Field(default=None, max_length=255, strict=True)
    priority: int = Field(default=2, ge=0, le=3, strict=True)
    dependencies: list[DependencySpec] = Field(default_factory=list)
    schemas: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, Any] = Field(default_factory=dict)
    retry: RetrySpec | None = None
    timeout_seconds: float | None = Field(
        default=None, gt=0, le=7 * 86400, strict=True, allow_inf_nan=False
    )

    @field_validator("dependencies", mode="before")
    @classmethod
    def _plain_ids(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, list):
            return [{"id": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("schemas", "params", "inputs", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("schemas")
    @classmethod
    def _method_is_an_id(cls, value: dict[str, Any]) -> dict[str, Any]:
        method = value.get("method")
        if method is not None and (not isinstance(method, str) or not method.strip()):
            raise ValueError(
                f"schemas.method must be an executor id (a non-empty string), not {method!r}"
            )
        for key in ("input_schema", "output_schema"):
            if value.get(key) is not None and not isinstance(value[key], dict):
                raise ValueError(f"schemas.{key} must be a JSON Schema object")
        return value

    @field_validator("params")
    @classmethod
    def _executor_id_is_an_id(cls, value: dict[str, Any]) -> dict[str, Any]:
        executor_id = value.get("executor_id")
        if executor_id is not None and (not isinstance(executor_id, str) or not executor_id):
            raise ValueError(f"params.executor_id must be a non-empty string, not {executor_id!r}")
        return value
