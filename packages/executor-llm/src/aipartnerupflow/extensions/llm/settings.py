"""Operator settings of ``llm_executor`` (``AIPARTNERUPFLOW_LLM_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pydantic

from aipartnerupflow.core.executors.settings import OutboundSettings, SecretEnvSettings

__all__ = ["ENV_PREFIX", "LLMSettings"]

ENV_PREFIX = "AIPARTNERUPFLOW_LLM_"


class LLMSettings(OutboundSettings, SecretEnvSettings):
    """Which model and key LLM tasks use by default, and what tasks may change."""

    env_prefix: ClassVar[str] = ENV_PREFIX

    model: str | None = pydantic.Field(
        default=None,
        description="Model used when a task names none (a LiteLLM model string such as "
        "openai/gpt-4o-mini).",
    )
    api_key: str | None = pydantic.Field(
        default=None,
        description="API key used when a task gives none (otherwise LiteLLM reads the "
        "provider's own variable, e.g. OPENAI_API_KEY). Registered as a secret.",
    )
    api_base: str | None = pydantic.Field(
        default=None,
        description="Base URL of the provider's API used when a task gives none "
        "(an OpenAI-compatible gateway, a local server).",
    )
    allow_tools: bool = pydantic.Field(
        default=False,
        description="Let tasks pass tools (function definitions) to the model; the tool calls "
        "the model asks for are returned, never executed.",
    )
    max_tokens: int | None = pydantic.Field(
        default=None,
        ge=1,
        description="Ceiling of a task's max_tokens (also used when a task sets none).",
    )
    checkpoints: bool = pydantic.Field(
        default=True,
        description="Checkpoint completed provider calls so a retried or resumed task does "
        "not pay for them again.",
    )
    checkpoint_path: str | None = pydantic.Field(
        default=None,
        description="SQLite file of the call checkpoints (default: llm-checkpoints.sqlite3 "
        "next to the default DuckDB database, ~/.aipartnerup/data/).",
    )
    checkpoint_ttl_seconds: float = pydantic.Field(
        default=7 * 24 * 3600.0,
        gt=0,
        description="Checkpoints older than this are deleted.",
    )

    def checkpoint_file(self) -> Path:
        """Where the checkpoints live."""
        if self.checkpoint_path:
            return Path(self.checkpoint_path).expanduser()
        return Path.home() / ".aipartnerup" / "data" / "llm-checkpoints.sqlite3"
