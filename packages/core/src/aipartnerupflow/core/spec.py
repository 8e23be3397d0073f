"""Task JSON, validated with pydantic: what the CLI, the API and ``create_task`` accept."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["DependencySpec", "RetrySpec", "TaskSpec"]


class DependencySpec(BaseModel):
    """One dependency: the id (or name) of another task in the tree."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1)
    required: bool = True


class RetrySpec(BaseModel):
    """Retry policy: attempts in all, and exponential backoff with jitter between them."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=1, ge=1, le=100)
    backoff_seconds: float = Field(default=0.5, ge=0, le=3600)
    backoff_multiplier: float = Field(default=2.0, ge=1, le=10)
    max_backoff_seconds: float = Field(default=60.0, ge=0, le=86400)
    jitter: bool = True


class TaskSpec(BaseModel):
    """One task of a task tree, as JSON."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, min_length=1, max_length=255)
    name: str = Field(min_length=1, max_length=255)
    parent_id: str | None = None
    user_id: str | None = Field(default=None, max_length=255)
    priority: int = Field(default=2, ge=0, le=3)
    dependencies: list[DependencySpec] = Field(default_factory=list)
    schemas: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, Any] = Field(default_factory=dict)
    retry: RetrySpec | None = None
    timeout_seconds: float | None = Field(default=None, gt=0, le=7 * 86400)

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
